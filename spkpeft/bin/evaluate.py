"""Stage 5 of any task: the metrics of an experiment's stage-4 outputs, ``results.json``.

Usage::

    python -m spkpeft.bin.evaluate --exp EXP --data DIR [DIR ...] [--results EXP/results.json] \
        [--info EXP/train_done.json] [--calibrate true|false] [--bootstrap 1000] [--top-n 300] [--task T]

The task is the experiment's (``task.type`` of ``EXP/config.yaml``; ``--task`` for an experiment
without one).  Each ``--data`` is a data directory or a corpus directory (``data/<corpus>``),
which stands for the data directories its task evaluates
(:meth:`spkpeft.tasks.base.Task.evaluation_sets`).  ``--info`` (default
``EXP/train_done.json`` when it exists) gives the experiment's ``config``, ``upstream``,
``trainable_params``, ``total_params``, ``train_seconds`` and ``peak_memory_mb``, which join
every row.  The results table goes to stdout.  What each task computes and writes:

* ``sv`` (:mod:`spkpeft.tasks.sv.evaluate`): with ``--calibrate true`` the score calibration on
  held-out training speakers, then cosine scores of every trial list of the corpus, S-norm and
  AS-norm (``--top-n`` cohort scores per side) against the training speakers, EER, minDCF,
  speaker-bootstrap 95 % intervals (``--bootstrap`` draws) and calibrated metrics;
* ``cls`` (:mod:`spkpeft.tasks.cls.evaluate`): accuracy, macro-F1, per-class scores and
  confusion matrices of every labelled set whose posteriors stage 4 wrote (the others are
  skipped, with a note on stderr);
* ``cm`` (:mod:`spkpeft.tasks.cm.evaluate`): EER, min t-DCF, per-attack (and per-condition) EER.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence

from spkpeft.bin._cli import run_main
from spkpeft.eval.report import INFO_KEYS, read_experiment_info
from spkpeft.tasks.base import EvaluateOptions, get_task
from spkpeft.tasks.experiment import expand_data_dirs, read_experiment_config
from spkpeft.tasks.registered import task_named, task_names
from spkpeft.tasks.results import results_table


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--exp", required=True, type=Path, help="experiment directory (config.yaml, stage-4 outputs)")
    parser.add_argument("--data", nargs="+", required=True, type=Path, help="data or corpus directories")
    parser.add_argument("--results", type=Path, default=None, help="results.json to write (default EXP/results.json)")
    parser.add_argument("--info", type=Path, default=None,
                        help="train_done.json of the experiment: its " + ", ".join(INFO_KEYS)
                             + " join every row (default EXP/train_done.json when it exists)")
    parser.add_argument("--calibrate", choices=("true", "false"), default="true",
                        help="sv: fit the score calibration on held-out training speakers first (default true)")
    parser.add_argument("--bootstrap", type=int, default=EvaluateOptions.bootstrap,
                        help=f"sv: bootstrap draws for the 95%% intervals, 0 = none (default {EvaluateOptions.bootstrap})")
    parser.add_argument("--top-n", type=int, default=None, help="sv: AS-norm cohort scores kept per side (default 300)")
    parser.add_argument("--task", choices=task_names(), default=None,
                        help="the task of an experiment without config.yaml (default: the experiment's)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    info_path = args.info
    if info_path is None and (args.exp / "train_done.json").is_file():
        info_path = args.exp / "train_done.json"
    info = read_experiment_info(info_path) if info_path else {}
    cfg = None if args.task and not (args.exp / "config.yaml").is_file() else read_experiment_config(args.exp)
    task = task_named(args.task) if args.task else get_task(cfg)
    data_dirs = expand_data_dirs(args.data, task.evaluation_sets)
    options = EvaluateOptions(calibrate=args.calibrate == "true", bootstrap=args.bootstrap, top_n=args.top_n)
    rows = task.evaluate(cfg, args.exp, data_dirs, args.results or args.exp / "results.json", info, options)
    print(results_table(rows))
    return 0


if __name__ == "__main__":
    run_main(main)
