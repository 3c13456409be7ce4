"""Stage 6: print an experiment's results as Markdown tables and draw its plots.

What follows the results table and which plots are drawn is the task's (each row's ``task``).

Usage::

    python -m spkpeft.bin.report EXP/results.json [--trials-dir data/C/trials] \
        [--corpus-dir data/C ...] [--score-dir EXP/scores] [--plot-dir EXP/plots]

The results table (one per task when ``results.json`` mixes tasks) goes to stdout.

* Speaker verification (``sv`` rows): with the trial lists named in ``results.json``
  (``--trials-dir``, else ``<corpus-dir>/trials``), for every trial list it also writes
  ``<plot-dir>/det_<trials>.png`` (DET curves, one per normalisation, EER points
  marked) and ``<plot-dir>/scores_<trials>.png`` (target vs non-target score
  histograms, one panel per normalisation), reading the score files of ``--score-dir``.
* Classification (``cls`` rows): for every set, its per-class table (from
  ``<score-dir>/<set>/per_class.tsv``) follows on stdout, and
  ``<plot-dir>/confusion_<set>.png`` is drawn from ``<score-dir>/<set>/confusion.tsv``
  (both written by stage 5, ``spkpeft.bin.evaluate``).
* Spoofing countermeasures (``cm`` rows): for every set, its per-attack EERs and (ASVspoof
  2021, when the row has them) per-condition EERs follow on stdout. With ``--corpus-dir``
  (a corpus directory ``data/<corpus>``, repeatable: the first holding ``<set>/wav.scp``
  is used), it also writes ``<plot-dir>/<set>_cm_det.png`` (DET: pooled and one curve per
  attack, all bona fide vs that attack's spoofs) and ``<plot-dir>/<set>_cm_scores.png``
  (bona fide vs pooled spoof and per-attack score histograms), from the set's stage-4
  scores ``EXP/cm_scores/<set>/scores.txt`` and its ``utt2label`` / ``utt2attack``
  (:func:`spkpeft.eval.plots.plot_cm`). A set found in no corpus directory (a row of
  another corpus scored with the same model) is skipped with a note on stderr; missing
  or mismatching scores of a found set are an error, as missing score files are for ``sv``.

Both directories default to ``scores/`` and ``plots/`` next to ``results.json``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from spkpeft.bin._cli import run_main
from spkpeft.tasks.base import ReportContext
from spkpeft.tasks.registered import task_named
from spkpeft.tasks.results import read_results, results_table, rows_by_task


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, help="results.json written by stage 5")
    parser.add_argument("--trials-dir", type=Path, default=None,
                        help="directory of the trial lists (default: <corpus-dir>/trials); verification plots")
    parser.add_argument("--corpus-dir", type=Path, action="append", default=[],
                        help="corpus directory holding the evaluated sets (data/<corpus>); repeatable; "
                             "enables the plots that read the sets (verification, countermeasures)")
    parser.add_argument("--score-dir", type=Path, default=None, help="score files (default: scores/ beside results)")
    parser.add_argument("--plot-dir", type=Path, default=None,
                        help="where to write the plots (default: plots/ beside results)")
    args = parser.parse_args(argv)
    results = read_results(args.results)
    exp = args.results.parent
    context = ReportContext(exp=exp, score_dir=args.score_dir or exp / "scores", plot_dir=args.plot_dir or exp / "plots",
                            corpus_dirs=list(args.corpus_dir), trials_dir=args.trials_dir)
    by_task = [(task_named(name), rows) for name, rows in rows_by_task(results).items()]
    # Read every section's files before printing, so that a missing file fails without output.
    sections = [section for task, rows in by_task for section in task.report_sections(rows, context)]
    print(results_table(results))
    for section in sections:
        print(f"\n{section}")
    written = [path for task, rows in by_task for path in task.plots(rows, context)]
    if written:
        print(f"report: wrote {len(written)} plots: " + " ".join(map(str, written)), file=sys.stderr)
    return 0


if __name__ == "__main__":
    run_main(main)
