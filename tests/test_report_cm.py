"""Stage 6 of the countermeasure task: per-attack / per-condition tables and the per-attack DET and
score-histogram plots of ``spkpeft.bin.report`` on a synthetic experiment."""

from __future__ import annotations

import json
import time
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from conftest import python_module
from spkpeft.errors import SpkpeftError
from spkpeft.eval.plots import MAX_ATTACKS, cm_curves, plot_cm
from spkpeft.eval.report import cm_breakdown_tables, markdown_table
from spkpeft.io.datadir import write_data_dir
from spkpeft.tasks.cm.evaluate import evaluate_cm, load_scored_set

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, path
    image = matplotlib.image.imread(path)  # decodes: a whole, valid PNG
    assert image.ndim == 3 and min(image.shape[:2]) > 100


def make_set(corpus: Path, exp: Path, name: str, n: int, n_attacks: int, seed: int,
             conditions: bool = False) -> Path:
    """A data directory (no audio needed) and its stage-4 scores: a third bona fide, attack k shifted by k/4."""
    rng = np.random.default_rng(seed)
    utts = [f"{name}_{i:05d}" for i in range(n)]
    labels = {u: "bonafide" if i % 3 == 0 else "spoof" for i, u in enumerate(utts)}
    attacks = {u: "-" if labels[u] == "bonafide" else f"A{7 + i % n_attacks:02d}" for i, u in enumerate(utts)}
    scores = {u: rng.normal(1.5 if labels[u] == "bonafide" else int(attacks[u][1:]) / 4 - 2.5) for u in utts}
    extra = {"utt2condition": {u: f"LA-C{1 + i % 7}" for i, u in enumerate(utts)}} if conditions else {}
    write_data_dir(corpus / name, {u: f"/nowhere/{u}.flac" for u in utts}, {u: u for u in utts}, labels, attacks,
                   **extra)
    (exp / "cm_scores" / name).mkdir(parents=True)
    (exp / "cm_scores" / name / "scores.txt").write_text("".join(f"{u} {scores[u]!r}\n" for u in utts))
    return corpus / name


@pytest.fixture
def experiment(tmp_path):
    corpus, exp = tmp_path / "data" / "c", tmp_path / "exp"
    dirs = [make_set(corpus, exp, "eval", 3000, 6, 0), make_set(corpus, exp, "la_eval", 1500, 25, 1, True)]
    evaluate_cm(exp, dirs, exp / "results.json", {"config": "synthetic"})
    return exp, corpus


def test_report_prints_breakdowns_and_draws_cm_plots(experiment, tmp_path):
    exp, corpus = experiment
    start = time.monotonic()
    res = python_module("spkpeft.bin.report", exp / "results.json", "--corpus-dir", tmp_path / "elsewhere",
                        "--corpus-dir", corpus)
    assert res.returncode == 0, res.stderr
    assert time.monotonic() - start < 60  # thousands of utterances, 25 attacks
    out = res.stdout
    assert out.startswith("| set | n_bonafide | n_spoof | EER (%) |")
    assert "### per attack: eval" in out and "### per attack: la_eval" in out
    assert "### per condition: eval" not in out  # no utt2condition there
    rows = {r["set"]: r for r in json.loads((exp / "results.json").read_text())}
    cond = rows["la_eval"]["per_condition"]
    assert list(cond) == [f"LA-C{k}" for k in range(1, 8)]
    assert f"### per condition: la_eval\n\n| condition | EER (%) |" in out
    assert f"| LA-C3 | {cond['LA-C3']:.2f} |" in out
    for name in ("eval", "la_eval"):
        for kind in ("det", "scores"):
            assert_png(exp / "plots" / f"{name}_cm_{kind}.png")
    assert "wrote 4 plots" in res.stderr

    # without --corpus-dir no cm plots (as sv without --trials-dir)
    res = python_module("spkpeft.bin.report", exp / "results.json", "--plot-dir", tmp_path / "p2")
    assert res.returncode == 0, res.stderr
    assert not (tmp_path / "p2").exists()


def test_cm_set_of_another_corpus_is_skipped_and_missing_scores_are_an_error(experiment, tmp_path):
    exp, corpus = experiment
    eval_row = json.loads((exp / "results.json").read_text())[0]
    assert eval_row["set"] == "eval"
    # a row scored with the same model on another corpus first, then one of this corpus
    (exp / "results.json").write_text(json.dumps([{**eval_row, "set": "dev"}, eval_row]))
    res = python_module("spkpeft.bin.report", exp / "results.json", "--corpus-dir", corpus)
    assert res.returncode == 0, res.stderr
    assert "NOTE: cm set 'dev' is in no corpus directory" in res.stderr
    assert sorted(p.name for p in (exp / "plots").iterdir()) == ["eval_cm_det.png", "eval_cm_scores.png"]

    (exp / "cm_scores" / "eval" / "scores.txt").unlink()
    res = python_module("spkpeft.bin.report", exp / "results.json", "--corpus-dir", corpus)
    assert res.returncode == 1
    err = res.stderr.strip().splitlines()
    assert err[-1].endswith(f"{exp / 'cm_scores' / 'eval' / 'scores.txt'}: "
                            "CM scores do not exist (stage 4 writes them)"), err
    assert err[-1].startswith("report: error: ") and "NOTE" in err[0] and len(err) == 2


def test_cm_curves_pooled_per_attack_and_capped(experiment, tmp_path):
    exp, corpus = experiment
    scored = load_scored_set(exp, corpus / "la_eval")
    curves, n_attacks = cm_curves(scored.scores, scored.keys, scored.attacks)
    assert n_attacks == 25 and len(curves) == 1 + MAX_ATTACKS and next(iter(curves)) == "pooled"
    scores, labels = curves["pooled"]
    assert scores.size == 1500 and labels.sum() == 500
    kept = list(curves)[1:]
    assert kept == [f"A{k}" for k in range(12, 32)]  # the 20 highest EERs: spoofs of A<k> score k/4 - 2.5
    s, lab = curves["A31"]
    assert lab.sum() == 500 and sorted(s[~lab]) == sorted(scored.scores[np.array(scored.attacks) == "A31"])
    written = plot_cm(scored.scores, scored.keys, scored.attacks, tmp_path / "plots", "x")
    assert [p.name for p in written] == ["x_cm_det.png", "x_cm_scores.png"]
    for path in written:
        assert_png(path)


def test_breakdown_tables():
    row = {"set": "s", "per_attack": {"A07": 1.234}, "per_condition": {"DF-C1": 12.345}}
    assert cm_breakdown_tables(row) == [
        "### per attack: s\n\n" + markdown_table(["attack", "EER (%)"], [["A07", "1.23"]]),
        "### per condition: s\n\n" + markdown_table(["condition", "EER (%)"], [["DF-C1", "12.35"]])]
    assert len(cm_breakdown_tables({"set": "s", "per_attack": {}})) == 1


def test_load_scored_set_needs_labels(tmp_path):
    write_data_dir(tmp_path / "c" / "x", {"u": "/a.flac"}, {"u": "u"})
    (tmp_path / "exp" / "cm_scores" / "x").mkdir(parents=True)
    (tmp_path / "exp" / "cm_scores" / "x" / "scores.txt").write_text("u 1.0\n")
    with pytest.raises(SpkpeftError, match="x/utt2label: missing"):
        load_scored_set(tmp_path / "exp", tmp_path / "c" / "x")
