"""Cosine scoring of trial lists, score normalisation and metrics (stage 5).

Usage::

    python -m spkpeft.bin.score --embeddings test.scp [...] --trials T [T ...] \
        --score-dir EXP/scores --results EXP/results.json [--mean train.scp] \
        [--enroll data/C/enroll/spk2utt] [--cohort train.scp --cohort-utt2spk data/C/train/utt2spk] \
        [--top-n 300] [--norms none snorm asnorm] [--info EXP/train_done.json] \
        [--calibration EXP/calibration/none.json ...] [--utt2spk data/C/test/utt2spk ...] \
        [--bootstrap 1000] [--bootstrap-seed 0]

``--enroll``: a trial's first field may be an enrollment id of that
``spk2utt``, scored with the mean of its utterances' embeddings. ``--cohort``:
the per-speaker mean embeddings of the training speakers form the cohort of
S-norm (``snorm``, whole cohort) and AS-norm (``asnorm``, the ``--top-n``
highest cohort scores of each side); see :mod:`spkpeft.tasks.sv.scoring`. ``--norms``
defaults to ``none``, plus ``snorm asnorm`` when a cohort is given.

Writes ``<score-dir>/<trials>.score`` (raw) and ``<score-dir>/<trials>.<norm>.score``
(normalised), lines ``utt1 utt2 score`` sorted in ``LC_ALL=C`` order, and
``results.json``: one object per trial list and normalisation with ``trials``,
``n_trials``, ``eer_pct``, ``mindcf_p0.01``, ``mindcf_p0.05``, ``norm``
(``none``/``snorm``/``asnorm``), then with ``--info`` the experiment's
``config``, ``upstream``, ``trainable_params``, ``total_params``,
``train_seconds`` and ``peak_memory_mb``.

Besides, every row has ``eer_ci95``, ``mindcf_p0.01_ci95``, ``mindcf_p0.05_ci95``
(``[lo, hi]``, the 95 % percentile intervals of a ``--bootstrap``-draw bootstrap
over the enrollment-side speakers of ``--utt2spk``, :mod:`spkpeft.eval.bootstrap`;
an id without a speaker there is its own cluster; ``ci_draws`` the number of draws)
and ``min_cllr`` (Cllr after the optimal monotone transform). A row whose norm
has a ``--calibration`` file (:mod:`spkpeft.eval.calibration`) also has ``cllr``,
``actdcf_p0.01``, ``actdcf_p0.05`` of the calibrated LLRs and the decision
threshold of the calibration's operating point: ``threshold_p_target``,
``threshold_llr``, ``threshold_raw`` (on this norm's scores; null when the
calibration scale is not positive). Cllr is only reported for calibrated scores:
raw cosines are not LLRs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

from spkpeft.bin._cli import run_main
from spkpeft.eval.bootstrap import DEFAULT_DRAWS, DEFAULT_SEED
from spkpeft.eval.report import INFO_KEYS, read_experiment_info
from spkpeft.tasks.results import results_table
from spkpeft.tasks.sv.evaluate import score_lists
from spkpeft.tasks.sv.scoring import DEFAULT_TOP_N, NORMS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--embeddings", nargs="+", required=True, type=Path, help="Kaldi scp file(s) of embeddings")
    parser.add_argument("--trials", nargs="+", required=True, type=Path, help="Kaldi trials file(s)")
    parser.add_argument("--score-dir", required=True, type=Path)
    parser.add_argument("--results", required=True, type=Path, help="results.json to write")
    parser.add_argument("--mean", type=Path, default=None, help="scp of training embeddings to subtract the mean of")
    parser.add_argument("--enroll", type=Path, default=None,
                        help="spk2utt of enrollment models (trial field 1 may be a model id)")
    parser.add_argument("--cohort", type=Path, default=None, help="scp of the cohort (training) embeddings")
    parser.add_argument("--cohort-utt2spk", type=Path, default=None,
                        help="utt2spk of the cohort utterances: one cohort entry per speaker (mean embedding)")
    parser.add_argument("--top-n", type=int, default=DEFAULT_TOP_N,
                        help=f"AS-norm: highest cohort scores kept per side (default {DEFAULT_TOP_N})")
    parser.add_argument("--norms", nargs="+", choices=NORMS, default=None,
                        help="normalisations to report (default: none, plus snorm asnorm with --cohort)")
    parser.add_argument("--info", type=Path, default=None,
                        help="train_done.json of the experiment: its " + ", ".join(INFO_KEYS) + " join every row")
    parser.add_argument("--calibration", nargs="+", type=Path, default=[],
                        help="calibration JSON file(s) (EXP/calibration/<norm>.json): each calibrates the rows of its norm")
    parser.add_argument("--utt2spk", nargs="+", type=Path, default=[],
                        help="utt2spk of the evaluation sets: the speakers the bootstrap resamples")
    parser.add_argument("--bootstrap", type=int, default=DEFAULT_DRAWS,
                        help=f"bootstrap draws for the 95%% intervals (default {DEFAULT_DRAWS}; 0: none)")
    parser.add_argument("--bootstrap-seed", type=int, default=DEFAULT_SEED, help="seed of the bootstrap draws")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    info = read_experiment_info(args.info) if args.info else {}
    results = score_lists(args.embeddings, args.trials, args.score_dir, args.results, info, mean_scp=args.mean,
                          enroll=args.enroll, cohort_scp=args.cohort, cohort_utt2spk=args.cohort_utt2spk,
                          top_n=args.top_n, norms=args.norms, calibration_files=args.calibration,
                          utt2spk_files=args.utt2spk, draws=args.bootstrap, seed=args.bootstrap_seed)
    print(results_table(results))
    return 0


if __name__ == "__main__":
    run_main(main)
