"""Plots of verification scores, classification results and spoofing countermeasures (stage 6 and
``spkpeft.bin.compare``), PNG through matplotlib's Agg backend.

* :func:`det_curve`: detection error trade-off curves, one per system. Both
  axes are on the normal-deviate (probit) scale, as in the NIST DET plots:
  a probability ``p`` is drawn at ``Phi^-1(p)`` (``Phi`` the standard normal
  CDF), x = ``P_fa``, y = ``P_miss``, ticks at 0.1, 0.5, 1, 2, 5, 10, 20, 40 %
  and axes from 0.05 to 60 % (up to 99.5 %, with more ticks, when an EER
  exceeds 45 %, as for an untrained system).
  The points are those of :func:`spkpeft.eval.metrics.det_points` (thinned to at
  most :data:`MAX_POINTS` along the drawn path); each curve's EER point
  ``(EER, EER)`` is marked and its value given in the legend.
  ``eer`` replaces the EER convention (default :func:`spkpeft.eval.metrics.compute_eer`);
  more than 10 curves take the 20 colours of ``tab20`` (then line styles) and a
  legend beside the axes; ``highlight`` draws one curve black and thicker.
* :func:`score_distribution`: histograms (densities) of target and
  non-target scores (``positive`` / ``negative`` name them), one panel per score
  set (e.g. per normalisation), ``ncols`` panels a row (default: all in one row).
* :func:`plot_cm`: a countermeasure set's DET (one curve per attack: all bona fide
  vs that attack's spoofs, plus pooled; official ASVspoof EERs in the legend) and
  score histograms (bona fide vs pooled spoof, then one panel per attack); above
  :data:`MAX_ATTACKS` attacks only the ones with the highest EER are drawn.
* :func:`plot_experiment`: both plots for every trial list of speaker-verification results
  (the rows of a ``results.json`` that the ``sv`` task passes it).
* :func:`plot_confusion`: the confusion matrix of a classification set, counts in
  the cells and colours from the row-normalised matrix (fraction of each true class).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.special import ndtri  # noqa: E402

from spkpeft.errors import SpkpeftError  # noqa: E402
from spkpeft.eval.cm_metrics import BONAFIDE, cm_eer, per_attack_eer  # noqa: E402
from spkpeft.io.atomic import write_bytes_atomic  # noqa
from spkpeft.eval.metrics import compute_eer, det_points  # noqa: E402
from spkpeft.io.trials import load_scored_trials, score_file_name  # noqa: E402

DET_TICKS: tuple[float, ...] = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4)
DET_LIMITS: tuple[float, float] = (0.0005, 0.6)
WIDE_TICKS: tuple[float, ...] = (0.6, 0.8, 0.9, 0.95, 0.99)  # added when an EER exceeds 45 %: axes up to 99.5 %
MAX_POINTS = 4000
_CLIP = 1e-6  # probabilities 0 and 1 are drawn at Phi^-1(1e-6) and Phi^-1(1 - 1e-6), off the axes

NORM_LABELS = {"none": "raw", "snorm": "S-norm", "asnorm": "AS-norm"}
MAX_ATTACKS = 20  # per-attack curves / panels of a countermeasure plot
POOLED = "pooled"

Curves = Mapping[str, tuple[np.ndarray, np.ndarray]]  # label -> (scores, labels)
EerFunction = Callable[[np.ndarray, np.ndarray], float]  # (scores, labels) -> EER (fraction)


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


def _styles(n: int) -> list[dict[str, Any]]:
    """Line styles of ``n`` curves: matplotlib's default 10 colours, or ``tab20`` then dashes and dots."""
    if n <= 10:
        return [{"color": f"C{i}", "linestyle": "-"} for i in range(n)]
    colours = plt.get_cmap("tab20").colors
    return [{"color": colours[i % 20], "linestyle": ("-", "--", ":")[(i // 20) % 3]} for i in range(n)]


def det_curve(curves: Curves, out: str | Path, title: str = "", eer: EerFunction | None = None,
              highlight: str | None = None) -> Path:
    """Write a DET plot of ``{label: (scores, labels)}`` to the PNG ``out``; return its path.

    ``labels`` are True for the positive class (target, bona fide); ``eer(scores, labels)``
    gives each curve's EER (default :func:`spkpeft.eval.metrics.compute_eer`).
    """
    eer = eer or compute_eer
    many = len(curves) > 8
    fig, ax = plt.subplots(figsize=(8.5 if many else 5.5, 5.5))
    worst = 0.0
    for (name, (scores, labels)), style in zip(curves.items(), _styles(len(curves))):
        p_fa, p_miss = det_points(scores, labels)
        value = eer(np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=bool))
        worst = max(worst, value)
        if name == highlight:
            style = {"color": "black", "linestyle": "-", "linewidth": 2.5, "zorder": 3}
        x, y = thin_path(probit(p_fa), probit(p_miss))
        ax.plot(x, y, **{"linewidth": 1.5, **style}, label=f"{name} (EER {100 * value:.2f}%)")
        ax.plot(probit(value), probit(value), "o", color=style["color"], markersize=6 if not many else 4)
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
    if many:
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize="x-small", borderaxespad=0.0)
    else:
        ax.legend(loc="best", fontsize="small")
    ax.set_title(title)
    return _save(fig, out)


def score_distribution(panels: Curves, out: str | Path, title: str = "", bins: int = 60,
                       positive: str = "target", negative: str = "non-target", ncols: int | None = None,
                       sharex: bool = False) -> Path:
    """Write histograms (densities) of positive (``labels`` True) vs negative scores, one panel per
    entry of ``panels`` (its title the key), ``ncols`` panels a row (default: one row), with one
    score axis for all panels when ``sharex``; return the path."""
    ncols = max(1, min(ncols or len(panels), len(panels)))
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.5 * ncols, 3.6 * nrows), squeeze=False, sharex=sharex)
    for ax, (name, (scores, labels)) in zip(axes.flat, panels.items()):
        scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=bool)
        edges = np.histogram_bin_edges(scores, bins=bins)
        for mask, label in ((~labels, negative), (labels, positive)):  # one polygon each: fast for many panels
            ax.hist(scores[mask], bins=edges, density=True, alpha=0.55, histtype="stepfilled",
                    label=f"{label} ({mask.sum()})")
        ax.set_xlabel("score")
        ax.set_ylabel("density")
        ax.set_title(name)
        ax.legend(fontsize="small")
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    fig.suptitle(title)
    return _save(fig, out)


def official_cm_eer(scores: np.ndarray, labels: np.ndarray) -> float:
    """:func:`spkpeft.eval.cm_metrics.cm_eer` (official ASVspoof EER) of ``(scores, labels = bona fide)``."""
    return cm_eer(scores[labels], scores[~labels])[0]


def cm_curves(scores: np.ndarray, keys: Sequence[str], attacks: Sequence[str],
              max_attacks: int = MAX_ATTACKS) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], int]:
    """``({"pooled": (all scores, is_bona), <attack>: (bona + that attack's spoofs, is_bona)}, n_attacks)``.

    Attacks in id order; above ``max_attacks`` attacks only the ``max_attacks`` with the highest
    EER (:func:`spkpeft.eval.cm_metrics.per_attack_eer`) are kept.
    """
    s = np.asarray(scores, dtype=np.float64)
    is_bona = np.asarray(keys, dtype=object) == BONAFIDE
    a = np.asarray(attacks, dtype=object)
    eers = per_attack_eer(s, keys, attacks)
    kept = sorted(sorted(eers, key=lambda k: -eers[k])[:max_attacks]) if len(eers) > max_attacks else list(eers)
    bona = s[is_bona]
    curves = {POOLED: (s, is_bona)}
    for attack in kept:
        spoof = s[~is_bona & (a == attack)]
        curves[attack] = (np.concatenate([bona, spoof]), np.r_[np.ones(bona.size, bool), np.zeros(spoof.size, bool)])
    return curves, len(eers)


def plot_cm(scores: np.ndarray, keys: Sequence[str], attacks: Sequence[str], plot_dir: str | Path,
            name: str) -> list[Path]:
    """``<plot_dir>/<name>_cm_det.png`` and ``<plot_dir>/<name>_cm_scores.png`` of one countermeasure set.

    ``keys[i]`` bonafide | spoof, ``attacks[i]`` the attack of a spoof (higher score = more
    bona fide). DET: pooled (black) and one curve per attack, all bona fide vs that
    attack's spoofs, EERs by :func:`spkpeft.eval.cm_metrics.cm_eer`; histograms: bona
    fide vs pooled spoof, then one panel per attack, 4 panels a row.
    """
    curves, n_attacks = cm_curves(scores, keys, attacks)
    shown = len(curves) - 1
    title = name if shown == n_attacks else f"{name} ({shown} of {n_attacks} attacks: highest EER)"
    plot_dir = Path(plot_dir)
    return [det_curve(curves, plot_dir / f"{name}_cm_det.png", title=title, eer=official_cm_eer, highlight=POOLED),
            score_distribution(curves, plot_dir / f"{name}_cm_scores.png", title=title, positive="bona fide",
                               negative="spoof", ncols=4, sharex=True)]


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
    """For every trial list of the verification rows ``results`` (each with ``trials`` and
    ``norm``): ``det_<trials>.png`` (one curve per normalisation) and ``scores_<trials>.png``
    (one histogram panel per normalisation). Returns the files written."""
    by_trials: dict[str, list[str]] = {}
    for row in results:
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


def plot_loss_curve(steps: Sequence[int], losses: Sequence[float], out_png: str | Path, title: str = "",
                    window: int = 20) -> Path:
    """Training loss per step (thin) and its running mean over ``window`` steps (thick) to ``out_png``."""
    steps, losses = np.asarray(steps), np.asarray(losses, dtype=np.float64)
    if steps.size == 0:
        raise SpkpeftError("no loss values to plot")
    window = max(1, min(window, losses.size))
    smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(steps, losses, lw=0.6, alpha=0.4, label="per step")
    ax.plot(steps[window - 1:], smooth, lw=2.0, label=f"mean of {window} steps")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, out_png)
