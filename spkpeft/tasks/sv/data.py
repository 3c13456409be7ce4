"""Speaker-verification training data: speaker labels and held-out validation speakers.

Splitting the training data directory (deterministic given ``seed``):

- ``task.val_speakers`` speakers are held out entirely; the validation EER is measured on
  trials among their utterances (never on the test trials);
- of every remaining speaker with at least ``task.val_utts_per_speaker + 1`` utterances,
  ``val_utts_per_speaker`` are held out for the validation loss (the classifier knows
  these speakers);
- everything else trains.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spkpeft.errors import SpkpeftError
from spkpeft.io.datadir import DataDir
from spkpeft.tasks.base import TRAIN_DIR


@dataclass
class TrainSplit:
    """The training data directory split into training and validation parts."""

    speakers: list[str]                 # training speakers; label = index
    train_utts: list[tuple[str, str, int]]  # (utt, path, label)
    val_loss_utts: list[tuple[str, str, int]]
    val_eer_utts: list[tuple[str, str, str]]  # (utt, path, speaker)


def split_training_data(data: DataDir, cfg, seed: int) -> TrainSplit:
    """Hold out validation speakers and utterances (see the module docstring); ``cfg``: the ``task`` section."""
    rng = np.random.default_rng(seed)
    spk2utt = data.spk2utt
    speakers = list(spk2utt)
    if cfg.val_speakers >= len(speakers) - 1:
        raise SpkpeftError(f"{data.path}: task.val_speakers={cfg.val_speakers} leaves fewer than 2 "
                           f"of the {len(speakers)} speakers for training")
    held_out = set(rng.choice(len(speakers), size=cfg.val_speakers, replace=False).tolist()) if cfg.val_speakers else set()
    train_spks = [s for i, s in enumerate(speakers) if i not in held_out]
    val_eer = [(u, data.wav[u], speakers[i]) for i in sorted(held_out) for u in spk2utt[speakers[i]]]
    train, val_loss = [], []
    for label, spk in enumerate(train_spks):
        utts = spk2utt[spk]
        k = cfg.val_utts_per_speaker if len(utts) > cfg.val_utts_per_speaker else 0
        chosen = set(rng.choice(len(utts), size=k, replace=False).tolist()) if k else set()
        for i, utt in enumerate(utts):
            (val_loss if i in chosen else train).append((utt, data.wav[utt], label))
    return TrainSplit(train_spks, train, val_loss, val_eer)


def single_utterance_warning(data: DataDir) -> str | None:
    """The stage-2 warning for speakers with one utterance in a training directory (None when
    there are none): allowed, such a speaker trains but gives no validation utterance.
    (Evaluation directories often hold one utterance per speaker, e.g. enrollment ids;
    nothing is reported there.)"""
    if data.path.name != TRAIN_DIR:
        return None
    singles = [(number, spk) for number, (spk, utts) in enumerate(data.spk2utt.items(), 1) if len(utts) == 1]
    if not singles:
        return None
    number, spk = singles[0]
    others = f" (and {len(singles) - 1} more speaker(s))" if len(singles) > 1 else ""
    return (f"{data.path / 'spk2utt'}:{number}: speaker '{spk}' has a single utterance{others}: "
            "allowed, it trains but gives no validation utterance")
