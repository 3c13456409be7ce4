"""Time the speaker bootstrap (95 % intervals of EER and minDCF), min Cllr and the calibration fit.

Run by hand (not part of the tests)::

    .venv/bin/python bench/bootstrap.py [--sizes 1e5 1e6] [--trials-per-speaker 100] [--draws 1000]
        [--repeats 1] [--doc docs/benchmarks.md]

Scores are Gaussian with a speaker effect (targets ~ N(2 + a_s, 1), non-targets ~ N(b_s, 1),
a_s, b_s ~ N(0, 0.5^2)), 10 % targets, ``n / trials-per-speaker`` enrollment speakers.
Columns: ``bootstrap`` = :func:`spkpeft.eval.bootstrap.bootstrap_metrics` (``--draws``
draws, EER + minDCF at p = 0.01 and 0.05 each), ``point`` = one
:func:`spkpeft.eval.metrics.compute_metrics` for scale, ``min Cllr`` =
:func:`spkpeft.eval.metrics.compute_min_cllr`, ``calibration fit`` =
:func:`spkpeft.eval.calibration.fit_calibration`. Best of ``--repeats`` wall-clock times.
Writes the ``bootstrap`` section of ``--doc`` (``--doc ''``: print only).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
from bench.scoring import best_time, run_sizes, section_text  # noqa: E402
from spkpeft.eval.bootstrap import bootstrap_metrics  # noqa: E402
from spkpeft.eval.calibration import fit_calibration  # noqa: E402
from spkpeft.eval.metrics import compute_metrics, compute_min_cllr  # noqa: E402


def trials(n: int, per_speaker: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scores, labels and enrollment speakers of ``n`` synthetic trials (module docstring)."""
    speakers = max(2, n // per_speaker)
    spk = rng.integers(0, speakers, n)
    a, b = rng.normal(0, 0.5, speakers), rng.normal(0, 0.5, speakers)
    labels = rng.random(n) < 0.1
    scores = np.where(labels, 2.0 + a[spk], b[spk]) + rng.standard_normal(n)
    return scores, labels, spk


def bench_size(n: int, args: argparse.Namespace, rng: np.random.Generator) -> str:
    """One Markdown table row for ``n`` trials."""
    scores, labels, spk = trials(n, args.trials_per_speaker, rng)
    boot = best_time(lambda: bootstrap_metrics(scores, labels, spk, draws=args.draws), args.repeats)
    point = best_time(lambda: compute_metrics(scores, labels), args.repeats)
    min_cllr = best_time(lambda: compute_min_cllr(scores, labels), args.repeats)
    fit = best_time(lambda: fit_calibration(scores, labels), args.repeats)
    return (f"| {n:.0e} | {np.unique(spk).size} | {args.draws} | {boot:.2f} | {1000 * boot / args.draws:.2f} | "
            f"{point:.3f} | {min_cllr:.3f} | {fit:.3f} |")


def report(rows: list[str], args: argparse.Namespace) -> str:
    """The Markdown section."""
    return section_text(
        "Bootstrap intervals and calibration",
        "`bench/bootstrap.py`: Gaussian scores with a speaker effect (see its docstring), 10 % targets, "
        f"{args.trials_per_speaker} trials per enrollment speaker; best of {args.repeats} wall-clock run(s). "
        "`bootstrap` = `spkpeft.eval.bootstrap.bootstrap_metrics` (EER + minDCF at p = 0.01, 0.05 for every "
        "draw, speakers resampled), `point` = one `compute_metrics`, `min Cllr` = `compute_min_cllr` (PAV), "
        "`fit` = `fit_calibration` (logistic regression).",
        ["n trials", "speakers", "draws", "bootstrap s", "ms / draw", "point s", "min Cllr s", "fit s"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1e5, 1e6])
    parser.add_argument("--trials-per-speaker", type=int, default=100)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--doc", default=str(Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"),
                        help="Markdown file whose 'bootstrap' section is updated ('': print only)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    run_sizes(args.sizes, lambda n: bench_size(n, args, rng), lambda rows: report(rows, args), args.doc, "bootstrap")


if __name__ == "__main__":
    main()
