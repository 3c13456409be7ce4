"""Fit the score calibration of a trained speaker-verification experiment (stage 5, before scoring).

Usage::

    python -m spkpeft.bin.calibrate --exp EXP --data data/C/train \
        [--embeddings EXP/embeddings/train/xvector.scp] [--norms none snorm asnorm] [--use none] \
        [--p-target 0.01] [--p-eff 0.5] [--top-n 300]

Builds the calibration trial list from the training speakers that training held out
(``task.val_speakers``; see :mod:`spkpeft.tasks.sv.calibration`), scores it from the
stage-4 training embeddings like stage 5 scores the test trials, and fits, per
normalisation, the prior-weighted logistic-regression calibration of
:mod:`spkpeft.eval.calibration`. Writes, each atomically:

* ``EXP/calibration/trials`` (``utt1 utt2 target|nontarget``) and its scores
  ``EXP/calibration/trials[.<norm>].score``;
* ``EXP/calibration/<norm>.json`` for every ``--norms`` (stage 5 reports the
  calibrated metrics of each normalisation with its own calibration);
* ``EXP/calibration.json``: the one of ``--use`` (default ``none``: the raw score,
  the cosine of the mean-subtracted embeddings), for single-trial scoring.

``--skip-without-held-out`` (what stage 5 passes): when the held-out speakers give no
calibration list (``task.val_speakers: 0``, or no target or no non-target pair), warn
and write nothing; stage 5 then reports no calibrated metrics. Without it that is an error.

Each JSON holds ``method``, ``scale``, ``offset``, ``norm``, ``p_target``,
``threshold_llr``, ``threshold_raw``, ``p_eff``, and ``trials``, ``n_trials``,
``n_target``, ``n_speakers``, ``cllr_uncalibrated`` (Cllr of the scores taken as
LLRs), ``cllr`` (after calibration) and ``min_cllr`` on the calibration trials.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence

from spkpeft.bin._cli import run_main
from spkpeft.errors import file_error
from spkpeft.eval.calibration import DEFAULT_P_EFF, DEFAULT_P_TARGET
from spkpeft.io.trials import NORMS
from spkpeft.tasks.base import get_task
from spkpeft.tasks.experiment import read_experiment_config
from spkpeft.tasks.sv import SVTask
from spkpeft.tasks.sv.calibration import fit_experiment_calibration
from spkpeft.tasks.sv.scoring import DEFAULT_TOP_N


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--exp", required=True, type=Path, help="trained experiment (config.yaml, embeddings/train)")
    parser.add_argument("--data", required=True, type=Path, help="the training data directory the experiment used")
    parser.add_argument("--embeddings", type=Path, default=None,
                        help="embeddings of --data (default EXP/embeddings/<data dir name>/xvector.scp)")
    parser.add_argument("--norms", nargs="+", choices=NORMS, default=list(NORMS), help="normalisations to calibrate")
    parser.add_argument("--use", choices=NORMS, default="none", help="the one copied to EXP/calibration.json")
    parser.add_argument("--p-target", type=float, default=DEFAULT_P_TARGET,
                        help=f"operating point of the stored threshold (default {DEFAULT_P_TARGET})")
    parser.add_argument("--p-eff", type=float, default=DEFAULT_P_EFF,
                        help=f"effective prior of the logistic regression (default {DEFAULT_P_EFF})")
    parser.add_argument("--top-n", type=int, default=DEFAULT_TOP_N, help="AS-norm top-N, as in stage 5")
    parser.add_argument("--skip-without-held-out", action="store_true",
                        help="no calibration list (task.val_speakers 0, or no target or non-target pair among the "
                             "held-out speakers): warn and write nothing instead of failing")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    cfg_path = args.exp / "config.yaml"
    if not cfg_path.is_file():
        raise file_error(cfg_path, "missing (train the experiment first, stage 3)")
    cfg = read_experiment_config(args.exp)
    if not isinstance(get_task(cfg), SVTask):
        raise file_error(cfg_path, f"calibration is for speaker verification (task sv), not task {cfg.task.type}")
    fit_experiment_calibration(cfg, args.exp, args.data, args.embeddings, args.norms, args.use, args.p_target,
                               args.p_eff, args.top_n, args.skip_without_held_out)
    return 0


if __name__ == "__main__":
    run_main(main)
