"""What the utterance-label tasks (``cls`` classes, ``cm`` bona fide / spoof) share: labels from
``utt2label``, the split of the training directory into training and validation utterances,
and the validation pass over the held-out utterances.

Validation data (never the test set): the utterances of a ``dev`` directory when one is given
(``bin/train --dev``; the pipeline passes ``data/<corpus>/dev`` when it exists, see
:meth:`LabelledTask.dev_dir`), otherwise a stratified held-out fraction ``task.val_fraction``
of every class of the training directory (:func:`spkpeft.tasks.base.stratified_split`, drawn
with the training seed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from spkpeft.data.crops import load_utterance
from spkpeft.engine.inference import embed_waveforms
from spkpeft.errors import SpkpeftError
from spkpeft.io.datadir import DataDir, find_data_dirs, read_data_dir
from spkpeft.tasks.base import TRAIN_DIR, Task, TrainingData, stratified_split

#: ``(utt, path, label index)`` validation utterances
Validation = list[tuple[str, str, int]]
#: the label indices of a data directory's utterances, in ``wav.scp`` order
LabelIndices = Callable[[DataDir], list[int]]

DEV_DIR = "dev"


def require_labels(data: DataDir, needs: str) -> dict[str, str]:
    """``utt2label`` of ``data``; missing: an error naming the file and what the task ``needs``."""
    if data.utt2label is None:
        raise SpkpeftError(f"{data.path / 'utt2label'}: missing ({needs})")
    return data.utt2label


def split_labelled(data_dir: DataDir, labels: list[int], class_names: list[str], dev_dir: Path | None,
                   dev_labels: LabelIndices, val_fraction: float, seed: int) -> TrainingData:
    """:class:`TrainingData` of a labelled training directory (``labels``: its utterances' class
    indices in ``wav.scp`` order): every utterance trains and ``dev_dir`` validates, or without
    one a stratified fraction ``val_fraction`` of every class is held out to validate."""
    utts = list(data_dir.wav)
    if dev_dir is not None:
        dev = read_data_dir(dev_dir)
        train_idx = list(range(len(utts)))
        validation = list(zip(dev.wav, dev.wav.values(), dev_labels(dev)))
    else:
        train_idx, held = stratified_split(utts, labels, val_fraction, seed)
        validation = [(utts[i], data_dir.wav[utts[i]], labels[i]) for i in held]
    items = [(utts[i], data_dir.wav[utts[i]], labels[i]) for i in train_idx]
    counts = np.bincount([label for _, _, label in items], minlength=len(class_names)).tolist()
    return TrainingData(items=items, class_names=list(class_names), num_classes=len(class_names),
                        class_counts=counts, speed_changes_label=False, validation=validation)


@torch.no_grad()
def validation_outputs(trainee, validation: Validation, max_seconds: float,
                       device) -> tuple[np.ndarray, np.ndarray, float, float]:
    """``(outputs (N, D), labels (N,), loss, accuracy)`` of the trainee on the validation
    utterances (the first ``max_seconds`` of each), in eval mode; its mode is restored."""
    was_training = trainee.training
    trainee.eval()
    wavs = [load_utterance(path, max_seconds) for _, path, _ in validation]
    outputs = embed_waveforms(trainee.model, wavs, device)
    labels = np.array([label for _, _, label in validation], dtype=np.int64)
    loss, accuracy = trainee.loss(torch.from_numpy(outputs).to(device), torch.from_numpy(labels).to(device))
    trainee.train(was_training)
    return outputs, labels, float(loss), float(accuracy)


class LabelledTask(Task):
    """A task whose labels are ``utt2label`` classes: it validates on ``data/<corpus>/dev``
    when the corpus has one."""

    def dev_dir(self, corpus: Path) -> Path | None:
        dev = Path(corpus) / DEV_DIR
        return dev if (dev / "wav.scp").is_file() else None

    def evaluation_sets(self, corpus: Path) -> list[Path]:
        """The labelled data directories of ``corpus`` other than ``train``."""
        return [d for d in find_data_dirs(corpus) if d.name != TRAIN_DIR and (d / "utt2label").is_file()]


def duplicate_name(data_dirs: Sequence[Path]) -> str | None:
    """A directory name shared by two of ``data_dirs`` (their outputs would collide), or None."""
    names = [Path(d).name for d in data_dirs]
    return next((n for n in names if names.count(n) > 1), None)
