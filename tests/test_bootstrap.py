"""Speaker bootstrap: exact weighted metrics, batching invariance, coverage, paired comparison."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from spkpeft.errors import SpkpeftError
from spkpeft.eval.bootstrap import (bootstrap_metrics, cluster_index, draw_counts, metric_intervals,
                                    paired_comparison, percentile_ci)
from spkpeft.eval.metrics import compute_metrics


def speaker_trials(rng, speakers=40, n_tar=5, n_non=20, mu=2.0, sd=1.0, tau=0.7):
    """Scores with a speaker effect: speaker s's targets ~ N(mu + a_s, sd^2), non-targets ~
    N(b_s, sd^2), a_s, b_s ~ N(0, tau^2). Pooled over speakers both classes have variance
    sd^2 + tau^2, so the population EER is Phi(-mu / (2 sqrt(sd^2 + tau^2)))."""
    a, b = rng.normal(0, tau, speakers), rng.normal(0, tau, speakers)
    spk = np.repeat(np.arange(speakers), n_tar + n_non)
    labels = np.tile(np.r_[np.ones(n_tar, bool), np.zeros(n_non, bool)], speakers)
    scores = np.where(labels, mu + a[spk], b[spk]) + rng.normal(0, sd, spk.size)
    return scores, labels, spk


def test_a_draw_equals_the_metrics_of_the_repeated_trial_list():
    rng = np.random.default_rng(1)
    spk = rng.integers(0, 30, 1500).astype(str)
    labels = rng.random(1500) < 0.3
    scores = np.round(rng.normal(labels * 1.5, 1.0), 1)  # many ties, some mixing both classes
    per_draw = bootstrap_metrics(scores, labels, spk, draws=12, seed=5)
    counts = draw_counts(cluster_index(spk)[1], 12, 5)
    index = cluster_index(spk)[0]
    for b in range(12):
        weight = counts[b][index]
        expected = compute_metrics(np.repeat(scores, weight), np.repeat(labels, weight))
        for key in ("eer_pct", "mindcf_p0.01", "mindcf_p0.05"):
            assert per_draw[key][b] == pytest.approx(expected[key], rel=1e-12, abs=1e-12), (key, b)


def test_draws_do_not_depend_on_the_block_size():
    rng = np.random.default_rng(2)
    scores, labels, spk = speaker_trials(rng)
    whole = bootstrap_metrics(scores, labels, spk, draws=50, seed=3)
    blocked = bootstrap_metrics(scores, labels, spk, draws=50, seed=3, block_elements=70)
    assert whole.keys() == blocked.keys()
    for key in whole:
        np.testing.assert_array_equal(whole[key], blocked[key])
    again = bootstrap_metrics(scores[::-1], labels[::-1], spk[::-1], draws=50, seed=3)
    np.testing.assert_allclose(again["eer_pct"], whole["eer_pct"], rtol=1e-12)  # trial order is irrelevant


def test_speaker_bootstrap_covers_the_true_eer_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    true_eer = 100 * norm.cdf(-2.0 / (2 * np.sqrt(1.0 + 0.7 ** 2)))
    reps, contrast, covered, covered_trials = 200, 100, 0, 0
    for rep in range(reps):
        scores, labels, spk = speaker_trials(rng)
        lo, hi = percentile_ci(bootstrap_metrics(scores, labels, spk, draws=200, seed=rep, p_targets=())["eer_pct"])
        covered += lo <= true_eer <= hi
        if rep < contrast:  # trials resampled as if independent: too narrow when speakers differ
            lo, hi = percentile_ci(bootstrap_metrics(scores, labels, np.arange(scores.size), draws=200, seed=rep,
                                                     p_targets=())["eer_pct"])
            covered_trials += lo <= true_eer <= hi
    print(f"coverage: speakers resampled {covered / reps:.3f}, trials resampled {covered_trials / contrast:.3f}")
    assert 0.88 <= covered / reps <= 0.99, covered / reps
    assert covered_trials / contrast < covered / reps - 0.05, (covered_trials / contrast, covered / reps)


def test_paired_comparison():
    rng = np.random.default_rng(4)
    scores, labels, spk = speaker_trials(rng)
    worse = scores + rng.normal(0, 1.5, scores.size)
    good = bootstrap_metrics(scores, labels, spk, draws=300)["eer_pct"]
    bad = bootstrap_metrics(worse, labels, spk, draws=300)["eer_pct"]
    better = paired_comparison(good, bad)
    assert better["p_better"] > 0.99
    assert better["delta_ci95"][1] < 0
    assert paired_comparison(bad, good)["p_better"] < 0.01
    same = paired_comparison(good, good.copy())
    assert same == {"p_better": 0.5, "delta_ci95": [0.0, 0.0]}
    with pytest.raises(SpkpeftError, match="same draws"):
        paired_comparison(good, bad[:10])


def test_intervals_and_bad_input():
    rng = np.random.default_rng(5)
    scores, labels, spk = speaker_trials(rng)
    ci = metric_intervals(bootstrap_metrics(scores, labels, spk, draws=200))
    assert set(ci) == {"eer_ci95", "mindcf_p0.01_ci95", "mindcf_p0.05_ci95"}
    point = compute_metrics(scores, labels)
    assert ci["eer_ci95"][0] < point["eer_pct"] < ci["eer_ci95"][1]
    # one speaker owns all targets: draws without it have no target trial and are dropped
    one = bootstrap_metrics(np.r_[1.0, 0.0, 0.5], np.array([True, False, False]), ["a", "b", "c"], draws=50)
    assert np.isnan(one["eer_pct"]).any() and np.isfinite(percentile_ci(one["eer_pct"])).all()
    with pytest.raises(SpkpeftError, match="no bootstrap draw"):
        percentile_ci(np.full(5, np.nan))
    with pytest.raises(SpkpeftError, match="at least 1 draw"):
        bootstrap_metrics(scores, labels, spk, draws=0)
    with pytest.raises(SpkpeftError, match="trial speakers"):
        bootstrap_metrics(scores, labels, spk[:-1])
