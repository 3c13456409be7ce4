"""Print the results of an experiment as Markdown tables and draw its plots (stage 6).

Usage::

    python -m spkpeft.bin.report EXP/results.json [--trials-dir data/C/trials] \
        [--score-dir EXP/scores] [--plot-dir EXP/plots]

The results table (one per task when ``results.json`` mixes tasks) goes to stdout.

* Speaker verification (``sv`` rows): with ``--trials-dir`` (which holds the trial
  lists named in ``results.json``), for every trial list it also writes
  ``<plot-dir>/det_<trials>.png`` (DET curves, one per normalisation, EER points
  marked) and ``<plot-dir>/scores_<trials>.png`` (target vs non-target score
  histograms, one panel per normalisation), reading the score files of ``--score-dir``.
* Classification (``cls`` rows): for every set, its per-class table (from
  ``<score-dir>/<set>/per_class.tsv``) follows on stdout, and
  ``<plot-dir>/confusion_<set>.png`` is drawn from ``<score-dir>/<set>/confusion.tsv``
  (both written by stage 5, ``spkpeft.bin.evaluate``), with or without ``--trials-dir``.

Both directories default to ``scores/`` and ``plots/`` next to ``results.json``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

from spkpeft.bin._cli import run_main
from spkpeft.eval.report import markdown_table, per_class_table, read_confusion, read_results, results_table, task_of


def plot_confusions(results: Sequence[dict[str, Any]], score_dir: Path, plot_dir: Path) -> list[Path]:
    """``<plot-dir>/confusion_<set>.png`` for every ``cls`` row; returns the files written."""
    from spkpeft.eval.plots import plot_confusion

    written = []
    for row in results:
        if task_of(row) == "cls":
            counts, names = read_confusion(score_dir / row["set"] / "confusion.tsv")
            title = f"{row['set']}: accuracy {row['accuracy_pct']:.2f}%, macro-F1 {row['macro_f1']:.4f}"
            written.append(plot_confusion(counts, names, plot_dir / f"confusion_{row['set']}.png", title=title))
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, help="results.json written by stage 5")
    parser.add_argument("--trials-dir", type=Path, default=None,
                        help="directory of the trial lists; enables the verification plots")
    parser.add_argument("--score-dir", type=Path, default=None, help="score files (default: scores/ beside results)")
    parser.add_argument("--plot-dir", type=Path, default=None,
                        help="where to write the plots (default: plots/ beside results)")
    args = parser.parse_args(argv)
    results = read_results(args.results)
    exp = args.results.parent
    score_dir, plot_dir = args.score_dir or exp / "scores", args.plot_dir or exp / "plots"
    cls_rows = [row for row in results if task_of(row) == "cls"]
    # Read every per-class table before printing, so that a missing file fails without output.
    per_class = [(row["set"], per_class_table(score_dir / row["set"] / "per_class.tsv")) for row in cls_rows]
    cm_rows = [row for row in results if task_of(row) == "cm"]
    print(results_table(results))
    for name, table in per_class:
        print(f"\n### per class: {name}\n\n{table}")
    for row in cm_rows:  # the EER of each attack's spoofs against all bona fide
        attacks = row.get("per_attack", {})
        table = markdown_table(["attack", "EER (%)"], [[a, f"{e:.2f}"] for a, e in attacks.items()])
        print(f"\n### per attack: {row['set']}\n\n{table}")
    written = plot_confusions(cls_rows, score_dir, plot_dir)
    if args.trials_dir is not None and any(task_of(row) == "sv" for row in results):
        from spkpeft.eval.plots import plot_experiment

        written += plot_experiment(results, score_dir, args.trials_dir, plot_dir)
    if written:
        print(f"report: wrote {len(written)} plots: " + " ".join(map(str, written)), file=sys.stderr)
    return 0


if __name__ == "__main__":
    run_main(main)
