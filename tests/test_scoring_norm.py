"""Score normalisation (S-norm, AS-norm), enrollment models, results rows with norm, DET points and plots."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import python_module
from spkpeft.errors import SpkpeftError
from spkpeft.eval.metrics import compute_eer, det_points
from spkpeft.eval.plots import det_curve, score_distribution
from spkpeft.tasks.sv.scoring import cohort_stats, length_normalize, score_trial_lists
from spkpeft.io.trials import read_scores
from test_score import write_embeddings

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def unit(v, mean):
    x = np.asarray(v, dtype=np.float64) - mean
    return x / np.linalg.norm(x)


def loop_norm(emb, pairs, mean, cohort, top_n):
    """Reference: S-norm (top_n None) / AS-norm computed trial by trial with plain loops."""
    out = []
    cohort_units = [unit(c, mean) for c in cohort]
    for a, b in pairs:
        ea, eb = unit(emb[a], mean), unit(emb[b], mean)
        s = float(ea @ eb)
        sides = []
        for e in (ea, eb):
            cs = sorted((float(e @ c) for c in cohort_units), reverse=True)
            if top_n is not None:
                cs = cs[:top_n]
            mu = sum(cs) / len(cs)
            sd = (sum((x - mu) ** 2 for x in cs) / len(cs)) ** 0.5
            sides.append((s - mu) / sd)
        out.append(0.5 * (sides[0] + sides[1]))
    return np.array(out)


def random_setup(seed=0, n_spk=5, per_spk=3, dim=8, n_cohort=12):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_spk, dim))
    emb = {f"s{s}-u{u}": centers[s] + 0.7 * rng.normal(size=dim) for s in range(n_spk) for u in range(per_spk)}
    names = sorted(emb)
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    cohort = rng.normal(size=(n_cohort, dim)) + 0.5
    mean = rng.normal(size=dim) * 0.3
    return emb, pairs, cohort, mean


@pytest.mark.parametrize("top_n", [3, 7, 12, 300])
def test_snorm_and_asnorm_match_a_loop(top_n):
    emb, pairs, cohort, mean = random_setup()
    utt1, utt2 = [a for a, _ in pairs], [b for _, b in pairs]
    (scored,) = score_trial_lists(emb, [(utt1, utt2, "t")], mean=mean, cohort=cohort,
                                  norms=("none", "snorm", "asnorm"), top_n=top_n)
    raw = np.array([unit(emb[a], mean) @ unit(emb[b], mean) for a, b in pairs])
    np.testing.assert_allclose(scored["none"], raw, atol=1e-12)
    np.testing.assert_allclose(scored["snorm"], loop_norm(emb, pairs, mean, cohort, None), atol=1e-10)
    np.testing.assert_allclose(scored["asnorm"], loop_norm(emb, pairs, mean, cohort, top_n), atol=1e-10)
    if top_n >= len(cohort):
        np.testing.assert_allclose(scored["asnorm"], scored["snorm"], atol=1e-12)


def test_cohort_stats_blocks_do_not_change_the_result():
    rng = np.random.default_rng(1)
    e, c = length_normalize(rng.normal(size=(23, 6))), length_normalize(rng.normal(size=(9, 6)))
    whole = cohort_stats(e, c, [None, 4])
    blocked = cohort_stats(e, c, [None, 4], block_elements=10)  # one row (9 scores) per block
    for (mu1, sd1), (mu2, sd2) in zip(whole, blocked):
        np.testing.assert_allclose(mu1, mu2, atol=1e-14)
        np.testing.assert_allclose(sd1, sd2, atol=1e-14)


def test_normalisation_needs_a_cohort():
    emb, pairs, _, _ = random_setup()
    with pytest.raises(SpkpeftError, match="cohort"):
        score_trial_lists(emb, [([pairs[0][0]], [pairs[0][1]], "t")], norms=("snorm",))


def test_det_points_and_eer_point():
    scores = np.array([0.1, 0.2, 0.2, 0.5, 0.3, 0.9])
    labels = np.array([0, 1, 0, 1, 0, 1], dtype=bool)
    p_fa, p_miss = det_points(scores, labels)
    # thresholds 0.1, 0.2, 0.3, 0.5, 0.9, +inf
    np.testing.assert_allclose(p_fa, [1, 2 / 3, 1 / 3, 0, 0, 0])
    np.testing.assert_allclose(p_miss, [0, 0, 1 / 3, 1 / 3, 2 / 3, 1])
    # the EER lies on the segment of the DET path that crosses P_miss = P_fa
    assert compute_eer(scores, labels) == pytest.approx(1 / 3)


def assert_png(path):
    data = path.read_bytes()
    assert len(data) > 0 and data[:8] == PNG_MAGIC


def test_plots_are_png(tmp_path):
    rng = np.random.default_rng(2)
    labels = rng.random(5000) < 0.3
    curves = {"a": (rng.normal(size=5000) + 2 * labels, labels), "b": (rng.normal(size=5000) + labels, labels)}
    assert_png(det_curve(curves, tmp_path / "det.png", title="t"))
    assert_png(score_distribution(curves, tmp_path / "scores.png"))


def enrollment_setup(tmp_path):
    rng = np.random.default_rng(3)
    centers = rng.normal(size=(4, 8))
    enroll_utts = {f"e{s}-{k}": centers[s] + 0.5 * rng.normal(size=8) for s in range(4) for k in range(3)}
    test = {f"t{s}-{k}": centers[s] + 0.5 * rng.normal(size=8) for s in range(4) for k in range(2)}
    train = {f"c{s}-{k}": rng.normal(size=8) + 1.0 for s in range(6) for k in range(2)}
    (tmp_path / "spk2utt").write_text("".join(f"m{s} {' '.join(f'e{s}-{k}' for k in range(3))}\n" for s in range(4)))
    (tmp_path / "utt2spk").write_text("".join(f"{u} {u.split('-')[0]}\n" for u in sorted(train)))
    rows = sorted((f"m{s}", t) for s in range(4) for t in test)
    trials = tmp_path / "cnc_eval"
    trials.write_text("".join(f"{m} {t} {'target' if m[1:] == t[1:].split('-')[0] else 'nontarget'}\n"
                              for m, t in rows))
    scps = [write_embeddings(tmp_path / "enroll", enroll_utts), write_embeddings(tmp_path / "test", test)]
    return scps, write_embeddings(tmp_path / "train", train), trials, enroll_utts, test, train, rows


def test_cli_enrollment_cohort_norm_rows(tmp_path):
    scps, train_scp, trials, enroll_utts, test, train, rows = enrollment_setup(tmp_path)
    exp = tmp_path / "exp"
    res = python_module("spkpeft.bin.score", "--embeddings", *scps, "--trials", trials, "--mean", train_scp,
                        "--enroll", tmp_path / "spk2utt", "--cohort", train_scp,
                        "--cohort-utt2spk", tmp_path / "utt2spk", "--top-n", "3",
                        "--score-dir", exp / "scores", "--results", exp / "results.json")
    assert res.returncode == 0, res.stderr
    results = json.loads((exp / "results.json").read_text())
    assert [(r["trials"], r["norm"]) for r in results] == [("cnc_eval", n) for n in ("none", "snorm", "asnorm")]
    assert list(results[0]) == ["trials", "n_trials", "eer_pct", "mindcf_p0.01", "mindcf_p0.05", "norm", "task",
                                "eer_ci95", "mindcf_p0.01_ci95", "mindcf_p0.05_ci95", "ci_draws", "min_cllr"]

    f32 = {k: np.float32(v).astype(np.float64) for k, v in {**enroll_utts, **test, **train}.items()}
    mean = np.mean([f32[u] for u in train], axis=0)
    models = {f"m{s}": np.mean([f32[f"e{s}-{k}"] for k in range(3)], axis=0) for s in range(4)}
    cohort = [np.mean([f32[f"c{s}-{k}"] for k in range(2)], axis=0) for s in range(6)]
    table = {**models, **{t: f32[t] for t in test}}
    raw = read_scores(exp / "scores" / "cnc_eval.score")
    assert list(raw) == rows  # sorted like LC_ALL=C
    np.testing.assert_allclose([raw[p] for p in rows],
                               [unit(table[m], mean) @ unit(table[t], mean) for m, t in rows], atol=1e-9)
    for norm, top_n in (("snorm", None), ("asnorm", 3)):
        got = read_scores(exp / "scores" / f"cnc_eval.{norm}.score")
        np.testing.assert_allclose([got[p] for p in rows], loop_norm(table, rows, mean, cohort, top_n), atol=1e-9)

    report = python_module("spkpeft.bin.report", exp / "results.json", "--trials-dir", tmp_path)
    assert report.returncode == 0, report.stderr
    assert "| asnorm |" in report.stdout
    for name in ("det_cnc_eval.png", "scores_cnc_eval.png"):
        assert_png(exp / "plots" / name)


def test_cli_unknown_enrollment_utterance(tmp_path):
    scps, train_scp, trials, *_ = enrollment_setup(tmp_path)
    (tmp_path / "spk2utt").write_text("m0 e0-0 nope\n")
    res = python_module("spkpeft.bin.score", "--embeddings", *scps, "--trials", trials, "--enroll",
                        tmp_path / "spk2utt", "--score-dir", tmp_path / "s", "--results", tmp_path / "r.json")
    assert res.returncode == 1 and "'nope'" in res.stderr and "spk2utt" in res.stderr
