"""Print the results of an experiment as Markdown tables and draw its plots (stage 6).

Usage::

    python -m spkpeft.bin.report EXP/results.json [--trials-dir data/C/trials] \
        [--corpus-dir data/C ...] [--score-dir EXP/scores] [--plot-dir EXP/plots]

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
from typing import Any, Sequence

from spkpeft.bin._cli import run_main
from spkpeft.eval.report import cm_breakdown_tables, per_class_table, read_confusion, read_results, results_table, \
    task_of


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


def find_set_dir(name: str, corpus_dirs: Sequence[Path]) -> Path | None:
    """The first ``<corpus>/<name>`` of ``corpus_dirs`` holding ``wav.scp`` (None when there is none)."""
    return next((Path(c) / name for c in corpus_dirs if (Path(c) / name / "wav.scp").is_file()), None)


def plot_cm_sets(results: Sequence[dict[str, Any]], exp: Path, corpus_dirs: Sequence[Path],
                 plot_dir: Path) -> list[Path]:
    """``<plot-dir>/<set>_cm_det.png`` and ``<set>_cm_scores.png`` for every ``cm`` row whose set is
    in ``corpus_dirs`` (others: a note on stderr); returns the files written."""
    from spkpeft.eval.plots import plot_cm
    from spkpeft.tasks.cm.evaluate import load_scored_set

    written = []
    for row in results:
        if task_of(row) != "cm":
            continue
        set_dir = find_set_dir(row["set"], corpus_dirs)
        if set_dir is None:
            print(f"report: NOTE: cm set '{row['set']}' is in no corpus directory "
                  f"({', '.join(map(str, corpus_dirs))}): no cm plots for it", file=sys.stderr)
            continue
        scored = load_scored_set(exp, set_dir)
        written += plot_cm(scored.scores, scored.keys, scored.attacks, plot_dir, row["set"])
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, help="results.json written by stage 5")
    parser.add_argument("--trials-dir", type=Path, default=None,
                        help="directory of the trial lists; enables the verification plots")
    parser.add_argument("--corpus-dir", type=Path, action="append", default=[],
                        help="corpus directory holding the cm sets (<dir>/<set>/utt2label); repeatable; "
                             "enables the countermeasure plots")
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
    for row in cm_rows:  # per attack: against all bona fide; per condition: within the condition
        for section in cm_breakdown_tables(row):
            print(f"\n{section}")
    written = plot_confusions(cls_rows, score_dir, plot_dir)
    if args.corpus_dir and cm_rows:
        written += plot_cm_sets(cm_rows, exp, args.corpus_dir, plot_dir)
    if args.trials_dir is not None and any(task_of(row) == "sv" for row in results):
        from spkpeft.eval.plots import plot_experiment

        written += plot_experiment(results, score_dir, args.trials_dir, plot_dir)
    if written:
        print(f"report: wrote {len(written)} plots: " + " ".join(map(str, written)), file=sys.stderr)
    return 0


if __name__ == "__main__":
    run_main(main)
