"""steps/compare.sh on a small mini corpus with two short configs: tables, plots, nothing redone on a re-run."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import REPO, run
from spkpeft.errors import SpkpeftError

MINI = "--n-train-spk 6 --n-test-spk 3 --n-sessions 2 --n-utts 2 --min-dur 0.8 --max-dur 1.2"
SHORT = {
    "upstream": {"name": "random:tiny_wavlm"},
    "head": {"channels": 32, "embed_dim": 32, "res2_scale": 2, "se_channels": 8, "attention_channels": 8},
    "task": {"val_speakers": 2, "val_max_seconds": 1.0},
    "data": {"crop_seconds": 0.5, "batch_size": 4, "num_workers": 0},
    "train": {"epochs": 1},
}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def write_config(path: Path, base: str) -> Path:
    path.write_text(yaml.safe_dump({"base": str(REPO / "conf" / base), **SHORT}))
    return path


def compare(recipe: Path, tmp_path: Path, configs: list[Path], *options: str, out: str = "cmp"):
    return run(["bash", str(recipe / "steps" / "compare.sh"), "--configs", " ".join(map(str, configs)),
                "--data-root", str(tmp_path / "corpus"), "--mini-opts", MINI, "--nj", "1",
                "--exp-root", str(tmp_path / "exp"), "--out", str(tmp_path / out), *options],
               cwd=recipe, env={"OMP_NUM_THREADS": "1"})


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert len(data) > 0 and data[:8] == PNG_MAGIC, path


@pytest.fixture(scope="module")
def compared(recipe, tmp_path_factory):
    """Two tiny variants compared once; the tests below reuse the experiments."""
    tmp_path = tmp_path_factory.mktemp("compare")
    configs = [write_config(tmp_path / "tiny_sv.yaml", "mini.yaml"),
               write_config(tmp_path / "tiny_bitfit.yaml", "bitfit.yaml")]
    return tmp_path, configs, compare(recipe, tmp_path, configs)


def test_compare_two_variants(recipe, compared):
    tmp_path, configs, res = compared
    assert res.returncode == 0, res.stderr[-4000:]

    exp, out = tmp_path / "exp", tmp_path / "cmp"
    for variant in ("tiny_sv", "tiny_bitfit"):
        results = json.loads((exp / variant / "results.json").read_text())
        assert [(r["trials"], r["norm"]) for r in results] == [("vox1_o", n) for n in ("none", "snorm", "asnorm")]
        for name in ("vox1_o.score", "vox1_o.snorm.score", "vox1_o.asnorm.score"):
            assert (exp / variant / "scores" / name).is_file()
        for name in ("det_vox1_o.png", "scores_vox1_o.png"):
            assert_png(exp / variant / "plots" / name)

    with open(out / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["trials"], r["norm"], r["variant"]) for r in rows] == [
        ("vox1_o", n, v) for n in ("none", "snorm", "asnorm") for v in ("tiny_sv", "tiny_bitfit")]
    for row in rows:
        assert row["upstream"] == "random:tiny_wavlm"
        info = json.loads((exp / row["variant"] / "train_done.json").read_text())
        assert int(row["trainable_params"]) == info["trainable_params"]
        assert float(row["trainable_pct"]) == 100 * info["trainable_params"] / info["total_params"]
        assert 0 <= float(row["eer_pct"]) <= 100
        assert float(row["train_seconds"]) > 0 and float(row["peak_memory_mb"]) > 0
        lo, hi = json.loads(row["eer_ci95"])
        assert lo <= float(row["eer_pct"]) <= hi
        assert row["cllr"] and row["actdcf_p0.01"]  # stage 5 calibrated every norm on held-out speakers
        if row["variant"] == "tiny_bitfit":  # paired with the first variant on the same bootstrap draws
            assert row["vs"] == "tiny_sv" and 0 <= float(row["p_better"]) <= 1
            lo, hi = json.loads(row["delta_eer_ci95"])
            assert lo <= hi
        else:
            assert row["vs"] == row["p_better"] == ""
    for variant in ("tiny_sv", "tiny_bitfit"):
        stored = json.loads((exp / variant / "calibration.json").read_text())
        assert stored["norm"] == "none" and stored["n_speakers"] == 2
    assert list(rows[0])[:7] == ["variant", "upstream", "trainable_params", "trainable_pct", "trials", "norm", "eer_pct"]
    assert len((out / "results.md").read_text().splitlines()) == 2 + len(rows)
    for name in ("det_vox1_o.png", "det_vox1_o.snorm.png", "det_vox1_o.asnorm.png"):
        assert_png(out / name)

    stamps = {p: p.stat().st_mtime_ns for v in ("tiny_sv", "tiny_bitfit")
              for p in (exp / v / "results.json", exp / v / "train_done.json", exp / v / "checkpoints" / "last.pt")}
    again = compare(recipe, tmp_path, configs)
    assert again.returncode == 0, again.stderr[-4000:]
    assert again.stderr.count("has results.json; skipping") == 2
    assert "Stage 3" not in again.stderr and "up to date" in again.stderr
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    with open(out / "results.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == len(rows)


def test_compare_usage_errors(recipe, tmp_path):
    res = run(["bash", str(recipe / "steps" / "compare.sh")], cwd=recipe)
    assert res.returncode == 1 and "--configs is required" in res.stderr and "Usage:" in res.stderr
    same = []
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        same.append(write_config(tmp_path / sub / "x.yaml", "mini.yaml"))
    res = run(["bash", str(recipe / "steps" / "compare.sh"), "--configs", " ".join(map(str, same)), "--stage", "3",
               "--exp-root", str(tmp_path / "exp")], cwd=recipe)
    assert res.returncode == 1 and "distinct names" in res.stderr


def test_compare_seeds(recipe, compared):
    """--seeds 2: run 0 of tiny_sv is the experiment above (skipped), run 1 trains with train.seed + 1."""
    tmp_path, configs, first = compared
    assert first.returncode == 0, first.stderr[-4000:]
    res = compare(recipe, tmp_path, configs[:1], "--seeds", "2", "--stage", "3", out="cmp_seeds")
    assert res.returncode == 0, res.stderr[-4000:]
    exp = tmp_path / "exp"
    assert res.stderr.count("has results.json; skipping") == 1
    seed_config = yaml.safe_load((exp / "seed_configs" / "tiny_sv_seed43.yaml").read_text())
    assert seed_config == {"base": str(configs[0]), "train": {"seed": 43}}
    assert yaml.safe_load((exp / "tiny_sv_seed43" / "config.yaml").read_text())["train"]["seed"] == 43
    runs = [{r["norm"]: r for r in json.loads((exp / name / "results.json").read_text())}
            for name in ("tiny_sv", "tiny_sv_seed43")]
    with open(tmp_path / "cmp_seeds" / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["variant"], r["norm"], r["seeds"]) for r in rows] == [("tiny_sv", n, "2") for n in ("none", "snorm", "asnorm")]
    for row in rows:
        eers = [run[row["norm"]]["eer_pct"] for run in runs]
        assert float(row["eer_pct_mean"]) == pytest.approx(np.mean(eers))
        assert float(row["eer_pct_sd"]) == pytest.approx(np.std(eers, ddof=1))
    assert {"seeds", "eer_pct_mean", "eer_pct_sd"} <= set(rows[0])


def write_scored_experiment(root: Path, name: str, scores: np.ndarray, trials: Path) -> Path:
    """An experiment directory with results.json and scores/t.score (no training)."""
    from spkpeft.eval.metrics import compute_metrics
    from spkpeft.io.trials import read_trials, write_scores

    exp = root / name
    utt1, utt2, labels = read_trials(trials)
    write_scores(exp / "scores" / "t.score", utt1, utt2, scores)
    metrics = compute_metrics(scores, labels)
    (exp / "results.json").write_text(json.dumps([{"trials": "t", "n_trials": metrics["n_trials"], "eer_pct":
                                                   metrics["eer_pct"], "mindcf_p0.01": metrics["mindcf_p0.01"],
                                                   "mindcf_p0.05": metrics["mindcf_p0.05"], "norm": "none",
                                                   "task": "sv", "train_seconds": 1.0}]))
    return exp


def test_paired_comparison_over_seeds(tmp_path):
    """Variant B (2 runs) clearly beats A (2 runs): P(EER_B < EER_A) near 1, the EER difference below 0."""
    from spkpeft.bin.compare import main

    rng = np.random.default_rng(0)
    speakers = [f"s{k:02d}" for k in range(30)]
    utts = [f"{s}/u{j}" for s in speakers for j in range(4)]
    pairs = sorted({(a, b) for a in utts for b in rng.choice(utts, 8) if a != b})
    labels = np.array([a.split("/")[0] == b.split("/")[0] for a, b in pairs])
    (tmp_path / "trials").mkdir()
    trials = tmp_path / "trials" / "t"
    trials.write_text("".join(f"{a} {b} {'target' if t else 'nontarget'}\n" for (a, b), t in zip(pairs, labels)))
    (tmp_path / "utt2spk").write_text("".join(f"{u} {u.split('/')[0]}\n" for u in utts))
    exps = [write_scored_experiment(tmp_path / "exp", name, labels * shift + rng.normal(size=labels.size), trials)
            for name, shift in (("a", 1.0), ("a_seed2", 1.0), ("b", 3.0), ("b_seed2", 3.0))]
    assert main([*map(str, exps), "--out", str(tmp_path / "out"), "--trials-dir", str(tmp_path / "trials"),
                 "--seeds", "2", "--utt2spk", str(tmp_path / "utt2spk"), "--bootstrap", "200"]) == 0
    with open(tmp_path / "out" / "results.csv", newline="") as handle:
        rows = {r["variant"]: r for r in csv.DictReader(handle)}
    assert list(rows) == ["a", "b"] and rows["a"]["seeds"] == "2" and rows["a"]["p_better"] == ""
    assert rows["b"]["vs"] == "a" and float(rows["b"]["p_better"]) > 0.99
    assert json.loads(rows["b"]["delta_eer_ci95"])[1] < 0
    assert float(rows["a"]["train_seconds"]) == 1.0
    with pytest.raises(SpkpeftError, match="groups of 2"):
        main([*map(str, exps[:3]), "--out", str(tmp_path / "out"), "--seeds", "2"])
