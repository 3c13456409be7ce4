"""The utterance-classification task (``task: cls``); see :mod:`spkpeft.tasks.base`.

Labels: ``utt2label`` of the training directory; the classes are its label names in
``LC_ALL=C`` order (class ``i`` = line ``i`` of ``EXP/classes.txt``, written when training
starts).  Validation (never the test set): the utterances of a ``dev`` directory when one
is given (``bin/train --dev``; ``run.sh`` passes ``data/<corpus>/dev`` when it exists),
otherwise a stratified held-out fraction ``task.val_fraction`` of every class of the
training directory (``round(f n_c)`` utterances of class ``c``, at least one when ``n_c >= 2``,
drawn with the training seed).  ``best.pt`` is the epoch of the highest validation
accuracy.  Stage 4 writes each utterance's class posteriors
``softmax(logits)`` (long utterances: the length-weighted mean over chunks) to
``EXP/posteriors/<set>/posteriors.scp``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from spkpeft.data.crops import load_utterance
from spkpeft.engine.extract import extract_data_dir
from spkpeft.engine.inference import embed_waveforms
from spkpeft.errors import SpkpeftError, file_error
from spkpeft.io.atomic import write_text_atomic
from spkpeft.io.datadir import DataDir, c_sort_key, read_data_dir
from spkpeft.nn.losses import build_loss
from spkpeft.nn.model import build_model
from spkpeft.tasks.base import TASKS, Task, TrainingData, stratified_split

CLASSES_FILE = "classes.txt"


@dataclass
class ClsTaskConfig:
    """``task: cls``."""

    type: str = "cls"
    val_fraction: float = field(default=0.1, metadata={"check": lambda v: None if 0.0 <= v < 1.0 else f"must be in [0, 1), got {v}"})
    val_max_seconds: float = field(default=10.0, metadata={"check": lambda v: None if v > 0 else f"must be > 0, got {v}"})


def read_classes(exp) -> list[str]:
    """The class names of a trained experiment (``EXP/classes.txt``, one per line)."""
    path = Path(exp) / CLASSES_FILE
    if not path.is_file():
        raise SpkpeftError(f"{path}: missing (written when a cls experiment starts training)")
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def labels_of(data: DataDir) -> "dict[str, str]":
    """``utt2label`` of ``data`` (an error when the directory has none)."""
    if data.utt2label is None:
        raise SpkpeftError(f"{data.path / 'utt2label'}: missing (task cls needs '<utt-id> <label>' lines)")
    return data.utt2label


class ClsTask(Task):
    """Classes of ``utt2label``; logits; accuracy on dev picks ``best.pt``."""

    name = "cls"
    metrics = ("val_loss", "val_acc_pct")
    selection = ("val_acc_pct", "max")

    def training_data(self, cfg, data_dir: DataDir, seed: int, dev_dir=None) -> TrainingData:
        train_labels = labels_of(data_dir)
        classes = sorted(set(train_labels.values()), key=c_sort_key)
        if len(classes) < 2:
            raise SpkpeftError(f"{data_dir.path / 'utt2label'}: task cls needs at least 2 classes, found {len(classes)}")
        index = {name: i for i, name in enumerate(classes)}
        utts = list(data_dir.wav)
        labels = [index[train_labels[u]] for u in utts]
        if dev_dir is not None:
            dev = read_data_dir(dev_dir)
            dev_labels = labels_of(dev)
            for number, (utt, name) in enumerate(dev_labels.items(), 1):
                if name not in index:
                    raise file_error(dev.path / "utt2label", f"class '{name}' of '{utt}' does not occur in training", number)
            train_idx = list(range(len(utts)))
            validation = [(u, dev.wav[u], index[dev_labels[u]]) for u in dev.wav]
        else:
            train_idx, held = stratified_split(utts, labels, cfg.task.val_fraction, seed)
            validation = [(utts[i], data_dir.wav[utts[i]], labels[i]) for i in held]
        items = [(utts[i], data_dir.wav[utts[i]], labels[i]) for i in train_idx]
        counts = np.bincount([label for _, _, label in items], minlength=len(classes)).tolist()
        return TrainingData(items=items, class_names=classes, num_classes=len(classes), class_counts=counts,
                            speed_changes_label=False, validation=validation)

    def prepare_exp(self, exp, data: TrainingData) -> None:
        write_text_atomic(Path(exp) / CLASSES_FILE, data.class_names)

    def build_model(self, cfg, data: TrainingData):
        return build_model(cfg, num_classes=data.num_classes)

    def inference_model(self, cfg, exp):
        return build_model(cfg, num_classes=len(read_classes(exp)))

    def build_loss(self, cfg, model, data: TrainingData):
        if cfg.loss.type != "ce":
            raise SpkpeftError(f"loss.type '{cfg.loss.type}' is not a classification loss (task cls expects: ce)")
        return build_loss(cfg.loss, model.output_dim, data.num_classes, data.class_counts)

    @torch.no_grad()
    def validate(self, trainee, data: TrainingData, cfg, device) -> dict[str, float]:
        """``{"val_loss", "val_acc_pct"}`` of the validation utterances (NaN without any)."""
        result = {"val_loss": float("nan"), "val_acc_pct": float("nan")}
        if not data.validation:
            return result
        was_training = trainee.training
        trainee.eval()
        wavs = [load_utterance(path, cfg.task.val_max_seconds) for _, path, _ in data.validation]
        logits = torch.from_numpy(embed_waveforms(trainee.model, wavs, device)).to(device)
        labels = torch.tensor([label for _, _, label in data.validation], device=device)
        loss, accuracy = trainee.loss(logits, labels)
        trainee.train(was_training)
        return {"val_loss": float(loss), "val_acc_pct": 100.0 * float(accuracy)}

    def infer(self, model, cfg, exp, data_dir, device, source, progress=None) -> int:
        """Class posteriors of every utterance of ``data_dir`` -> ``EXP/posteriors/<name>/posteriors.scp``."""
        out = Path(exp) / "posteriors" / Path(data_dir).name
        return extract_data_dir(Posteriors(model), data_dir, out, cfg.extract, device, source,
                                progress=progress, name="posteriors")


class Posteriors(nn.Module):
    """``softmax(model(wavs, lens))``: class posteriors ``(B, K)``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, wavs, wav_lens):
        return torch.softmax(self.model(wavs, wav_lens).float(), dim=-1)


TASKS.register("cls", ClsTaskConfig, ClsTask, description="utterance classification")
