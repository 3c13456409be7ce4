"""Plots of verification scores and classification results (stage 6 and ``spkpeft.bin.compare``),
PNG through matplotlib's Agg backend.

* :func:`det_curve`: detection error trade-off curves, one per system. Both
  axes are on the normal-deviate (probit) scale, as in the NIST DET plots:
  a probability ``p`` is drawn at ``Phi^-1(p)`` (``Phi`` the standard normal
  CDF), x = ``P_fa``, y = ``P_miss``, ticks at 0.1, 0.5, 1, 2, 5, 10, 20, 40 %
  and axes from 0.05 to 60 % (up to 99.5 %, with more ticks, when an EER
  exceeds 45 %, as for an untrained system).
  The points are those of :func:`spkpeft.eval.metrics.det_points` (thinned to at
  most :data:`MAX_POINTS` along the drawn path); each curve's EER point
  ``(EER, EER)`` is marked and its value given in the legend.
* :func:`score_distribution`: histograms (densities) of target and
  non-target scores, one panel per score set (e.g. per normalisation).
* :func:`plot_experiment`: both plots for every trial list of a ``results.json``
  (its speaker-verification rows; other tasks' rows are skipped).
* :func:`plot_confusion`: the confusion matrix of a classification set, counts in
  the cells and colours from the row-normalised matrix (fraction of each true class).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.special import ndtri  # noqa: E402

from spkpeft.errors import SpkpeftError  # noqa: E402
from spkpeft.io.atomic import write_bytes_atomic  # noqa
from spkpeft.eval.metrics import compute_eer, det_points  # noqa: E402
from spkpeft.io.trials import load_scored_trials, score_file_name  # noqa: E402

DET_TICKS: tuple[float, ...] = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4)
DET_LIMITS: tuple[float, float] = (0.0005, 0.6)
WIDE_TICKS: tuple[float, ...] = (0.6, 0.8, 0.9, 0.95, 0.99)  # added when an EER exceeds 45 %: axes up to 99.5 %
MAX_POINTS = 4000
_CLIP = 1e-6  # probabilities 0 and 1 are drawn at Phi^-1(1e-6) and Phi^-1(1 - 1e-6), off the axes

NORM_LABELS = {"none": "raw", "snorm": "S-norm", "asnorm": "AS-norm"}

Curves = Mapping[str, tuple[np.ndarray, np.ndarray]]  # label -> (scores, labels)


def probit(p: np.ndarray | float) -> np.ndarray:
    """Normal deviate ``Phi^-1(p)``, with ``p`` clipped to ``[1e-6, 1 - 1e-6]``."""
    return ndtri(np.clip(p, _CLIP, 1.0 - _CLIP))


def thin_path(x: np.ndarray, y: np.ndarray, max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most about ``max_points`` points of the polyline (x, y), evenly spaced along its length.

    The first and last points are kept; a point is kept when the cumulative
    path length enters a new ``length / max_points`` bin.
    """
    if x.size <= max_points:
        return x, y
    length = np.r_[0.0, np.cumsum(np.hypot(np.diff(x), np.diff(y)))]
    bins = np.floor(length / max(length[-1] / max_points, 1e-300))
    keep = np.r_[True, bins[1:] != bins[:-1]]
    keep[-1] = True
    return x[keep], y[keep]


def _percent(p: float) -> str:
    return f"{100 * p:g}"


def det_curve(curves: Curves, out: str | Path, title: str = "") -> Path:
    """Write a DET plot of ``{label: (scores, labels)}`` to the PNG ``out``; return its path."""
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    worst = 0.0
    for name, (scores, labels) in curves.items():
        p_fa, p_miss = det_points(scores, labels)
        eer = compute_eer(scores, labels)
        worst = max(worst, eer)
        x, y = thin_path(probit(p_fa), probit(p_miss))
        (line,) = ax.plot(x, y, linewidth=1.5, label=f"{name} (EER {100 * eer:.2f}%)")
        ax.plot(probit(eer), probit(eer), "o", color=line.get_color(), markersize=6)
    tick_values = DET_TICKS + (WIDE_TICKS if worst > 0.45 else ())
    lo, hi = probit(np.array([DET_LIMITS[0], DET_LIMITS[1] if worst <= 0.45 else 0.995]))
    ax.plot([lo, hi], [lo, hi], ":", color="grey", linewidth=0.8)  # P_miss = P_fa
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_ticks(probit(np.array(tick_values)), [_percent(t) for t in tick_values])
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("False acceptance probability (%)")
    ax.set_ylabel("Miss probability (%)")
    ax.grid(True, linestyle=":", linewidth=0.6)
    ax.set_aspect("equal")
    ax.legend(loc="best", fontsize="small")
    ax.set_title(title)
    return _save(fig, out)


def score_distribution(panels: Curves, out: str | Path, title: str = "", bins: int = 60) -> Path:
    """Write histograms (densities) of target vs non-target scores, one panel per entry of ``panels``."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.6), squeeze=False)
    for ax, (name, (scores, labels)) in zip(axes[0], panels.items()):
        scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=bool)
        edges = np.histogram_bin_edges(scores, bins=bins)
        ax.hist(scores[~labels], bins=edges, density=True, alpha=0.55, label=f"non-target ({(~labels).sum()})")
        ax.hist(scores[labels], bins=edges, density=True, alpha=0.55, label=f"target ({labels.sum()})")
        ax.set_xlabel("score")
        ax.set_ylabel("density")
        ax.set_title(name)
        ax.legend(fontsize="small")
    fig.suptitle(title)
    return _save(fig, out)


def _save(fig: Any, out: str | Path) -> Path:
    """Save a figure as PNG through the atomic writer and close it."""
    out = Path(out)
    fig.tight_layout()
    try:
        write_bytes_atomic(out, lambda handle: fig.savefig(handle, format="png", dpi=110))
    finally:
        plt.close(fig)
    return out


def load_curve(trials_path: str | Path, score_dir: str | Path, trials: str,
               norm: str = "none") -> tuple[np.ndarray, np.ndarray]:
    """``(scores, labels)`` of one trial list under one normalisation, from its score file."""
    return load_scored_trials(trials_path, Path(score_dir) / score_file_name(trials, norm))


def plot_experiment(results: Sequence[dict[str, Any]], score_dir: str | Path, trials_dir: str | Path,
                    plot_dir: str | Path) -> list[Path]:
    """For every trial list of ``results``: ``det_<trials>.png`` (one curve per normalisation)
    and ``scores_<trials>.png`` (one histogram panel per normalisation). Returns the files written.

    Rows of another task than ``sv`` (``task`` absent means ``sv``) are skipped."""
    by_trials: dict[str, list[str]] = {}
    for row in results:
        if row.get("task", "sv") != "sv":
            continue
        by_trials.setdefault(row["trials"], []).append(row.get("norm", "none"))
    written = []
    for trials, norms in by_trials.items():
        curves = {NORM_LABELS.get(norm, norm): load_curve(Path(trials_dir) / trials, score_dir, trials, norm)
                  for norm in norms}
        written.append(det_curve(curves, Path(plot_dir) / f"det_{trials}.png", title=trials))
        written.append(score_distribution(curves, Path(plot_dir) / f"scores_{trials}.png", title=trials))
    return written


def plot_confusion(confusion: np.ndarray, class_names: Sequence[str], out_png: str | Path, title: str = "") -> Path:
    """Write a confusion matrix (rows: true class, columns: predicted class) to the PNG ``out_png``.

    Each cell shows its count; its colour is the count divided by its row's sum (the
    fraction of the true class predicted as that column, 0 for a class without
    utterances), on a fixed 0-1 scale, so that the diagonal reads as per-class recall.
    """
    counts = np.asarray(confusion, dtype=np.int64)
    k = len(class_names)
    if counts.shape != (k, k):
        raise SpkpeftError(f"confusion matrix of shape {counts.shape} for {k} class names")
    totals = counts.sum(axis=1, keepdims=True)
    fraction = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    side = min(max(4.0, 1.5 + 0.45 * k), 24.0)
    fig, ax = plt.subplots(figsize=(side + 1.2, side))
    image = ax.imshow(fraction, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    fontsize = max(4.0, min(10.0, 120.0 / max(k, 1)))
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=fontsize,
                    color="white" if fraction[i, j] > 0.5 else "black")
    tilted = {"rotation": 45, "ha": "right", "rotation_mode": "anchor"} if k > 4 else {}
    ax.set_xticks(np.arange(k), list(class_names), fontsize=fontsize, **tilted)
    ax.set_yticks(np.arange(k), list(class_names), fontsize=fontsize)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    return _save(fig, out_png)
