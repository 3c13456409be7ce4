"""Print the results of an experiment as a Markdown table and draw its plots (stage 6).

Usage::

    python -m spkpeft.bin.report EXP/results.json [--trials-dir data/C/trials] \
        [--score-dir EXP/scores] [--plot-dir EXP/plots]

The table goes to stdout. With ``--trials-dir`` (which holds the trial lists
named in ``results.json``), for every trial list it also writes
``<plot-dir>/det_<trials>.png`` (DET curves, one per normalisation, EER points
marked) and ``<plot-dir>/scores_<trials>.png`` (target vs non-target score
histograms, one panel per normalisation), reading the score files of
``--score-dir``. Both directories default to ``scores/`` and ``plots/`` next
to ``results.json``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from spkpeft.bin._cli import run_main
from spkpeft.report import read_results, results_table


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, help="results.json written by stage 5")
    parser.add_argument("--trials-dir", type=Path, default=None,
                        help="directory of the trial lists; enables the plots")
    parser.add_argument("--score-dir", type=Path, default=None, help="score files (default: scores/ beside results)")
    parser.add_argument("--plot-dir", type=Path, default=None,
                        help="where to write the plots (default: plots/ beside results)")
    args = parser.parse_args(argv)
    results = read_results(args.results)
    print(results_table(results))
    if args.trials_dir is not None:
        from spkpeft.plots import plot_experiment

        exp = args.results.parent
        written = plot_experiment(results, args.score_dir or exp / "scores", args.trials_dir,
                                  args.plot_dir or exp / "plots")
        print(f"report: wrote {len(written)} plots: " + " ".join(map(str, written)), file=sys.stderr)
    return 0


if __name__ == "__main__":
    run_main(main)
