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

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from spkpeft.errors import SpkpeftError
from spkpeft.io.datadir import read_data_dir
from spkpeft.io.trials import Trials
from spkpeft.tasks.sv.data import split_training_data
from spkpeft.tasks.sv.scoring import embedding_mean, model_embeddings, score_trial_lists
from spkpeft.tasks.sv.validation import validation_pairs


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
