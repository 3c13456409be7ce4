"""Error bars by a bootstrap over speakers, and the paired comparison of two systems.

Why speakers, not trials
------------------------
Trials that share a speaker are not independent (a speaker whose voice the model
handles badly spoils all of their trials), so resampling trials as if independent
gives intervals that are too narrow. Following the "subsets bootstrap" of Bolle,
Ratha & Pankanti (2004, "Error analysis of pattern recognition systems: the
subsets bootstrap", CVIU 93) and Poh & Bengio (2007, "Estimating the confidence
interval of expected performance curve in biometric authentication using joint
bootstrap", ICASSP), the unit of resampling is a *cluster* of trials: here the
speaker of a trial's **enrollment side** (its first field). A draw picks ``S``
speakers with replacement out of the ``S`` present; a trial is counted as many
times as its speaker was drawn (an integer weight ``c_b[speaker]``), so a draw
is the trial list of a resampled speaker population, never a copy of arrays.
(Resampling both sides, weight ``c[spk1] c[spk2]``, would square a drawn
speaker's target trials; the enrollment side is the claimed identity that
NIST-style trial lists are built around.)

Metrics of a draw
-----------------
The trials are sorted once and cut into blocks at the operating points
(:func:`spkpeft.eval.metrics.tie_groups`; runs of one class merged, see
:func:`_block_sums`); a sparse ``(S, K)`` matrix counts each speaker's target
(non-target) trials per block, so a block of draws' weighted counts at every
operating point is one sparse product with the ``(B, S)`` count matrix and a
cumulative sum. EER and minDCF then follow from the weighted counts by
:func:`spkpeft.eval.metrics.eer_from_counts` and
:func:`~spkpeft.eval.metrics.min_dcf_from_counts`, which equal
:func:`~spkpeft.eval.metrics.compute_metrics` of the trial list with every trial
repeated ``c_b`` times (tested). Work is ``O(B (n_tar + n_non + K))``, memory bounded by
``block_elements``; the draws come from one ``numpy`` generator seeded by
``seed`` (``B x S`` uniform picks of a speaker, counted per draw, drawn at once), so the results do not
depend on the block size. A draw without a target or a non-target trial is
dropped (NaN).

Intervals and the paired comparison
-----------------------------------
* 95 % interval: the percentile interval ``[q_2.5, q_97.5]`` of the draws' values
  (Efron & Tibshirani 1993, ch. 13).
* Paired comparison of systems A and B scored on the same trials: the same draws
  (same speakers, seed and ``B``) for both; ``P(A better) = #{b: EER_A,b < EER_B,b}
  / B`` with ties counted one half (identical systems give 0.5), and the
  percentile interval of ``EER_A - EER_B`` (Bolle et al. 2004, Sec. 6).
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from spkpeft.errors import SpkpeftError
from spkpeft.eval.metrics import (DEFAULT_P_TARGETS, _as_scores_labels, _check_costs, eer_from_counts,
                                  min_dcf_from_counts, mindcf_key, tie_groups)

DEFAULT_DRAWS = 1000
DEFAULT_SEED = 0
CI_LEVEL = 0.95
BLOCK_ELEMENTS = 1 << 22  # per-trial weights held at a time (float64: 32 MB)


def ci_key(metric: str) -> str:
    """Result key of a metric's 95 % interval: ``eer_pct`` -> ``eer_ci95``, ``mindcf_p0.01`` -> ``mindcf_p0.01_ci95``."""
    return ("eer" if metric == "eer_pct" else metric) + "_ci95"


def cluster_index(clusters: Sequence[str] | np.ndarray) -> tuple[np.ndarray, int]:
    """``(index of each trial's cluster in the sorted distinct clusters, number of clusters)``."""
    names, index = np.unique(np.asarray(clusters), return_inverse=True)
    return index.reshape(-1), int(names.size)


def draw_counts(n_clusters: int, draws: int = DEFAULT_DRAWS, seed: int = DEFAULT_SEED) -> np.ndarray:
    """``(draws, n_clusters)`` int64: how often each cluster is drawn (``n_clusters`` picks with replacement)."""
    if draws < 1:
        raise SpkpeftError(f"the bootstrap needs at least 1 draw, got {draws}")
    if n_clusters < 1:
        raise SpkpeftError("the bootstrap needs at least one speaker")
    picks = np.random.default_rng(seed).integers(0, n_clusters, size=(draws, n_clusters))
    picks += np.arange(draws)[:, None] * n_clusters
    return np.bincount(picks.ravel(), minlength=draws * n_clusters).reshape(draws, n_clusters)


def _block_sums(scores: np.ndarray, labels: np.ndarray, cluster: np.ndarray,
                n_clusters: int) -> tuple["sparse.csr_matrix", "sparse.csr_matrix"]:
    """Target and non-target trial counts per (cluster, block) as sparse ``(n_clusters, K)`` matrices.

    The trials are sorted by score and cut at the operating points (distinct scores).
    Consecutive tie groups that hold targets only, or non-targets only, are merged into
    one block: inside such a run the DET path is one axis-parallel segment (only
    ``P_miss``, or only ``P_fa``, moves), so the EER crossing and the minimum of the
    cost (at the run's start for targets, at its end for non-targets) are the same with
    or without the operating points inside it. Tie groups with both classes stay blocks.
    """
    from scipy import sparse

    order = np.argsort(scores, kind="stable")
    y, c = labels[order], cluster[order]
    below = tie_groups(scores[order])
    group = np.repeat(np.arange(below.size - 1), np.diff(below))
    n_tar = np.bincount(group, weights=y, minlength=below.size - 1)
    size = np.diff(below)
    kind = np.where(n_tar == size, 1, np.where(n_tar == 0, 0, 2))  # 1 targets, 0 non-targets, 2 mixed
    new_block = np.r_[True, (kind[1:] != kind[:-1]) | (kind[1:] == 2)]
    block = (np.cumsum(new_block) - 1)[group]
    k = int(block[-1]) + 1 if block.size else 0
    shape = (n_clusters, k)
    tar = sparse.csr_matrix((np.ones(np.count_nonzero(y)), (c[y], block[y])), shape=shape)
    non = sparse.csr_matrix((np.ones(np.count_nonzero(~y)), (c[~y], block[~y])), shape=shape)
    return tar, non


def bootstrap_metrics(scores: Sequence[float] | np.ndarray, labels: Sequence[bool] | np.ndarray,
                      clusters: Sequence[str] | np.ndarray, draws: int = DEFAULT_DRAWS, seed: int = DEFAULT_SEED,
                      p_targets: Iterable[float] = DEFAULT_P_TARGETS, c_miss: float = 1.0, c_fa: float = 1.0,
                      block_elements: int = BLOCK_ELEMENTS) -> dict[str, np.ndarray]:
    """Per-draw metrics of the speaker bootstrap (module docstring): ``{"eer_pct": (draws,),
    "mindcf_p<p>": (draws,) for each p}``; ``clusters[i]`` is trial ``i``'s enrollment speaker.

    A draw's weighted counts at the operating points are ``counts_b @ blocks`` (sparse
    per-(speaker, block) trial counts, :func:`_block_sums`), cumulated over the blocks.
    """
    ps = _check_costs(p_targets, c_miss, c_fa)
    s, y = _as_scores_labels(scores, labels)
    index, n_clusters = cluster_index(clusters)
    if index.size != s.size:
        raise SpkpeftError(f"{s.size} scores but {index.size} trial speakers; they must have equal lengths")
    counts = draw_counts(n_clusters, draws, seed).astype(np.float64)
    tar, non = _block_sums(s, y, index, n_clusters)
    tar_t, non_t = tar.T.tocsr(), non.T.tocsr()
    out = {"eer_pct": np.empty(draws), **{mindcf_key(p): np.empty(draws) for p in ps}}
    rows = max(1, block_elements // max(1, tar.shape[1] + 1))
    for start in range(0, draws, rows):
        block = counts[start:start + rows]
        zero = np.zeros((block.shape[0], 1))
        miss = np.hstack([zero, np.cumsum((tar_t @ block.T).T, axis=1)])   # target weight below each point
        rej = np.hstack([zero, np.cumsum((non_t @ block.T).T, axis=1)])    # non-target weight below
        n_tar, n_non = miss[:, -1:], rej[:, -1:]
        where = slice(start, start + block.shape[0])
        out["eer_pct"][where] = 100.0 * eer_from_counts(miss, rej, n_tar, n_non)
        for p in ps:
            out[mindcf_key(p)][where] = min_dcf_from_counts(miss, rej, n_tar, n_non, p, c_miss, c_fa)
    return out


def percentile_ci(values: np.ndarray, level: float = CI_LEVEL) -> list[float]:
    """Percentile interval ``[q_(1-level)/2, q_(1+level)/2]`` of the finite values (NaN draws dropped)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        raise SpkpeftError("no bootstrap draw had both target and non-target trials")
    lo, hi = np.quantile(v, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return [float(lo), float(hi)]


def metric_intervals(per_draw: dict[str, np.ndarray], level: float = CI_LEVEL) -> dict[str, list[float]]:
    """``{ci_key(metric): [lo, hi]}`` for every metric of :func:`bootstrap_metrics`."""
    return {ci_key(metric): percentile_ci(values, level) for metric, values in per_draw.items()}


def paired_comparison(a: np.ndarray, b: np.ndarray, level: float = CI_LEVEL) -> dict[str, float | list[float]]:
    """Paired comparison of one metric (lower is better) of systems A and B over the same draws.

    ``{"p_better": P(A < B) with ties counted 1/2, "delta_ci95": percentile interval of A - B}``
    over the draws where both are defined.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise SpkpeftError(f"paired comparison needs the same draws, got {a.size} and {b.size}")
    ok = np.isfinite(a) & np.isfinite(b)
    if not ok.any():
        raise SpkpeftError("no bootstrap draw is defined for both systems")
    a, b = a[ok], b[ok]
    p_better = (np.count_nonzero(a < b) + 0.5 * np.count_nonzero(a == b)) / a.size
    return {"p_better": float(p_better), "delta_ci95": percentile_ci(a - b, level)}
