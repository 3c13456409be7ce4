"""Metrics: speaker verification (EER, NIST minimum DCF) and utterance classification (accuracy, macro-F1).

Verification conventions (the EER / minDCF / DET functions and ``compute_metrics`` the tool)
--------------------------------------------------------------------------------------------
* A trial is **accepted** (declared "target") when ``score >= threshold``.
* Thresholds are only placed *between* distinct score values: all trials with
  the same score are accepted or rejected together. With ``v_1 < ... < v_m``
  the distinct scores, the thresholds are ``v_1`` (accept all), ``v_2``, ...,
  ``v_m`` and ``+inf`` (reject all): ``m + 1`` operating points.
* At a threshold ``t``::

      P_miss(t) = #{targets with score < t}     / n_target
      P_fa(t)   = #{non-targets with score >= t} / n_nontarget

* **minDCF** (NIST normalised detection cost), for a prior ``p = p_target``::

      DCF(t)  = c_miss * P_miss(t) * p + c_fa * P_fa(t) * (1 - p)
      minDCF  = min_t DCF(t) / min(c_miss * p, c_fa * (1 - p))

  so that 1.0 is the cost of the best trivial system (accept all or reject all).
* **EER**. Going from accept-all to reject-all, ``d(t) = P_miss(t) - P_fa(t)``
  rises strictly from -1 to +1. Joining consecutive operating points
  ``(P_fa, P_miss)`` with straight segments (the ROC / DET staircase, where a
  tie group containing both classes gives a diagonal segment) yields a
  continuous path; the EER is the unique point of this path where
  ``P_miss = P_fa``. Precisely: let ``k`` be the first operating point with
  ``d_k >= 0`` (``k >= 1``), ``a = k - 1``, ``w = -d_a / (d_k - d_a)`` in
  ``(0, 1]``; then ``EER = (1 - w) * P_miss_a + w * P_miss_k``
  (``= (1 - w) * P_fa_a + w * P_fa_k``). All scores tied gives EER = 0.5, a
  perfect separation gives EER = 0.

:func:`compute_eer` returns a **fraction** in [0, 1];
:func:`compute_metrics` reports it in percent (``eer_pct``).

Algorithm (O(n log n), exact with ties)
---------------------------------------
The target and non-target scores are sorted separately (the same work as one
sort of all scores, and 2-3x cheaper than ``argsort`` + gather). With ``T`` and
``N`` the sorted target and non-target scores:

* minDCF: between two consecutive distinct target scores ``P_miss`` is constant
  while ``P_fa`` can only fall as the threshold rises, so the minimum is reached
  at a threshold equal to a target score or at ``+inf``. At ``t = T[i]``
  (``i`` the first index of its tie group) ``#misses = i`` and
  ``#correct rejections = #{N < T[i]}`` (one ``searchsorted``). Later members
  of a tie group give points with the same ``P_fa`` and a larger ``P_miss``,
  i.e. a larger cost, so they never win and need no special care.
* EER: ``d`` evaluated at ``T[i]`` (miss ``i``) or ``N[j]`` (correct rejections
  ``j``) increases strictly with the index, so a binary search on each side
  finds the largest distinct score ``v`` whose threshold still has ``d < 0``;
  the crossing segment goes from threshold ``v`` to the next distinct score
  (rejecting the tie group at ``v``). Counts are integers, the final division
  is done once with Python integers (exact up to the last rounding).

Classification (``task: cls``)
------------------------------
:func:`confusion_matrix`, :func:`accuracy_pct`, :func:`per_class_scores` and
:func:`macro_f1` (numpy; the same values as scikit-learn's ``confusion_matrix``,
``accuracy_score``, ``precision_recall_fscore_support(zero_division=0)`` and
``f1_score(average="macro")``); their formulas are in their docstrings.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from spkpeft.errors import SpkpeftError

DEFAULT_P_TARGETS: tuple[float, ...] = (0.01, 0.05)


# ---------------------------------------------------------------- validation


def _as_scores_labels(scores: Sequence[float] | np.ndarray,
                      labels: Sequence[bool] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Check and convert to (float64 scores, bool labels); raise SpkpeftError."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels)
    if s.ndim != 1 or y.ndim != 1:
        raise SpkpeftError(f"scores and labels must be 1-D, got shapes {s.shape} and {y.shape}")
    if s.shape != y.shape:
        raise SpkpeftError(f"{s.size} scores but {y.size} labels; they must have equal lengths")
    if y.dtype != np.bool_:
        if y.size and not np.isin(y, (0, 1)).all():
            raise SpkpeftError("labels must be booleans or 0/1 (1 = target trial)")
        y = y.astype(np.bool_)
    bad = ~np.isfinite(s)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise SpkpeftError(f"{int(bad.sum())} non-finite score(s), the first is {s[i]!r} at index {i}")
    n_target = int(np.count_nonzero(y))
    if n_target == 0 or n_target == y.size:
        raise SpkpeftError(f"need at least one target and one non-target trial, "
                           f"got {n_target} target and {y.size - n_target} non-target")
    return s, y


def _check_costs(p_targets: Iterable[float], c_miss: float, c_fa: float) -> list[float]:
    """Validate p_target in (0, 1) and positive costs; return p_targets as floats."""
    ps = [float(p) for p in p_targets]
    for p in ps:
        if not 0.0 < p < 1.0:
            raise SpkpeftError(f"p_target must lie strictly between 0 and 1, got {p:g}")
    for name, c in (("c_miss", c_miss), ("c_fa", c_fa)):
        if not (np.isfinite(c) and c > 0):
            raise SpkpeftError(f"{name} must be a positive number, got {c!r}")
    return ps


def _split_sorted(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted target scores and sorted non-target scores."""
    return np.sort(scores[labels]), np.sort(scores[~labels])


# ---------------------------------------------------------------- minDCF


def _min_dcf_sorted(tar: np.ndarray, non_below_tar: np.ndarray, n_non: int,
                    p: float, c_miss: float, c_fa: float) -> float:
    """Normalised minDCF from sorted targets and ``#{non < tar[i]}`` per target."""
    n_tar = tar.size
    w_miss = c_miss * p / n_tar           # cost of one miss
    w_fa = c_fa * (1.0 - p) / n_non       # cost of one false acceptance
    # Threshold tar[i]: misses = i, false acceptances = n_non - non_below_tar[i].
    cost = w_miss * np.arange(n_tar) + w_fa * (n_non - non_below_tar)
    best = min(float(cost.min()), c_miss * p)  # c_miss * p: reject all (+inf)
    return best / min(c_miss * p, c_fa * (1.0 - p))


def compute_min_dcf(scores: Sequence[float] | np.ndarray, labels: Sequence[bool] | np.ndarray,
                    p_target: float, c_miss: float = 1.0, c_fa: float = 1.0) -> float:
    """NIST normalised minimum detection cost (see module docstring).

    ``min_t (c_miss*P_miss(t)*p + c_fa*P_fa(t)*(1-p)) / min(c_miss*p, c_fa*(1-p))``
    with ``p = p_target``; labels are True (or 1) for target trials.
    """
    (p,) = _check_costs([p_target], c_miss, c_fa)
    s, y = _as_scores_labels(scores, labels)
    tar, non = _split_sorted(s, y)
    return _min_dcf_sorted(tar, np.searchsorted(non, tar, side="left"), non.size, p, c_miss, c_fa)


# ---------------------------------------------------------------- EER


def _count_before_crossing(own: np.ndarray, other: np.ndarray, own_is_target: bool,
                           n_tar: int, n_non: int) -> int:
    """Number of leading entries ``own[j]`` whose threshold has ``P_miss < P_fa``.

    At threshold ``own[j]`` the own-class count below it is taken as ``j`` (exact
    for the first member of a tie group, larger for the others), the other-class
    count is ``#{other < own[j]}``; the resulting ``d`` strictly increases with
    ``j``, so the set is a prefix, found by binary search.
    ``d < 0  <=>  misses * n_non + correct_rejections * n_tar < n_tar * n_non``.
    """
    lo, hi = 0, own.size
    while lo < hi:
        mid = (lo + hi) // 2
        below_other = int(np.searchsorted(other, own[mid], side="left"))
        miss, rej = (mid, below_other) if own_is_target else (below_other, mid)
        if miss * n_non + rej * n_tar < n_tar * n_non:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _eer_sorted(tar: np.ndarray, non: np.ndarray) -> float:
    """EER (fraction) from sorted target and non-target scores."""
    n_tar, n_non = int(tar.size), int(non.size)
    k_tar = _count_before_crossing(tar, non, True, n_tar, n_non)
    k_non = _count_before_crossing(non, tar, False, n_tar, n_non)
    # Largest distinct score whose threshold still has d < 0 (the smallest score
    # always qualifies: accept-all has d = -1, so k_tar + k_non >= 1).
    v = max(([tar[k_tar - 1]] if k_tar else []) + ([non[k_non - 1]] if k_non else []))
    miss_a = int(np.searchsorted(tar, v, side="left"))   # threshold v
    rej_a = int(np.searchsorted(non, v, side="left"))
    miss_b = int(np.searchsorted(tar, v, side="right"))  # next threshold: group v rejected
    rej_b = int(np.searchsorted(non, v, side="right"))
    # d scaled by n_tar * n_non (integers): d_a < 0 <= d_b.
    d_a = miss_a * n_non + rej_a * n_tar - n_tar * n_non
    d_b = miss_b * n_non + rej_b * n_tar - n_tar * n_non
    # EER = ((1-w) miss_a + w miss_b) / n_tar with w = -d_a / (d_b - d_a), exact ints.
    return (miss_a * d_b - miss_b * d_a) / ((d_b - d_a) * n_tar)


def compute_eer(scores: Sequence[float] | np.ndarray, labels: Sequence[bool] | np.ndarray) -> float:
    """Equal error rate as a **fraction** in [0, 1] (see module docstring).

    Accept iff ``score >= threshold``; thresholds between distinct scores only;
    linear interpolation between the two operating points around ``P_miss = P_fa``.
    """
    s, y = _as_scores_labels(scores, labels)
    return _eer_sorted(*_split_sorted(s, y))


# ---------------------------------------------------------------- DET curve


def tie_groups(sorted_scores: np.ndarray) -> np.ndarray:
    """Trials below each operating point of ascending ``sorted_scores``: ``[f_1, ..., f_m, n]``.

    ``f_k`` is the index of the first trial with the ``k``-th distinct score, so the
    threshold ``v_k`` rejects exactly the ``f_k`` trials before it; the final ``n``
    is the reject-all point (threshold ``+inf``). Length ``m + 1``.
    """
    n = sorted_scores.size
    return np.r_[np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]]), n]


def eer_from_counts(miss: np.ndarray, rej: np.ndarray, n_tar: np.ndarray, n_non: np.ndarray) -> np.ndarray:
    """EER (fraction) from (possibly weighted) counts at every operating point, vectorised over rows.

    ``miss[..., k]`` / ``rej[..., k]``: target / non-target weight below operating point
    ``k`` (ascending thresholds, accept-all first, reject-all last); ``n_tar``,
    ``n_non`` the totals (shape ``(..., 1)``). With ``d_k = miss_k n_non + rej_k n_tar
    - n_tar n_non`` (``P_miss - P_fa`` scaled by ``n_tar n_non``, non-decreasing), ``k``
    the first point with ``d_k >= 0`` and ``a = k - 1``, the EER is the crossing of the
    segment ``a -> k``: ``(miss_a d_k - miss_k d_a) / ((d_k - d_a) n_tar)`` (the formula
    of the module docstring; repeated points of zero-weight trials change nothing).
    Rows with ``n_tar = 0`` or ``n_non = 0`` give NaN.
    """
    d = miss * n_non + rej * n_tar - n_tar * n_non
    k = np.argmax(d >= 0, axis=-1)[..., None]
    a = np.maximum(k - 1, 0)
    d_a, d_k = np.take_along_axis(d, a, -1), np.take_along_axis(d, k, -1)
    m_a, m_k = np.take_along_axis(miss, a, -1), np.take_along_axis(miss, k, -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        eer = (m_a * d_k - m_k * d_a) / ((d_k - d_a) * n_tar)
    eer = np.where((n_tar > 0) & (n_non > 0), eer, np.nan)
    return eer[..., 0]


def min_dcf_from_counts(miss: np.ndarray, rej: np.ndarray, n_tar: np.ndarray, n_non: np.ndarray,
                        p: float, c_miss: float = 1.0, c_fa: float = 1.0) -> np.ndarray:
    """Normalised minDCF from (possibly weighted) counts at every operating point (see
    :func:`eer_from_counts` for the arguments): ``min_k [c_miss p miss_k / n_tar +
    c_fa (1 - p) (n_non - rej_k) / n_non] / min(c_miss p, c_fa (1 - p))``; NaN where a class is empty."""
    with np.errstate(divide="ignore", invalid="ignore"):
        cost = c_miss * p * miss / n_tar + c_fa * (1.0 - p) * (n_non - rej) / n_non
        best = cost.min(axis=-1) / min(c_miss * p, c_fa * (1.0 - p))
    return np.where((n_tar[..., 0] > 0) & (n_non[..., 0] > 0), best, np.nan)


def det_points(scores: Sequence[float] | np.ndarray,
               labels: Sequence[bool] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every operating point ``(P_fa, P_miss)`` (see the module docstring), from one sort.

    Returns two float64 arrays of length ``m + 1`` (``m`` distinct scores), in
    threshold order ``v_1`` (accept all: ``P_fa = 1, P_miss = 0``), ..., ``v_m``,
    ``+inf`` (reject all: ``P_fa = 0, P_miss = 1``): ``P_fa`` falls and
    ``P_miss`` rises along them. Joined by straight segments they are the DET
    (ROC) curve whose crossing with ``P_miss = P_fa`` is the EER.
    """
    s, y = _as_scores_labels(scores, labels)
    order = np.argsort(s, kind="stable")
    ordered, is_target = s[order], y[order]
    below = tie_groups(ordered)                                       # trials below each threshold
    misses = np.r_[0, np.cumsum(is_target)][below]
    n_tar = int(np.count_nonzero(y))
    n_non = s.size - n_tar
    return (n_non - (below - misses)) / n_non, misses / n_tar


# ---------------------------------------------------------------- all at once


def mindcf_key(p_target: float) -> str:
    """Result key for a prior, ``mindcf_p{p:g}``: 0.01 -> ``mindcf_p0.01``."""
    return f"mindcf_p{p_target:g}"


def compute_metrics(scores: Sequence[float] | np.ndarray, labels: Sequence[bool] | np.ndarray,
                    p_targets: Iterable[float] = DEFAULT_P_TARGETS,
                    c_miss: float = 1.0, c_fa: float = 1.0) -> dict[str, float | int]:
    """EER and minDCF for every prior from one (split) sort of the scores.

    Returns ``{"eer_pct": 100 * EER, "mindcf_p<p>": minDCF for each p in
    p_targets (key from :func:`mindcf_key`), "n_trials": n, "n_target": n_target}``
    (plain Python floats and ints, JSON-ready).
    """
    ps = _check_costs(p_targets, c_miss, c_fa)
    s, y = _as_scores_labels(scores, labels)
    tar, non = _split_sorted(s, y)
    out: dict[str, float | int] = {"eer_pct": 100.0 * _eer_sorted(tar, non)}
    non_below_tar = np.searchsorted(non, tar, side="left")
    for p in ps:
        out[mindcf_key(p)] = _min_dcf_sorted(tar, non_below_tar, non.size, p, c_miss, c_fa)
    out["n_trials"] = int(s.size)
    out["n_target"] = int(tar.size)
    return out


# ---------------------------------------------------------------- classification
#
# Utterance classification (``task: cls``). Labels and predictions are class
# indices in ``[0, K)``. With ``C`` the confusion matrix (rows: true class,
# columns: predicted class), for class ``k``::
#
#     tp_k = C[k, k]    fp_k = sum_j C[j, k] - tp_k    fn_k = sum_j C[k, j] - tp_k
#
# and every ratio whose denominator is 0 is defined as 0 (scikit-learn's
# ``zero_division=0``).


def _as_class_indices(values: Sequence[int] | np.ndarray, name: str, num_classes: int) -> np.ndarray:
    """Check and convert to a 1-D int64 array of indices in ``[0, num_classes)``; raise SpkpeftError."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise SpkpeftError(f"{name} must be 1-D, got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        if not (np.issubdtype(array.dtype, np.floating) and np.all(array == np.round(array))):
            raise SpkpeftError(f"{name} must be integer class indices, got dtype {array.dtype}")
    array = array.astype(np.int64)
    bad = (array < 0) | (array >= num_classes)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise SpkpeftError(f"{name}[{i}] = {array[i]} is not a class index in [0, {num_classes})")
    return array


def confusion_matrix(labels: Sequence[int] | np.ndarray, predictions: Sequence[int] | np.ndarray,
                     num_classes: int) -> np.ndarray:
    """``(K, K)`` int64 counts ``C[i, j] = #{utterances of true class i predicted as j}``, ``K = num_classes``.

    Rows are true classes, columns predicted classes (scikit-learn's
    ``confusion_matrix(labels, predictions, labels=range(K))``).
    """
    if int(num_classes) != num_classes or num_classes < 1:
        raise SpkpeftError(f"num_classes must be a positive integer, got {num_classes!r}")
    num_classes = int(num_classes)
    y = _as_class_indices(labels, "labels", num_classes)
    p = _as_class_indices(predictions, "predictions", num_classes)
    if y.size != p.size:
        raise SpkpeftError(f"{y.size} labels but {p.size} predictions; they must have equal lengths")
    return np.bincount(y * num_classes + p, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def accuracy_pct(labels: Sequence[int] | np.ndarray, predictions: Sequence[int] | np.ndarray) -> float:
    """Accuracy in percent: ``100 * #{i: predictions[i] == labels[i]} / n`` (``= 100 * trace(C) / sum(C)``)."""
    y, p = np.asarray(labels), np.asarray(predictions)
    if y.ndim != 1 or y.shape != p.shape:
        raise SpkpeftError(f"labels and predictions must be 1-D of equal length, got shapes {y.shape} and {p.shape}")
    if y.size == 0:
        raise SpkpeftError("accuracy of no utterances is undefined")
    return 100.0 * float(np.count_nonzero(y == p)) / y.size


def _as_confusion(confusion: np.ndarray) -> np.ndarray:
    c = np.asarray(confusion)
    if c.ndim != 2 or c.shape[0] != c.shape[1] or c.shape[0] == 0:
        raise SpkpeftError(f"a confusion matrix must be square and non-empty, got shape {c.shape}")
    if (c < 0).any():
        raise SpkpeftError("a confusion matrix cannot hold negative counts")
    return c.astype(np.int64)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator`` element-wise, 0 where the denominator is 0."""
    out = np.zeros(numerator.shape, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def per_class_scores(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class ``(precision, recall, f1)``, float64 arrays of length K, from a confusion matrix.

    ``precision_k = tp_k / (tp_k + fp_k)`` (column ``k``), ``recall_k = tp_k / (tp_k + fn_k)``
    (row ``k``), ``f1_k = 2 tp_k / (2 tp_k + fp_k + fn_k)`` (the harmonic mean of the two
    when both are defined); each is 0 where its denominator is 0, as scikit-learn's
    ``precision_recall_fscore_support(..., zero_division=0)``.
    """
    c = _as_confusion(confusion)
    tp = np.diag(c)
    predicted, true = c.sum(axis=0), c.sum(axis=1)
    return _ratio(tp, predicted), _ratio(tp, true), _ratio(2 * tp, predicted + true)


def macro_f1(confusion: np.ndarray) -> float:
    """Unweighted mean of ``f1_k`` (see :func:`per_class_scores`) over the classes present.

    A class is present when it occurs in the labels or the predictions (row or
    column ``k`` of the matrix has a count); classes in neither are left out, as
    in scikit-learn's ``f1_score(labels, predictions, average="macro")`` with its
    default ``labels`` (the union of both). A present class that is never
    predicted, or never correct, counts with ``f1_k = 0``.
    """
    c = _as_confusion(confusion)
    present = (c.sum(axis=0) + c.sum(axis=1)) > 0
    if not present.any():
        raise SpkpeftError("macro-F1 of no utterances is undefined")
    return float(per_class_scores(c)[2][present].mean())


# ---------------------------------------------------------------- calibrated scores (LLRs)
#
# These take **log-likelihood ratios** ``llr = log p(s | target) / p(s | non-target)``
# (natural log), e.g. the output of :mod:`spkpeft.eval.calibration`.


def bayes_threshold(p_target: float, c_miss: float = 1.0, c_fa: float = 1.0) -> float:
    """Bayes decision threshold on an LLR: ``log(c_fa (1 - p) / (c_miss p))`` (``-logit(p)`` for unit costs).

    Accepting ``llr >= threshold`` minimises the expected cost when the LLRs are
    calibrated (Brümmer & du Preez 2006, Sec. 2; NIST SRE evaluation plans).
    """
    (p,) = _check_costs([p_target], c_miss, c_fa)
    return float(np.log(c_fa * (1.0 - p)) - np.log(c_miss * p))


def actdcf_key(p_target: float) -> str:
    """Result key of the actual DCF for a prior: 0.01 -> ``actdcf_p0.01``."""
    return f"actdcf_p{p_target:g}"


def compute_act_dcf(llr: Sequence[float] | np.ndarray, labels: Sequence[bool] | np.ndarray,
                    p_target: float, c_miss: float = 1.0, c_fa: float = 1.0) -> float:
    """Actual (normalised) DCF of LLRs at their Bayes threshold ``t`` (:func:`bayes_threshold`).

    ``[c_miss p P_miss(t) + c_fa (1-p) P_fa(t)] / min(c_miss p, c_fa (1-p))`` with
    ``P_miss(t) = #{tar: llr < t} / n_tar``, ``P_fa(t) = #{non: llr >= t} / n_non``:
    the cost of the decisions the scores actually make, normalised like minDCF, so
    ``actDCF >= minDCF`` and the gap is the calibration loss at that operating point.
    """
    t = bayes_threshold(p_target, c_miss, c_fa)
    s, y = _as_scores_labels(llr, labels)
    p_miss = np.count_nonzero(s[y] < t) / np.count_nonzero(y)
    p_fa = np.count_nonzero(s[~y] >= t) / np.count_nonzero(~y)
    p = float(p_target)
    return (c_miss * p * p_miss + c_fa * (1.0 - p) * p_fa) / min(c_miss * p, c_fa * (1.0 - p))


def _cllr(s: np.ndarray, y: np.ndarray) -> float:
    """Cllr of checked LLRs (infinite LLRs allowed: they cost 0 or +inf bits)."""
    ln2 = np.log(2.0)
    tar = np.logaddexp(0.0, -s[y]).mean() / ln2
    non = np.logaddexp(0.0, s[~y]).mean() / ln2
    return float(0.5 * (tar + non))


def compute_cllr(llr: Sequence[float] | np.ndarray, labels: Sequence[bool] | np.ndarray) -> float:
    """Log-likelihood-ratio cost (Brümmer & du Preez 2006, eq. 4), in bits::

        Cllr = 0.5 [mean_tar log2(1 + e^{-llr}) + mean_non log2(1 + e^{llr})]

    0 for perfect, confident LLRs; 1 for the uninformative ``llr = 0``; above 1
    for LLRs that mislead. Only meaningful for scores that are meant to be LLRs.
    """
    return _cllr(*_as_scores_labels(llr, labels))


def pav_llr(scores: Sequence[float] | np.ndarray, labels: Sequence[bool] | np.ndarray) -> np.ndarray:
    """The LLRs of the optimal monotone (non-decreasing) transform of the scores, per trial.

    Pool-adjacent-violators (scikit-learn's ``IsotonicRegression``) fits the target
    posterior ``q(s)`` non-decreasing in ``s``, tied scores pooled into one block (they
    get one value); ``llr = logit(q) - logit(pi)`` with ``pi = n_tar / n`` the empirical
    prior (Brümmer & du Preez 2006, Sec. 4.4; BOSARIS ``opt_loglr``). Blocks of pure
    non-targets get ``-inf`` and of pure targets ``+inf`` (``log 0`` is kept, not
    clipped: such a trial costs exactly 0 bits in Cllr).
    """
    from sklearn.isotonic import IsotonicRegression

    s, y = _as_scores_labels(scores, labels)
    q = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True).fit_transform(s, y.astype(np.float64))
    q = np.clip(q, 0.0, 1.0)
    prior = np.count_nonzero(y) / y.size
    with np.errstate(divide="ignore"):
        return np.log(q) - np.log1p(-q) - (np.log(prior) - np.log1p(-prior))


def compute_min_cllr(scores: Sequence[float] | np.ndarray, labels: Sequence[bool] | np.ndarray) -> float:
    """Minimum Cllr: :func:`compute_cllr` of :func:`pav_llr`, the discrimination loss alone
    (Brümmer & du Preez 2006, Sec. 4.4): ``Cllr - min Cllr`` is the calibration loss. Any
    monotone score (raw cosine, normalised) has one; 1 when the scores carry no information."""
    s, y = _as_scores_labels(scores, labels)
    return _cllr(pav_llr(s, y), y)
