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

from spkpeft.config import read_yaml

from spkpeft.bin._cli import run_main
from spkpeft.errors import SpkpeftError, file_error
from spkpeft.eval.calibration import DEFAULT_P_EFF, DEFAULT_P_TARGET, fit_calibration, write_calibration
from spkpeft.eval.metrics import compute_cllr, compute_min_cllr
from spkpeft.io.datadir import read_key_value
from spkpeft.io.trials import NORMS, score_file_name, write_scores, write_trials
from spkpeft.tasks.config import config_from_dict
from spkpeft.tasks.sv.calibration import NoCalibrationTrials, calibration_scores, calibration_trials
from spkpeft.tasks.sv.scoring import DEFAULT_TOP_N, load_embeddings


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
    if args.use not in args.norms:
        raise SpkpeftError(f"--use {args.use} is not among --norms {' '.join(args.norms)}")
    cfg_path = args.exp / "config.yaml"
    if not cfg_path.is_file():
        raise file_error(cfg_path, "missing (train the experiment first, stage 3)")
    cfg = config_from_dict(read_yaml(cfg_path), str(cfg_path))
    if cfg.task.type != "sv":
        raise file_error(cfg_path, f"calibration is for speaker verification (task sv), not task {cfg.task.type}")
    scp = args.embeddings or args.exp / "embeddings" / args.data.name / "xvector.scp"
    try:
        trials, held_out = calibration_trials(cfg, args.data)
    except NoCalibrationTrials as err:
        if not args.skip_without_held_out:
            raise
        logging.warning("no calibration: %s", err)
        return 0
    out = args.exp / "calibration"
    trials_path = out / "trials"
    write_trials(trials_path, *trials)
    scores = calibration_scores(load_embeddings([scp]), trials, trials_path, read_key_value(args.data / "utt2spk"),
                                held_out, args.norms, args.top_n)
    utt1, utt2, labels = trials
    fitted = {}
    for norm in args.norms:
        write_scores(out / score_file_name("trials", norm), utt1, utt2, scores[norm])
        cal = fit_calibration(scores[norm], labels, norm=norm, p_target=args.p_target, p_eff=args.p_eff)
        cal.extra.update(trials=str(trials_path), n_trials=int(labels.size), n_target=int(labels.sum()),
                         n_speakers=len(held_out), cllr_uncalibrated=compute_cllr(scores[norm], labels),
                         cllr=compute_cllr(cal.llr(scores[norm]), labels),
                         min_cllr=compute_min_cllr(scores[norm], labels))
        if cal.threshold_raw is None:
            logging.warning("%s: calibration scale %.4g <= 0: the %s scores do not separate the calibration "
                            "trials; threshold_raw is null", out, cal.scale, norm)
        write_calibration(out / f"{norm}.json", cal)
        fitted[norm] = cal
        logging.info("calibration (%s): llr = %.4f s %+.4f on %d trials of %d held-out speakers; "
                     "Cllr %.4f -> %.4f (min %.4f)", norm, cal.scale, cal.offset, labels.size, len(held_out),
                     cal.extra["cllr_uncalibrated"], cal.extra["cllr"], cal.extra["min_cllr"])
    write_calibration(args.exp / "calibration.json", fitted[args.use])
    return 0


if __name__ == "__main__":
    run_main(main)
