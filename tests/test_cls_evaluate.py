"""Classification (task cls): metrics against scikit-learn, stage 5 evaluation, its CLI,
the stage 6 report (tables, confusion plots) and the comparison of experiments."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import kaldiio
import numpy as np
import pytest
from sklearn import metrics as skm

from conftest import python_module
from spkpeft.errors import SpkpeftError
from spkpeft.eval.metrics import accuracy_pct, confusion_matrix, macro_f1, per_class_scores
from spkpeft.eval.report import markdown_table, per_class_table, read_confusion
from spkpeft.tasks.results import read_results, results_table
from spkpeft.io.datadir import write_data_dir
from spkpeft.tasks.cls.evaluate import evaluate_cls

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CLASSES = ["cat", "dog", "owl"]
INFO = {"config": "conf/lora.yaml", "upstream": "random:tiny_wavlm", "trainable_params": 1234,
        "total_params": 100000, "train_seconds": 12.5, "peak_memory_mb": 321.0}
# utterance -> (true label, predicted class); owl is never predicted correctly
TRUTH = {"u1": ("cat", "cat"), "u2": ("cat", "cat"), "u3": ("cat", "dog"), "u4": ("dog", "dog"),
         "u5": ("dog", "dog"), "u6": ("owl", "dog"), "u7": ("owl", "cat")}


# ---------------------------------------------------------------- metrics vs scikit-learn


def check_against_sklearn(labels, predictions, k):
    confusion = confusion_matrix(labels, predictions, k)
    assert confusion.shape == (k, k) and np.issubdtype(confusion.dtype, np.integer)
    np.testing.assert_array_equal(confusion, skm.confusion_matrix(labels, predictions, labels=list(range(k))))
    assert accuracy_pct(labels, predictions) == pytest.approx(100 * skm.accuracy_score(labels, predictions))
    precision, recall, f1 = per_class_scores(confusion)
    sk_p, sk_r, sk_f, _ = skm.precision_recall_fscore_support(labels, predictions, labels=list(range(k)),
                                                              zero_division=0)
    np.testing.assert_allclose(precision, sk_p, atol=1e-12)
    np.testing.assert_allclose(recall, sk_r, atol=1e-12)
    np.testing.assert_allclose(f1, sk_f, atol=1e-12)
    assert macro_f1(confusion) == pytest.approx(skm.f1_score(labels, predictions, average="macro"), abs=1e-12)


def test_metrics_match_sklearn_random():
    rng = np.random.default_rng(0)
    for trial in range(20):
        k = int(rng.integers(2, 8))
        n = int(rng.integers(1, 60))
        labels = rng.integers(0, k, n)
        predictions = np.where(rng.random(n) < 0.6, labels, rng.integers(0, k, n))
        check_against_sklearn(labels, predictions, k)


def test_macro_f1_with_never_predicted_and_absent_classes():
    # K = 5: class 2 is in the labels but never predicted (f1 = 0, counted), class 3 is
    # predicted but absent from the labels (f1 = 0, counted), class 4 is in neither (left out).
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 1])
    predictions = np.array([0, 0, 1, 1, 1, 0, 3, 3])
    check_against_sklearn(labels, predictions, 5)
    confusion = confusion_matrix(labels, predictions, 5)
    _, _, f1 = per_class_scores(confusion)
    assert f1[2] == 0 and f1[3] == 0 and f1[4] == 0
    assert macro_f1(confusion) == pytest.approx(f1[:4].mean())
    assert macro_f1(confusion) != pytest.approx(f1.mean())


def test_metrics_errors():
    with pytest.raises(SpkpeftError, match="not a class index"):
        confusion_matrix([0, 3], [0, 1], 3)
    with pytest.raises(SpkpeftError, match="equal lengths"):
        confusion_matrix([0, 1], [0], 3)
    with pytest.raises(SpkpeftError, match="integer class indices"):
        confusion_matrix([0.5], [0], 3)
    with pytest.raises(SpkpeftError, match="undefined"):
        accuracy_pct([], [])
    with pytest.raises(SpkpeftError, match="undefined"):
        macro_f1(np.zeros((3, 3), dtype=int))


# ---------------------------------------------------------------- a fake experiment


def write_posteriors(scp_dir: Path, table: dict[str, np.ndarray]) -> Path:
    scp_dir.mkdir(parents=True, exist_ok=True)
    base = scp_dir / "posteriors"
    with kaldiio.WriteHelper(f"ark,scp:{base}.ark,{base}.scp") as writer:
        for utt, vec in table.items():
            writer(utt, np.asarray(vec, dtype=np.float32))
    return Path(f"{base}.scp")


def one_hotish(predicted: str, strength: float = 0.7) -> np.ndarray:
    vec = np.full(len(CLASSES), (1 - strength) / (len(CLASSES) - 1))
    vec[CLASSES.index(predicted)] = strength
    return vec


def make_exp(root: Path, name: str = "exp", truth: dict = TRUTH, info: dict | None = INFO,
             config_upstream: str | None = None) -> tuple[Path, Path]:
    """EXP with classes.txt and posteriors of data/test; data/{test,train,nolabels}. Returns (exp, corpus)."""
    exp, corpus = root / name, root / "data"
    exp.mkdir(parents=True)
    (exp / "classes.txt").write_text("".join(c + "\n" for c in CLASSES))
    if info is not None:
        (exp / "train_done.json").write_text(json.dumps({**info, "epochs": 1}))
    if config_upstream:
        (exp / "config.yaml").write_text(f"upstream:\n  name: {config_upstream}\n")
    if not (corpus / "test").exists():
        wav = {u: f"/nonexistent/{u}.wav" for u in TRUTH}
        write_data_dir(corpus / "test", wav, {u: u for u in wav}, {u: t for u, (t, _) in TRUTH.items()})
        write_data_dir(corpus / "train", wav, {u: u for u in wav}, {u: t for u, (t, _) in TRUTH.items()})
        write_data_dir(corpus / "nolabels", wav, {u: u for u in wav})
    # posteriors in an order other than utt2label's
    write_posteriors(exp / "posteriors" / "test", {u: one_hotish(p) for u, (_, p) in reversed(truth.items())})
    return exp, corpus


def data_dirs(corpus: Path) -> list[Path]:
    return [corpus / "nolabels", corpus / "test", corpus / "train"]


def test_evaluate_cls_writes_scores_and_results(tmp_path):
    exp, corpus = make_exp(tmp_path)
    results = exp / "results.json"
    rows = evaluate_cls(exp, data_dirs(corpus), results, info=INFO)
    assert json.loads(results.read_text()) == rows
    (row,) = rows  # nolabels (no utt2label) and train (no posteriors) are skipped
    assert list(row) == ["task", "set", "n", "accuracy_pct", "macro_f1", *INFO]
    labels = [CLASSES.index(t) for t, _ in TRUTH.values()]
    preds = [CLASSES.index(p) for _, p in TRUTH.values()]
    assert row["task"] == "cls" and row["set"] == "test" and row["n"] == 7
    assert row["accuracy_pct"] == pytest.approx(100 * 4 / 7)
    assert row["macro_f1"] == pytest.approx(skm.f1_score(labels, preds, average="macro"))
    assert {k: row[k] for k in INFO} == INFO

    scores = exp / "scores" / "test"
    lines = (scores / "predictions.txt").read_text().splitlines()
    assert [line.split()[:2] for line in lines] == [[u, p] for u, (_, p) in TRUTH.items()]
    assert all(float(line.split()[2]) == pytest.approx(0.7, abs=1e-6) for line in lines)

    per_class = (scores / "per_class.tsv").read_text().splitlines()
    assert per_class[0] == "class\tn\tprecision\trecall\tf1"
    sk_p, sk_r, sk_f, sk_n = skm.precision_recall_fscore_support(labels, preds, labels=[0, 1, 2], zero_division=0)
    for k, line in enumerate(per_class[1:]):
        name, n, p, r, f = line.split("\t")
        assert name == CLASSES[k] and int(n) == sk_n[k]
        assert (float(p), float(r), float(f)) == pytest.approx((sk_p[k], sk_r[k], sk_f[k]), abs=1e-6)

    assert (scores / "confusion.tsv").read_text().splitlines() == [
        "true\\predicted\tcat\tdog\towl", "cat\t2\t1\t0", "dog\t0\t2\t0", "owl\t1\t1\t0"]
    counts, names = read_confusion(scores / "confusion.tsv")
    assert names == CLASSES
    np.testing.assert_array_equal(counts, skm.confusion_matrix(labels, preds))
    assert not (exp / "scores" / "train").exists()


def test_evaluate_cls_without_info(tmp_path):
    exp, corpus = make_exp(tmp_path, info=None)
    (row,) = evaluate_cls(exp, [corpus / "test"], exp / "r.json")
    assert list(row) == ["task", "set", "n", "accuracy_pct", "macro_f1"]


def test_missing_utterance_names_posteriors(tmp_path):
    truth = {u: v for u, v in TRUTH.items() if u != "u5"}
    exp, corpus = make_exp(tmp_path, truth=truth)
    with pytest.raises(SpkpeftError) as err:
        evaluate_cls(exp, data_dirs(corpus), exp / "results.json")
    message = str(err.value)
    assert "\n" not in message
    assert str(exp / "posteriors" / "test" / "posteriors.scp") in message and "'u5'" in message
    assert str(corpus / "test" / "utt2label") in message
    assert not (exp / "results.json").exists()


def test_extra_utterance_is_an_error(tmp_path):
    exp, corpus = make_exp(tmp_path, truth={**TRUTH, "u9": ("cat", "cat")})
    with pytest.raises(SpkpeftError,
                       match=r"posteriors\.scp: 1 utterance\(s\) are not in .*utt2label, the first 'u9'"):
        evaluate_cls(exp, [corpus / "test"], exp / "results.json")


def test_unknown_label_names_file_and_line(tmp_path):
    exp, corpus = make_exp(tmp_path)
    utt2label = corpus / "test" / "utt2label"
    lines = utt2label.read_text().splitlines()
    lines[3] = "u4 emu"
    utt2label.write_text("\n".join(lines) + "\n")
    with pytest.raises(SpkpeftError, match=rf"^{utt2label}:4: label 'emu' of 'u4' is not a class"):
        evaluate_cls(exp, [corpus / "test"], exp / "results.json")


def test_wrong_number_of_classes_and_nothing_to_evaluate(tmp_path):
    exp, corpus = make_exp(tmp_path)
    (exp / "classes.txt").write_text("cat\ndog\nowl\nemu\n")
    with pytest.raises(SpkpeftError, match=r"posteriors of shape \(3,\), expected \(4,\)"):
        evaluate_cls(exp, [corpus / "test"], exp / "results.json")
    with pytest.raises(SpkpeftError, match="nothing to evaluate"):
        evaluate_cls(exp, [corpus / "train", corpus / "nolabels"], exp / "results.json")


# ---------------------------------------------------------------- CLIs


def test_evaluate_cli(tmp_path):
    exp, corpus = make_exp(tmp_path)
    res = python_module("spkpeft.bin.evaluate", "--exp", exp, "--task", "cls", "--data", *data_dirs(corpus))
    assert res.returncode == 0, res.stderr
    (row,) = json.loads((exp / "results.json").read_text())
    assert row["set"] == "test" and row["trainable_params"] == INFO["trainable_params"]  # --info defaulted
    assert res.stdout.splitlines()[0].startswith("| set | n | accuracy (%) | macro-F1 | config |")
    assert f"| test | 7 | {100 * 4 / 7:.2f} | {row['macro_f1']:.4f} |" in res.stdout
    assert "skipping" in res.stderr and "nolabels" in res.stderr

    other = tmp_path / "other.json"
    res = python_module("spkpeft.bin.evaluate", "--exp", exp, "--task", "cls", "--data", corpus / "test", "--results", other,
                        "--info", tmp_path / "missing.json")
    assert res.returncode == 1 and res.stderr.startswith("evaluate: error: ") and len(res.stderr.splitlines()) == 1
    res = python_module("spkpeft.bin.evaluate", "--exp", exp, "--task", "cls", "--data", corpus / "train")
    assert res.returncode == 1 and "evaluate: error: nothing to evaluate" in res.stderr


def test_report_cls_tables_and_confusion_plot(tmp_path):
    exp, corpus = make_exp(tmp_path)
    evaluate_cls(exp, [corpus / "test"], exp / "results.json", info=INFO)
    res = python_module("spkpeft.bin.report", exp / "results.json", "--plot-dir", tmp_path / "plots")
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert out.startswith("| set | n | accuracy (%) | macro-F1 |")
    assert "### per class: test" in out
    assert "| class | n | precision | recall | F1 |" in out
    assert "| owl | 2 | 0.0000 | 0.0000 | 0.0000 |" in out and "| dog | 2 | 0.5000 | 1.0000 | 0.6667 |" in out
    png = tmp_path / "plots" / "confusion_test.png"
    assert png.read_bytes()[:8] == PNG_MAGIC
    # default plot dir beside results.json, and --trials-dir does not get in the way
    res = python_module("spkpeft.bin.report", exp / "results.json", "--trials-dir", tmp_path / "no-trials")
    assert res.returncode == 0, res.stderr
    assert (exp / "plots" / "confusion_test.png").read_bytes()[:8] == PNG_MAGIC

    (exp / "scores" / "test" / "per_class.tsv").unlink()
    res = python_module("spkpeft.bin.report", exp / "results.json")
    assert res.returncode == 1 and "per_class.tsv" in res.stderr and res.stdout == ""


SV_ROW = {"trials": "vox1_o", "n_trials": 10, "eer_pct": 1.5, "mindcf_p0.01": 0.25, "mindcf_p0.05": 0.125}


def test_results_tables_and_read_results(tmp_path):
    path = tmp_path / "results.json"
    cls_row = {"task": "cls", "set": "test", "n": 7, "accuracy_pct": 57.142857, "macro_f1": 0.5, "extra": 3}
    path.write_text(json.dumps([{**SV_ROW, "norm": "none"}, {**SV_ROW, "norm": "snorm", "task": "sv"}, cls_row]))
    rows = read_results(path)
    table = results_table(rows)
    sv_part, cls_part = table.split("### cls")
    assert sv_part.startswith("### sv\n\n| trials | n_trials | EER (%) | minDCF (p=0.01) | minDCF (p=0.05) | norm |")
    assert "| vox1_o | 10 | 1.50 | 0.2500 | 0.1250 | snorm |" in sv_part and "task" not in sv_part
    assert "| set | n | accuracy (%) | macro-F1 | extra |" in cls_part
    assert "| test | 7 | 57.14 | 0.5000 | 3 |" in cls_part
    assert results_table(rows[:1]).startswith("| trials | n_trials | EER (%) |")  # one task: no heading

    path.write_text(json.dumps([{"task": "cls", "set": "test", "n": 7, "accuracy_pct": 50.0}]))
    with pytest.raises(SpkpeftError, match="entry 1 lacks key 'macro_f1'"):
        read_results(path)
    path.write_text(json.dumps([{"task": "cls", **SV_ROW}]))
    with pytest.raises(SpkpeftError, match="entry 1 lacks key 'set'"):
        read_results(path)
    path.write_text(json.dumps([{"trials": "x", "n_trials": 3}]))
    with pytest.raises(SpkpeftError, match="lacks key 'eer_pct'"):
        read_results(path)
    path.write_text(json.dumps([{"task": "asr", **SV_ROW}]))
    with pytest.raises(SpkpeftError, match="unknown task 'asr'"):
        read_results(path)


def test_markdown_table_and_per_class_table(tmp_path):
    assert markdown_table(["a", "bb"], [["1", ""], ["x y", "2"]]).splitlines() == [
        "| a | bb |", "|-----|------|", "| 1 |  |", "| x y | 2 |"]
    tsv = tmp_path / "per_class.tsv"
    tsv.write_text("class\tn\tprecision\trecall\tf1\nNA\t3\t0.5\t1\t0.666666\n")
    assert per_class_table(tsv).splitlines()[2] == "| NA | 3 | 0.5000 | 1.0000 | 0.6667 |"
    tsv.write_text("class\tn\tprecision\nNA\t3\t0.5\n")
    with pytest.raises(SpkpeftError, match="header must be"):
        per_class_table(tsv)


def test_plot_confusion_and_the_cls_task_draws_no_verification_plots(tmp_path):
    from spkpeft.eval.plots import plot_confusion
    from spkpeft.tasks.base import ReportContext
    from spkpeft.tasks.registered import task_named

    counts = np.array([[5, 1, 0], [0, 0, 0], [2, 2, 9]])
    out = plot_confusion(counts, CLASSES, tmp_path / "c.png", title="t")
    assert out.read_bytes()[:8] == PNG_MAGIC
    with pytest.raises(SpkpeftError):
        plot_confusion(counts, CLASSES[:2], tmp_path / "bad.png", title="t")
    rows = [{"task": "cls", "set": "test", "n": 7, "accuracy_pct": 50.0, "macro_f1": 0.5}]
    (tmp_path / "trials").mkdir()
    context = ReportContext(tmp_path, tmp_path / "scores", tmp_path / "plots", trials_dir=tmp_path / "trials")
    assert task_named("sv").plots([], context) == []
    with pytest.raises(SpkpeftError, match="confusion.tsv"):  # the cls task draws confusions only
        task_named("cls").plots(rows, context)


def test_compare_cls_experiments(tmp_path):
    wrong = dict(TRUTH, u1=("cat", "owl"))
    exps = []
    for name, truth, info in (("lora", TRUTH, INFO), ("bitfit", wrong, None)):
        exp, corpus = make_exp(tmp_path, name, truth=truth, info=info, config_upstream="random:tiny_wavlm")
        if not (corpus / "dev").exists():
            write_data_dir(corpus / "dev", {"u1": "/x.wav"}, {"u1": "u1"}, {"u1": "cat"})
        write_posteriors(exp / "posteriors" / "dev", {"u1": one_hotish("cat")})
        evaluate_cls(exp, [corpus / "test", corpus / "dev"], exp / "results.json", info=info)
        exps.append(exp)
    out = tmp_path / "cmp"
    res = python_module("spkpeft.bin.compare", *exps, "--out", out, "--trials-dir", tmp_path / "trials")
    assert res.returncode == 0, res.stderr
    assert "no DET plots" in res.stderr and not list(out.glob("*.png"))
    with open(out / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["set"], r["variant"]) for r in rows] == [("test", "lora"), ("test", "bitfit"),
                                                        ("dev", "lora"), ("dev", "bitfit")]
    assert list(rows[0]) == ["variant", "upstream", "trainable_params", "trainable_pct", "set", "n", "accuracy_pct",
                             "macro_f1", "train_seconds", "peak_memory_mb"]
    assert rows[0]["upstream"] == INFO["upstream"] and rows[1]["upstream"] == "random:tiny_wavlm"
    assert float(rows[0]["trainable_pct"]) == pytest.approx(1.234) and rows[1]["trainable_pct"] == ""
    assert float(rows[0]["accuracy_pct"]) == pytest.approx(400 / 7)
    assert float(rows[1]["accuracy_pct"]) == pytest.approx(300 / 7)
    md = (out / "results.md").read_text().splitlines()
    assert md == res.stdout.splitlines()
    assert md[0] == ("| variant | upstream | trainable params | trainable % | set | n | accuracy (%) | macro-F1 "
                     "| train time (s) | peak memory (MB) |")
    f1 = float(rows[0]["macro_f1"])
    assert md[2] == f"| lora | random:tiny_wavlm | 1,234 | 1.23 | test | 7 | 57.14 | {f1:.4f} | 12.5 | 321 |"
    assert len(md) == 2 + len(rows)

    sv = tmp_path / "sv"
    sv.mkdir()
    (sv / "results.json").write_text(json.dumps([{**SV_ROW, "norm": "none"}]))
    res = python_module("spkpeft.bin.compare", exps[0], sv, "--out", tmp_path / "mixed")
    assert res.returncode == 1 and "different tasks: cls (lora), sv (sv)" in res.stderr
