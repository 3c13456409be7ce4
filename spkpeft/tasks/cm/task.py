"""The spoofing-countermeasure task (``task: cm``); see :mod:`spkpeft.tasks.base`.

Labels: ``utt2label`` holds ``bonafide`` or ``spoof`` (anything else is an error naming the
file and line); classes are ``[spoof, bonafide]`` (index 1 bona fide, as in AASIST).  The
score of an utterance is the log posterior ratio ``log p(bonafide | x) - log p(spoof | x)``
of the 2-class layer (for long utterances: of its length-weighted mean chunk logits), a
log-likelihood ratio up to the training prior's log odds: higher = more bona fide.  With
``loss.type: ocsoftmax`` (one-class softmax, Zhang et al. 2021) the layer is instead
:class:`~spkpeft.nn.losses.CosineToCentre` and the score its cosine to the bona fide centre.
Validation (never the evaluation set): a ``dev`` directory (``run.sh`` passes
``data/<corpus>/dev``) or a stratified held-out fraction of ``train``; the lowest dev EER
picks ``best.pt``.  Stage 4 writes ``EXP/cm_scores/<set>/scores.txt`` (``<utt-id> <score>``,
in ``wav.scp`` order) from the sharded ``cm.scp``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import kaldiio
import numpy as np
import torch
from torch import nn

from spkpeft.data.crops import load_utterance
from spkpeft.engine.extract import extract_data_dir
from spkpeft.engine.inference import embed_waveforms
from spkpeft.errors import SpkpeftError, file_error
from spkpeft.eval.metrics import compute_eer
from spkpeft.io.atomic import write_text_atomic
from spkpeft.io.datadir import DataDir, read_data_dir
from spkpeft.nn.losses import CosineToCentre, build_loss
from spkpeft.nn.model import build_model
from spkpeft.tasks.base import TASKS, Task, TrainingData, stratified_split

CLASSES = ("spoof", "bonafide")
BONAFIDE = CLASSES.index("bonafide")
CM_LOSSES = ("ce", "ocsoftmax")


@dataclass
class CMTaskConfig:
    """``task: cm``."""

    type: str = "cm"
    val_fraction: float = field(default=0.1, metadata={"check": lambda v: None if 0.0 <= v < 1.0 else f"must be in [0, 1), got {v}"})
    val_max_seconds: float = field(default=6.0, metadata={"check": lambda v: None if v > 0 else f"must be > 0, got {v}"})


def cm_labels(data: DataDir) -> list[int]:
    """Class index (0 spoof, 1 bona fide) of every utterance of ``data``, in ``wav.scp`` order."""
    path = data.path / "utt2label"
    if data.utt2label is None:
        raise SpkpeftError(f"{path}: missing (task cm needs '<utt-id> bonafide|spoof' lines)")
    labels = []
    for number, (utt, label) in enumerate(data.utt2label.items(), 1):
        if label not in CLASSES:
            raise file_error(path, f"label '{label}' of '{utt}' must be bonafide or spoof", number)
    for utt in data.wav:
        labels.append(CLASSES.index(data.utt2label[utt]))
    return labels


def bonafide_scores(outputs):
    """``logit_bonafide - logit_spoof`` = ``log p(bonafide) - log p(spoof)`` of 2-class logits
    ``(N, 2)``; the one column of a one-class model's ``(N, 1)`` cosines as it is."""
    if outputs.shape[1] == 1:
        return outputs[:, 0]
    return outputs[:, BONAFIDE] - outputs[:, 1 - BONAFIDE]


def check_cm_loss(cfg) -> None:
    if cfg.loss.type not in CM_LOSSES:
        raise SpkpeftError(f"loss.type '{cfg.loss.type}' is not a countermeasure loss "
                           f"(task cm expects: {', '.join(CM_LOSSES)})")


def build_cm_model(cfg):
    """The model with its last layer: 2 logits (``loss.type: ce``) or the cosine to the
    bona fide centre (``ocsoftmax``)."""
    check_cm_loss(cfg)
    if cfg.loss.type == "ce":
        return build_model(cfg, num_classes=2)
    model = build_model(cfg)
    model.classifier = CosineToCentre(model.head.embed_dim)
    return model


def eer_pct(scores: np.ndarray, labels: np.ndarray) -> float:
    """EER (%) of bona fide (label 1, positive) against spoof scores; NaN without both classes."""
    if labels.all() or not labels.any():
        return float("nan")
    return 100.0 * compute_eer(scores, labels.astype(bool))


class CMTask(Task):
    """Bona fide vs spoof; the development EER picks ``best.pt``."""

    name = "cm"
    metrics = ("val_loss", "val_eer_pct")
    selection = ("val_eer_pct", "min")

    def training_data(self, cfg, data_dir: DataDir, seed: int, dev_dir=None) -> TrainingData:
        labels = cm_labels(data_dir)
        utts = list(data_dir.wav)
        if len(set(labels)) < 2:
            raise SpkpeftError(f"{data_dir.path / 'utt2label'}: task cm needs both bonafide and spoof utterances")
        if dev_dir is not None:
            dev = read_data_dir(dev_dir)
            train_idx = list(range(len(utts)))
            validation = list(zip(dev.wav, dev.wav.values(), cm_labels(dev)))
        else:
            train_idx, held = stratified_split(utts, labels, cfg.task.val_fraction, seed)
            validation = [(utts[i], data_dir.wav[utts[i]], labels[i]) for i in held]
        items = [(utts[i], data_dir.wav[utts[i]], labels[i]) for i in train_idx]
        counts = np.bincount([label for _, _, label in items], minlength=2).tolist()
        return TrainingData(items=items, class_names=list(CLASSES), num_classes=2, class_counts=counts,
                            speed_changes_label=False, validation=validation)

    def build_model(self, cfg, data: TrainingData):
        return build_cm_model(cfg)

    def inference_model(self, cfg, exp):
        return build_cm_model(cfg)

    def build_loss(self, cfg, model, data: TrainingData):
        check_cm_loss(cfg)
        return build_loss(cfg.loss, model.output_dim, 2, data.class_counts)

    @torch.no_grad()
    def validate(self, trainee, data: TrainingData, cfg, device) -> dict[str, float]:
        """``{"val_loss", "val_eer_pct"}`` of the validation utterances (NaN without them)."""
        result = {"val_loss": float("nan"), "val_eer_pct": float("nan")}
        if not data.validation:
            return result
        was_training = trainee.training
        trainee.eval()
        wavs = [load_utterance(path, cfg.task.val_max_seconds) for _, path, _ in data.validation]
        logits = embed_waveforms(trainee.model, wavs, device)
        labels = np.array([label for _, _, label in data.validation])
        loss, _ = trainee.loss(torch.from_numpy(logits).to(device), torch.from_numpy(labels).to(device))
        trainee.train(was_training)
        return {"val_loss": float(loss), "val_eer_pct": eer_pct(bonafide_scores(logits), labels == BONAFIDE)}

    def infer(self, model, cfg, exp, data_dir, device, source, progress=None) -> int:
        """Bona fide scores of every utterance -> ``EXP/cm_scores/<name>/scores.txt``."""
        out = Path(exp) / "cm_scores" / Path(data_dir).name
        done = extract_data_dir(BonafideScore(model), data_dir, out, cfg.extract, device, source,
                                progress=progress, name="cm")
        utts = list(read_data_dir(data_dir).wav)
        scores = {utt: float(vec[0]) for utt, vec in kaldiio.load_scp_sequential(str(out / "cm.scp"))}
        write_text_atomic(out / "scores.txt", (f"{u} {scores[u]:.6f}" for u in utts))
        return done


class BonafideScore(nn.Module):
    """``(B, 1)`` bona fide scores (:func:`bonafide_scores`) of the model's outputs (for a
    2-class model the mean over chunks stays a score of the mean logits: the difference of
    logits is linear in them)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, wavs, wav_lens):
        return bonafide_scores(self.model(wavs, wav_lens).float()).unsqueeze(1)


TASKS.register("cm", CMTaskConfig, CMTask, description="spoofing countermeasures")
