"""EER / minDCF against brute force, sklearn and hand-worked cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_curve

from spkpeft.errors import SpkpeftError
from spkpeft.eval.metrics import compute_eer, compute_metrics, compute_min_dcf

# ---------------------------------------------------------------- references


def brute_operating_points(scores: np.ndarray, labels: np.ndarray) -> list[tuple[float, float]]:
    """(P_fa, P_miss) for thresholds = every distinct score (ascending) then +inf; accept iff s >= t."""
    n_tar, n_non = labels.sum(), (~labels).sum()
    points = []
    for t in [*sorted(set(scores.tolist())), math.inf]:
        accepted = scores >= t
        p_miss = np.count_nonzero(labels & ~accepted) / n_tar
        p_fa = np.count_nonzero(~labels & accepted) / n_non
        points.append((p_fa, p_miss))
    return points


def interpolated_eer(points: list[tuple[float, float]]) -> float:
    """First point with P_miss >= P_fa, linear interpolation with the previous one."""
    k = next(i for i, (fa, miss) in enumerate(points) if miss >= fa)
    (fa0, miss0), (fa1, miss1) = points[k - 1], points[k]
    d0, d1 = miss0 - fa0, miss1 - fa1
    w = -d0 / (d1 - d0)
    return (1 - w) * miss0 + w * miss1


def dcf_from_points(points, p: float, c_miss: float, c_fa: float) -> float:
    """Normalised min DCF over the given operating points."""
    best = min(c_miss * miss * p + c_fa * fa * (1 - p) for fa, miss in points)
    return best / min(c_miss * p, c_fa * (1 - p))


def sklearn_points(scores: np.ndarray, labels: np.ndarray) -> list[tuple[float, float]]:
    """Operating points from sklearn's roc_curve, ordered accept-all -> reject-all."""
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    return list(zip(fpr[::-1].tolist(), (1 - tpr[::-1]).tolist()))


# ---------------------------------------------------------------- brute force with ties

COSTS = [(0.01, 1, 1), (0.05, 1, 1), (0.5, 1, 1), (0.3, 10, 1), (0.001, 1, 10), (0.9, 2.5, 0.5)]


@pytest.mark.parametrize("seed", range(40))
def test_matches_brute_force_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 200))
    decimals = int(rng.integers(0, 3))  # heavy ties
    labels = rng.random(n) < rng.uniform(0.1, 0.9)
    labels[:2] = [True, False]
    scores = np.round(rng.standard_normal(n) + 1.5 * labels * rng.random(), decimals)
    points = brute_operating_points(scores, labels)
    ps = [p for p, _, _ in COSTS]
    assert compute_eer(scores, labels) == pytest.approx(interpolated_eer(points), abs=1e-12)
    for p, c_miss, c_fa in COSTS:
        ref = dcf_from_points(points, p, c_miss, c_fa)
        assert compute_min_dcf(scores, labels, p, c_miss, c_fa) == pytest.approx(ref, abs=1e-12)
    result = compute_metrics(scores, labels, ps)
    assert result["eer_pct"] == pytest.approx(100 * interpolated_eer(points), abs=1e-10)
    for p in ps:
        assert result[f"mindcf_p{p:g}"] == pytest.approx(dcf_from_points(points, p, 1, 1), abs=1e-12)


# ---------------------------------------------------------------- sklearn on large sets


@pytest.mark.parametrize("n, frac", [(100_000, 0.5), (1_000_000, 0.1)])
def test_matches_sklearn_large(n: int, frac: float) -> None:
    rng = np.random.default_rng(n)
    labels = rng.random(n) < frac
    scores = rng.standard_normal(n) + 2.0 * labels
    points = sklearn_points(scores, labels)
    result = compute_metrics(scores, labels, (0.01, 0.05))
    assert result["eer_pct"] / 100 == pytest.approx(interpolated_eer(points), abs=1e-9)
    for p in (0.01, 0.05):
        assert result[f"mindcf_p{p:g}"] == pytest.approx(dcf_from_points(points, p, 1, 1), abs=1e-9)


def test_matches_sklearn_with_ties() -> None:
    rng = np.random.default_rng(7)
    labels = rng.random(50_000) < 0.3
    scores = np.round(rng.standard_normal(labels.size) + labels, 2)
    points = sklearn_points(scores, labels)
    assert compute_eer(scores, labels) == pytest.approx(interpolated_eer(points), abs=1e-12)
    assert compute_min_dcf(scores, labels, 0.01) == pytest.approx(dcf_from_points(points, 0.01, 1, 1), abs=1e-12)


# ---------------------------------------------------------------- hand-checked


def test_hand_worked_example() -> None:
    # scores 0.1(N) 0.4(T) 0.4(N) 0.8(T); n_target = n_nontarget = 2.
    # threshold  P_miss  P_fa   d = P_miss - P_fa
    #   0.1       0      1      -1      (accept all)
    #   0.4       0      1/2    -1/2    (0.1 rejected)
    #   0.8       1/2    0      +1/2    (tie group 0.4 rejected together)
    #   +inf      1      0      +1      (reject all)
    # Crossing between (P_fa, P_miss) = (1/2, 0) and (0, 1/2): w = 1/2, EER = 1/4.
    # p = 0.5: DCF/0.5 = P_miss + P_fa = 1, 1/2, 1/2, 1 -> 0.5.
    # p = 0.01: (0.01 P_miss + 0.99 P_fa)/0.01 = P_miss + 99 P_fa = 99, 49.5, 0.5, 1 -> 0.5.
    # p = 0.5, c_miss = 10: (5 P_miss + 0.5 P_fa)/0.5 = 10 P_miss + P_fa = 1, 0.5, 5, 10 -> 0.5.
    # p = 0.5, c_fa = 4: (0.5 P_miss + 2 P_fa)/0.5 = P_miss + 4 P_fa = 4, 2, 0.5, 1 -> 0.5.
    # p = 0.9, c_fa = 0.1: (0.9 P_miss + 0.01 P_fa)/0.01 = 90 P_miss + P_fa = 1, 0.5, 45, 90 -> 0.5.
    scores, labels = [0.1, 0.4, 0.4, 0.8], [False, True, False, True]
    assert compute_eer(scores, labels) == 0.25
    assert compute_min_dcf(scores, labels, 0.5) == 0.5
    assert compute_min_dcf(scores, labels, 0.01) == pytest.approx(0.5)
    assert compute_min_dcf(scores, labels, 0.5, c_miss=10) == pytest.approx(0.5)
    assert compute_min_dcf(scores, labels, 0.5, c_fa=4) == pytest.approx(0.5)
    # Breaking the tie (target 0.4 -> 0.45): threshold 0.45 rejects both non-targets
    # and accepts both targets, (P_fa, P_miss) = (0, 0), so EER = 0.
    assert compute_eer([0.1, 0.45, 0.4, 0.8], labels) == 0.0


def test_unequal_class_sizes_by_hand() -> None:
    # T: 1, 3   N: 0, 2, 4.  thresholds 0,1,2,3,4,inf:
    # P_miss: 0, 0, 1/2, 1/2, 1, 1    P_fa: 1, 2/3, 2/3, 1/3, 1/3, 0
    # first P_miss >= P_fa at threshold 3 (1/2 vs 1/3); previous point (2/3, 1/2).
    # d: -1/6 then +1/6 -> w = 1/2, EER = P_miss = 1/2 on the horizontal segment.
    assert compute_eer([1, 3, 0, 2, 4], [1, 1, 0, 0, 0]) == pytest.approx(0.5, abs=1e-15)


def test_perfect_separation() -> None:
    scores = np.array([-3.0, -1.0, 0.5, 0.5, 2.0, 9.0])
    labels = np.array([0, 0, 0, 0, 1, 1], dtype=bool)
    result = compute_metrics(scores, labels, (0.01, 0.05, 0.5))
    assert result["eer_pct"] == 0.0
    assert result["mindcf_p0.01"] == result["mindcf_p0.05"] == result["mindcf_p0.5"] == 0.0
    assert (result["n_trials"], result["n_target"]) == (6, 2)


def test_perfect_inversion() -> None:
    labels = np.array([1, 1, 0, 0, 0], dtype=bool)
    assert compute_eer([0.0, 1.0, 2.0, 3.0, 4.0], labels) == 1.0
    assert compute_min_dcf([0.0, 1.0, 2.0, 3.0, 4.0], labels, 0.01) == 1.0


@pytest.mark.parametrize("n_tar, n_non", [(1, 1), (1, 5), (7, 3), (100, 1000)])
def test_all_tied(n_tar: int, n_non: int) -> None:
    labels = np.r_[np.ones(n_tar, bool), np.zeros(n_non, bool)]
    scores = np.full(labels.size, 0.3)
    assert compute_eer(scores, labels) == 0.5
    for p in (0.01, 0.05, 0.5):
        assert compute_min_dcf(scores, labels, p) == 1.0  # only accept-all / reject-all exist


def test_tie_group_is_never_split() -> None:
    # If ties were split target-first, P_miss could be 0 with P_fa 0 -> EER 0 wrongly.
    labels = np.array([1, 0, 1, 0], dtype=bool)
    assert compute_eer([1.0, 1.0, 1.0, 1.0], labels) == 0.5
    assert compute_eer(np.ones(4), labels[::-1]) == 0.5


def test_invariances() -> None:
    rng = np.random.default_rng(3)
    labels = rng.random(500) < 0.4
    scores = np.round(rng.standard_normal(500) + labels, 1)
    base = compute_metrics(scores, labels, (0.01, 0.05, 0.2))
    perm = rng.permutation(500)
    assert compute_metrics(scores[perm], labels[perm], (0.01, 0.05, 0.2)) == base
    monotone = compute_metrics(np.exp(2 * scores) - 5, labels, (0.01, 0.05, 0.2))
    assert monotone == pytest.approx(base, abs=1e-12)
    assert compute_metrics(scores, labels.astype(int), (0.01, 0.05, 0.2)) == base


def test_compute_metrics_keys_and_types() -> None:
    result = compute_metrics([0.1, 0.2, 0.3], [0, 1, 1], p_targets=(0.01, 0.05, 0.001))
    assert list(result) == ["eer_pct", "mindcf_p0.01", "mindcf_p0.05", "mindcf_p0.001", "n_trials", "n_target"]
    assert all(type(result[k]) is float for k in list(result)[:4])
    assert type(result["n_trials"]) is int and type(result["n_target"]) is int
    assert list(compute_metrics([0.1, 0.2], [0, 1])) == ["eer_pct", "mindcf_p0.01", "mindcf_p0.05",
                                                        "n_trials", "n_target"]


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize("scores, labels, match", [
    ([0.1, 0.2], [1], "equal lengths"),
    ([0.1, 0.2], [1, 1], "at least one target and one non-target"),
    ([0.1, 0.2], [0, 0], "at least one target and one non-target"),
    ([], [], "at least one target"),
    ([0.1, float("nan")], [1, 0], "non-finite"),
    ([0.1, float("inf")], [1, 0], "non-finite"),
    ([0.1, 0.2], [1, 2], "0/1"),
    ([[0.1, 0.2]], [[1, 0]], "1-D"),
])
def test_invalid_inputs(scores, labels, match: str) -> None:
    with pytest.raises(SpkpeftError, match=match):
        compute_eer(scores, labels)
    with pytest.raises(SpkpeftError, match=match):
        compute_metrics(scores, labels)


@pytest.mark.parametrize("kwargs, match", [
    ({"p_target": 0.0}, "p_target"), ({"p_target": 1.0}, "p_target"),
    ({"p_target": 0.1, "c_miss": 0}, "c_miss"), ({"p_target": 0.1, "c_fa": -1}, "c_fa"),
    ({"p_target": 0.1, "c_fa": float("nan")}, "c_fa"),
])
def test_invalid_costs(kwargs, match: str) -> None:
    with pytest.raises(SpkpeftError, match=match):
        compute_min_dcf([0.1, 0.2], [0, 1], **kwargs)
