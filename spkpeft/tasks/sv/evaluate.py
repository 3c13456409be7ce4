"""Stage 5 of ``task: sv``: score calibration, cosine scoring with score normalisation, metrics.

:func:`evaluate_sv` is what the pipeline's stage 5 does for a speaker-verification experiment
``EXP`` evaluated on a corpus directory ``data/<corpus>`` (inputs gathered as follows):

1. with ``calibrate`` and stage 4's training embeddings ``EXP/embeddings/train/xvector.scp``:
   the calibration of :mod:`spkpeft.tasks.sv.calibration` (held-out training speakers ->
   ``EXP/calibration/<norm>.json``, ``EXP/calibration.json``), skipped with a warning when the
   held-out speakers give no calibration list;
2. :func:`score_lists` of the evaluation embeddings ``EXP/embeddings/<set>/xvector.scp`` (every
   set but ``train``, in name order) against every trial list ``<corpus>/trials/*`` (in name
   order), with enrollment models ``<corpus>/enroll/spk2utt`` when present, the training
   embeddings' mean subtracted and S-norm / AS-norm against the per-speaker means of the
   training speakers (``<corpus>/train/utt2spk``) when the training embeddings exist, the
   calibration files of step 1 (``EXP/calibration/<norm>.json``, else ``EXP/calibration.json``),
   and the evaluation sets' ``utt2spk`` for the speaker bootstrap (:func:`evaluation_speakers`).

:func:`score_lists` writes ``<score-dir>/<trials>.score`` (raw) and
``<score-dir>/<trials>.<norm>.score`` (normalised), lines ``utt1 utt2 score`` sorted in
``LC_ALL=C`` order, and ``results.json``: one row per trial list and normalisation
(:func:`result_row`); see ``spkpeft.bin.score`` for the keys.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from spkpeft.errors import SpkpeftError, file_error
from spkpeft.eval.bootstrap import DEFAULT_DRAWS, DEFAULT_SEED, bootstrap_metrics, metric_intervals
from spkpeft.eval.calibration import Calibration, load_calibration
from spkpeft.eval.metrics import (DEFAULT_P_TARGETS, actdcf_key, compute_act_dcf, compute_cllr, compute_metrics,
                                  compute_min_cllr)
from spkpeft.io.atomic import write_json_atomic
from spkpeft.io.datadir import find_data_dirs
from spkpeft.io.trials import read_trials, write_scores
from spkpeft.tasks.base import TRAIN_DIR, EvaluateOptions
from spkpeft.tasks.sv.calibration import fit_experiment_calibration
from spkpeft.tasks.sv.scoring import (DEFAULT_TOP_N, NORMS, add_enrollment, cohort_matrix, embedding_mean,
                                      load_embeddings, read_spk2utt, read_utt2spk_files, score_file_name,
                                      score_trial_lists, trial_speakers)

log = logging.getLogger("spkpeft.score")

#: the keys of every row, in table order (after ``task``)
RESULT_KEYS = ("trials", "n_trials", "eer_pct", "mindcf_p0.01", "mindcf_p0.05")
EMBEDDINGS = "xvector.scp"


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


def score_lists(embedding_scps: Sequence[Path], trial_paths: Sequence[Path], score_dir: Path, results: Path,
                info: dict[str, Any], mean_scp: Path | None = None, enroll: Path | None = None,
                cohort_scp: Path | None = None, cohort_utt2spk: Path | None = None, top_n: int = DEFAULT_TOP_N,
                norms: Sequence[str] | None = None, calibration_files: Sequence[Path] = (),
                utt2spk_files: Sequence[Path] = (), draws: int = DEFAULT_DRAWS,
                seed: int = DEFAULT_SEED) -> list[dict[str, Any]]:
    """Score every trial list under every normalisation, write the score files and ``results``;
    returns the rows (see the module docstring).  ``norms`` defaults to ``none``, plus ``snorm
    asnorm`` with a cohort."""
    if (cohort_scp is None) != (cohort_utt2spk is None):
        raise SpkpeftError("--cohort and --cohort-utt2spk go together")
    norms = list(norms or (NORMS if cohort_scp else ["none"]))
    embeddings = load_embeddings(embedding_scps)
    if enroll:
        embeddings = add_enrollment(embeddings, enroll)
    train_cache: dict[Path, dict[str, np.ndarray]] = {}

    def train_set(path: Path) -> dict[str, np.ndarray]:
        """The embeddings of an scp, read once even when it is both the mean and the cohort."""
        if path.resolve() not in train_cache:
            train_cache[path.resolve()] = load_embeddings([path])
        return train_cache[path.resolve()]

    mean = embedding_mean(train_set(mean_scp)) if mean_scp else None
    cohort = cohort_matrix(train_set(cohort_scp), cohort_utt2spk) if cohort_scp else None
    calibrations = calibrations_by_norm(calibration_files)
    utt2spk = read_utt2spk_files(utt2spk_files)
    models = read_spk2utt(enroll) if enroll else None
    trials = [(path, read_trials(path)) for path in trial_paths]
    scored = score_trial_lists(embeddings, [(u1, u2, path) for path, (u1, u2, _) in trials],
                               mean=mean, cohort=cohort, norms=norms, top_n=top_n)
    rows = []
    for (path, (utt1, utt2, labels)), by_norm in zip(trials, scored):
        speakers = trial_speakers(utt1, utt2spk, models)
        for norm in norms:
            write_scores(score_dir / score_file_name(path.name, norm), utt1, utt2, by_norm[norm])
            rows.append(result_row(path.name, norm, by_norm[norm], labels, info, speakers,
                                   calibrations.get(norm), draws, seed))
    write_json_atomic(results, rows)
    return rows


def corpus_of(data_dirs: Sequence[Path]) -> Path:
    """The one corpus directory (``data/<corpus>``) holding the data directories ``data_dirs``."""
    parents = list(dict.fromkeys(Path(d).parent for d in data_dirs))
    if len(parents) != 1:
        raise SpkpeftError("speaker verification is evaluated on one corpus directory, got data directories of "
                           + (", ".join(map(str, parents)) or "none"))
    return parents[0]


def calibration_inputs(exp: Path) -> list[Path]:
    """The calibration files stage 5 applies: ``EXP/calibration/<norm>.json`` of every norm that
    has one, else ``EXP/calibration.json`` when present."""
    found = [exp / "calibration" / f"{norm}.json" for norm in NORMS if (exp / "calibration" / f"{norm}.json").is_file()]
    if not found and (exp / "calibration.json").is_file():
        found = [exp / "calibration.json"]
    return found


def evaluate_sv(cfg, exp: Path, corpus: Path, results: Path, info: dict[str, Any],
                options: EvaluateOptions) -> list[dict[str, Any]]:
    """Stage 5 of the experiment ``exp`` (resolved config ``cfg``) on a corpus directory (see the
    module docstring)."""
    exp, corpus = Path(exp), Path(corpus)
    top_n = options.top_n if options.top_n is not None else DEFAULT_TOP_N
    trials_dir = corpus / "trials"
    for path in (trials_dir, exp / "embeddings" / "test" / EMBEDDINGS):
        if not path.exists():
            raise file_error(path, "missing input (run the earlier stages first)")
    train_scp = exp / "embeddings" / TRAIN_DIR / EMBEDDINGS
    if options.calibrate and train_scp.is_file():
        log.info("score calibration on held-out training speakers -> %s", exp / "calibration.json")
        fit_experiment_calibration(cfg, exp, corpus / TRAIN_DIR, top_n=top_n, skip_without_held_out=True)
    eval_scps = [scp for scp in sorted(exp.glob(f"embeddings/*/{EMBEDDINGS}")) if scp.parent.name != TRAIN_DIR]
    spk_files, enroll = evaluation_speakers(corpus)
    has_train = train_scp.is_file()
    cohort = has_train and (corpus / TRAIN_DIR / "utt2spk").is_file()
    return score_lists(eval_scps, sorted(p for p in trials_dir.iterdir()), exp / "scores", results, info,
                       mean_scp=train_scp if has_train else None, enroll=enroll,
                       cohort_scp=train_scp if cohort else None,
                       cohort_utt2spk=corpus / TRAIN_DIR / "utt2spk" if cohort else None, top_n=top_n,
                       calibration_files=calibration_inputs(exp), utt2spk_files=spk_files, draws=options.bootstrap)


def evaluation_speakers(corpus: Path) -> tuple[list[Path], Path | None]:
    """The speakers of a corpus's trials: the ``utt2spk`` of every data directory but ``train``
    (the speaker bootstrap resamples them) and the enrollment models ``enroll/spk2utt`` (None
    without); stage 5 and the paired comparison of ``spkpeft.bin.compare`` read the same."""
    utt2spk = [d / "utt2spk" for d in find_data_dirs(corpus) if d.name != TRAIN_DIR and (d / "utt2spk").is_file()]
    enroll = Path(corpus) / "enroll" / "spk2utt"
    return utt2spk, enroll if enroll.is_file() else None
