"""Calibration trials of held-out training speakers and their scores (``bin/calibrate``).

The trial list: the ``task.val_speakers`` training speakers that training held out
(:func:`spkpeft.tasks.sv.data.split_training_data` with the experiment's
``train.seed``: the very speakers whose validation EER chose ``best.pt``; never a
test trial) and the pairs of their utterances that validation scores
(:func:`spkpeft.tasks.sv.validation.validation_pairs`: all pairs ``i < j``, pairs
from one session left out for VoxCeleb-style ids ``spk/session/utt``, at most
``MAX_VAL_TRIALS`` chosen with a fixed seed).

Their scores are those of stage 5 for the same embeddings (stage 4's
``embeddings/train``): cosine after subtracting the mean of all training
embeddings, and S-norm / AS-norm against a cohort of the per-speaker means of the
*other* training speakers. The held-out speakers are left out of the cohort so
that, as for test trials (whose speakers are never training speakers), no trial
side meets its own speaker in the cohort.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from spkpeft.errors import SpkpeftError
from spkpeft.eval.calibration import DEFAULT_P_EFF, DEFAULT_P_TARGET, fit_calibration, write_calibration
from spkpeft.eval.metrics import compute_cllr, compute_min_cllr
from spkpeft.io.datadir import read_data_dir, read_key_value
from spkpeft.io.trials import NORMS, Trials, score_file_name, write_scores, write_trials
from spkpeft.tasks.sv.data import split_training_data
from spkpeft.tasks.sv.scoring import DEFAULT_TOP_N, embedding_mean, load_embeddings, model_embeddings, \
    score_trial_lists
from spkpeft.tasks.sv.validation import validation_pairs

log = logging.getLogger("spkpeft.calibrate")


class NoCalibrationTrials(SpkpeftError):
    """The held-out speakers give no calibration list (none held out, or no target or no non-target pair)."""


def calibration_trials(cfg, train_dir: str | Path) -> tuple[Trials, list[str]]:
    """``((utt1, utt2, labels), held-out speakers)`` of the experiment's config ``cfg`` on ``train_dir``;
    :class:`NoCalibrationTrials` when there is no usable list."""
    data = read_data_dir(train_dir)
    split = split_training_data(data, cfg.task, cfg.train.seed)
    if not split.val_eer_utts:
        raise NoCalibrationTrials(f"{train_dir}: task.val_speakers is 0, so no training speaker was held out to "
                           "calibrate on (set task.val_speakers, or skip calibration: run.sh --calibrate false)")
    utts = [u for u, _, _ in split.val_eer_utts]
    speakers = [s for _, _, s in split.val_eer_utts]
    i, j, labels = validation_pairs(utts, speakers)
    if not labels.any() or labels.all():
        raise NoCalibrationTrials(f"{train_dir}: the {len(set(speakers))} held-out speakers give "
                           f"{int(labels.sum())} target and {int((~labels).sum())} non-target calibration trials; "
                           "both are needed (more utterances or sessions per speaker, or more task.val_speakers)")
    return ([utts[k] for k in i], [utts[k] for k in j], labels), sorted(set(speakers))


def calibration_scores(embeddings: Mapping[str, np.ndarray], trials: Trials, trials_path: str | Path,
                       utt2spk: Mapping[str, str], held_out: Sequence[str], norms: Sequence[str],
                       top_n: int) -> dict[str, np.ndarray]:
    """``{norm: scores in trial order}`` of the calibration trials (module docstring)."""
    utt1, utt2, _ = trials
    mean = embedding_mean(embeddings)
    cohort = None
    if any(n != "none" for n in norms):
        skip = set(held_out)
        spk2utt: dict[str, list[str]] = {}
        for utt, spk in utt2spk.items():
            if spk not in skip:
                spk2utt.setdefault(spk, []).append(utt)
        if len(spk2utt) < 2:
            raise SpkpeftError(f"a score-normalisation cohort needs at least 2 speakers besides the held-out ones, "
                               f"found {len(spk2utt)}")
        cohort = np.stack(list(model_embeddings(embeddings, spk2utt, trials_path).values()))
    return score_trial_lists(embeddings, [(utt1, utt2, trials_path)], mean=mean, cohort=cohort,
                             norms=norms, top_n=top_n)[0]


def fit_experiment_calibration(cfg, exp: Path, train_dir: Path, embeddings: Path | None = None,
                               norms: Sequence[str] = NORMS, use: str = "none", p_target: float = DEFAULT_P_TARGET,
                               p_eff: float = DEFAULT_P_EFF, top_n: int = DEFAULT_TOP_N,
                               skip_without_held_out: bool = False) -> dict | None:
    """Fit and write the calibration of the trained experiment ``exp`` whose resolved config is
    ``cfg`` (``spkpeft.bin.calibrate`` documents the files): ``{norm: Calibration}``, or None
    when ``skip_without_held_out`` and the held-out speakers give no calibration list (a
    warning, nothing written)."""
    exp, train_dir = Path(exp), Path(train_dir)
    if use not in norms:
        raise SpkpeftError(f"--use {use} is not among --norms {' '.join(norms)}")
    scp = embeddings or exp / "embeddings" / train_dir.name / "xvector.scp"
    try:
        trials, held_out = calibration_trials(cfg, train_dir)
    except NoCalibrationTrials as err:
        if not skip_without_held_out:
            raise
        log.warning("no calibration: %s", err)
        return None
    out = exp / "calibration"
    trials_path = out / "trials"
    write_trials(trials_path, *trials)
    scores = calibration_scores(load_embeddings([scp]), trials, trials_path, read_key_value(train_dir / "utt2spk"),
                                held_out, norms, top_n)
    utt1, utt2, labels = trials
    fitted = {}
    for norm in norms:
        write_scores(out / score_file_name("trials", norm), utt1, utt2, scores[norm])
        cal = fit_calibration(scores[norm], labels, norm=norm, p_target=p_target, p_eff=p_eff)
        cal.extra.update(trials=str(trials_path), n_trials=int(labels.size), n_target=int(labels.sum()),
                         n_speakers=len(held_out), cllr_uncalibrated=compute_cllr(scores[norm], labels),
                         cllr=compute_cllr(cal.llr(scores[norm]), labels),
                         min_cllr=compute_min_cllr(scores[norm], labels))
        if cal.threshold_raw is None:
            log.warning("%s: calibration scale %.4g <= 0: the %s scores do not separate the calibration "
                        "trials; threshold_raw is null", out, cal.scale, norm)
        write_calibration(out / f"{norm}.json", cal)
        fitted[norm] = cal
        log.info("calibration (%s): llr = %.4f s %+.4f on %d trials of %d held-out speakers; "
                 "Cllr %.4f -> %.4f (min %.4f)", norm, cal.scale, cal.offset, labels.size, len(held_out),
                 cal.extra["cllr_uncalibrated"], cal.extra["cllr"], cal.extra["min_cllr"])
    write_calibration(exp / "calibration.json", fitted[use])
    return fitted
