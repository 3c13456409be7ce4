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
from typing import Any, Sequence

import numpy as np

from spkpeft.bin._cli import run_main
from spkpeft.errors import SpkpeftError, file_error
from spkpeft.eval.bootstrap import DEFAULT_DRAWS, DEFAULT_SEED, bootstrap_metrics, metric_intervals
from spkpeft.eval.calibration import Calibration, load_calibration
from spkpeft.eval.metrics import (DEFAULT_P_TARGETS, actdcf_key, compute_act_dcf, compute_cllr, compute_metrics,
                                  compute_min_cllr)
from spkpeft.eval.report import INFO_KEYS, read_experiment_info, results_table
from spkpeft.io.atomic import write_json_atomic
from spkpeft.tasks.sv.scoring import (DEFAULT_TOP_N, NORMS, add_enrollment, cohort_matrix, embedding_mean, load_embeddings,
                           read_spk2utt, read_utt2spk_files, score_file_name, score_trial_lists, trial_speakers)
from spkpeft.io.trials import read_trials, write_scores


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


def calibrations_by_norm(paths: Sequence[Path]) -> dict[str, Calibration]:
    """``{norm: calibration}`` of the ``--calibration`` files (two for one norm is an error)."""
    by_norm: dict[str, Calibration] = {}
    for path in paths:
        cal = load_calibration(path)
        if cal is None:
            raise file_error(path, "calibration file does not exist")
        if cal.norm in by_norm:
            raise file_error(path, f"a second calibration for norm '{cal.norm}'")
        by_norm[cal.norm] = cal
    return by_norm


def calibrated_keys(scores: np.ndarray, labels: np.ndarray, cal: Calibration) -> dict[str, Any]:
    """``cllr``, ``actdcf_p<p>`` (p = 0.01, 0.05) of the calibrated scores and the stored thresholds."""
    llr = cal.llr(scores)
    out: dict[str, Any] = {"cllr": compute_cllr(llr, labels)}
    out.update({actdcf_key(p): compute_act_dcf(llr, labels, p) for p in DEFAULT_P_TARGETS})
    out.update(threshold_p_target=cal.p_target, threshold_llr=cal.threshold_llr, threshold_raw=cal.threshold_raw)
    return out


def result_row(trials: str, norm: str, scores: np.ndarray, labels: np.ndarray, info: dict[str, Any],
               speakers: Sequence[str] | None = None, calibration: Calibration | None = None,
               draws: int = DEFAULT_DRAWS, seed: int = DEFAULT_SEED) -> dict:
    """One ``results.json`` entry: the contract's keys, then ``eer_ci95``, ``mindcf_p<p>_ci95``
    (speaker bootstrap, when ``speakers`` and ``draws > 0``), ``min_cllr``, the calibrated
    keys of :func:`calibrated_keys` (with ``calibration``), then ``info``."""
    metrics = compute_metrics(scores, labels)
    row = {"trials": trials, "n_trials": metrics["n_trials"], "eer_pct": metrics["eer_pct"],
           "mindcf_p0.01": metrics["mindcf_p0.01"], "mindcf_p0.05": metrics["mindcf_p0.05"],
           "norm": norm, "task": "sv"}
    if speakers is not None and draws > 0:
        row.update(metric_intervals(bootstrap_metrics(scores, labels, speakers, draws, seed)))
        row["ci_draws"] = draws
    row["min_cllr"] = compute_min_cllr(scores, labels)
    if calibration is not None:
        row.update(calibrated_keys(scores, labels, calibration))
    return {**row, **info}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if (args.cohort is None) != (args.cohort_utt2spk is None):
        raise SpkpeftError("--cohort and --cohort-utt2spk go together")
    norms = args.norms or (list(NORMS) if args.cohort else ["none"])
    info = read_experiment_info(args.info) if args.info else {}

    embeddings = load_embeddings(args.embeddings)
    if args.enroll:
        embeddings = add_enrollment(embeddings, args.enroll)
    train_cache: dict[Path, dict[str, np.ndarray]] = {}

    def train_set(path: Path) -> dict[str, np.ndarray]:
        """The embeddings of an scp, read once even when it is both --mean and --cohort."""
        if path.resolve() not in train_cache:
            train_cache[path.resolve()] = load_embeddings([path])
        return train_cache[path.resolve()]

    mean = embedding_mean(train_set(args.mean)) if args.mean else None
    cohort = cohort_matrix(train_set(args.cohort), args.cohort_utt2spk) if args.cohort else None
    calibrations = calibrations_by_norm(args.calibration)
    utt2spk = read_utt2spk_files(args.utt2spk)
    models = read_spk2utt(args.enroll) if args.enroll else None
    trials = [(path, read_trials(path)) for path in args.trials]
    scored = score_trial_lists(embeddings, [(u1, u2, path) for path, (u1, u2, _) in trials],
                               mean=mean, cohort=cohort, norms=norms, top_n=args.top_n)
    results = []
    for (path, (utt1, utt2, labels)), by_norm in zip(trials, scored):
        speakers = trial_speakers(utt1, utt2spk, models)
        for norm in norms:
            write_scores(args.score_dir / score_file_name(path.name, norm), utt1, utt2, by_norm[norm])
            results.append(result_row(path.name, norm, by_norm[norm], labels, info, speakers,
                                      calibrations.get(norm), args.bootstrap, args.bootstrap_seed))
    write_json_atomic(args.results, results)
    print(results_table(results))
    return 0


if __name__ == "__main__":
    run_main(main)
