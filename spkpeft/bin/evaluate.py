"""Stage 5 of the classification (``cls``) and countermeasure (``cm``) tasks; the task is
the experiment's (``EXP/config.yaml``).  ``cm``: EER, min t-DCF, per-attack EER of every
labelled set with stage-4 scores (:mod:`spkpeft.tasks.cm.evaluate`).  ``cls``: accuracy,
macro-F1, per-class scores and confusion matrices, as follows.

Usage::

    python -m spkpeft.bin.evaluate --exp EXP --data DIR [DIR ...] \
        [--results EXP/results.json] [--info EXP/train_done.json]

Evaluates every ``DIR`` that has ``utt2label`` and whose class posteriors
``EXP/posteriors/<DIR name>/posteriors.scp`` stage 4 wrote (the others are skipped,
with a note on stderr), against the classes of ``EXP/classes.txt``. Writes, per
set, ``EXP/scores/<set>/predictions.txt`` (``<utt> <predicted class> <posterior>``),
``per_class.tsv`` (``class n precision recall f1``) and ``confusion.tsv`` (a header
row of predicted classes, one row of counts per true class), and ``--results``
(default ``EXP/results.json``): one object per set with ``task`` (``cls``), ``set``,
``n``, ``accuracy_pct``, ``macro_f1``, then the experiment's ``config``,
``upstream``, ``trainable_params``, ``total_params``, ``train_seconds`` and
``peak_memory_mb`` from ``--info`` (default ``EXP/train_done.json`` when it exists).
The results table goes to stdout. See :mod:`spkpeft.tasks.cls.evaluate`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from spkpeft.bin._cli import run_main
from spkpeft.eval.report import INFO_KEYS, read_experiment_info, results_table
from spkpeft.config import read_yaml
from spkpeft.errors import SpkpeftError
from spkpeft.tasks.cls.evaluate import evaluable, evaluate_cls, posteriors_path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--exp", required=True, type=Path, help="experiment directory (classes.txt, posteriors/)")
    parser.add_argument("--data", nargs="+", required=True, type=Path, help="data directories (utt2label)")
    parser.add_argument("--results", type=Path, default=None, help="results.json to write (default EXP/results.json)")
    parser.add_argument("--info", type=Path, default=None,
                        help="train_done.json of the experiment: its " + ", ".join(INFO_KEYS)
                             + " join every row (default EXP/train_done.json when it exists)")
    return parser


def experiment_task(exp: Path) -> str:
    """``task.type`` of ``EXP/config.yaml`` (``cls`` when the experiment has no config)."""
    path = exp / "config.yaml"
    if not path.is_file():
        return "cls"
    task = read_yaml(path).get("task", {})
    kind = task.get("type", "sv") if isinstance(task, dict) else task
    if kind not in ("cls", "cm"):
        raise SpkpeftError(f"{path}: task '{kind}' has no evaluate stage (sv experiments are scored by spkpeft.bin.score)")
    return kind


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    info_path = args.info
    if info_path is None and (args.exp / "train_done.json").is_file():
        info_path = args.exp / "train_done.json"
    info = read_experiment_info(info_path) if info_path else {}
    task = experiment_task(args.exp)
    if task == "cm":
        from spkpeft.tasks.cm.evaluate import evaluate_cm

        print(results_table(evaluate_cm(args.exp, args.data, args.results or args.exp / "results.json", info)))
        return 0
    for data_dir in args.data:
        if not evaluable(args.exp, data_dir):
            lacks = "utt2label" if not (data_dir / "utt2label").is_file() else posteriors_path(args.exp, data_dir)
            print(f"evaluate: skipping {data_dir} (no {lacks})", file=sys.stderr)
    rows = evaluate_cls(args.exp, args.data, args.results or args.exp / "results.json", info)
    print(results_table(rows))
    return 0


if __name__ == "__main__":
    run_main(main)
