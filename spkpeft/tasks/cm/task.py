"""The spoofing-countermeasure task (``task: cm``); see :mod:`spkpeft.tasks.base`.

Labels: ``utt2label`` holds ``bonafide`` or ``spoof`` (anything else is an error naming the
file and line); classes are ``[spoof, bonafide]`` (index 1 bona fide, as in AASIST).  The
score of an utterance is the log posterior ratio ``log p(bonafide | x) - log p(spoof | x)``
of the 2-class layer (for long utterances: of its length-weighted mean chunk logits), a
log-likelihood ratio up to the training prior's log odds: higher = more bona fide.  With
``loss.type: ocsoftmax`` (one-class softmax, Zhang et al. 2021) the layer is instead
:class:`~spkpeft.nn.losses.CosineToCentre` and the score its cosine to the bona fide centre.
Validation (never the evaluation set): a ``dev`` directory or a stratified held-out fraction
of ``train`` (:mod:`spkpeft.tasks.labelled`); the lowest dev EER picks ``best.pt``.  Stage 4 writes ``EXP/cm_scores/<set>/scores.txt`` (``<utt-id> <score>``,
in ``wav.scp`` order) from the sharded ``cm.scp``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import kaldiio
import numpy as np
import torch
from torch import nn

from spkpeft.engine.extract import extract_data_dir
from spkpeft.errors import SpkpeftError, file_error
from spkpeft.eval.metrics import compute_eer
from spkpeft.io.atomic import write_text_atomic
from spkpeft.io.datadir import DataDir, read_data_dir
from spkpeft.nn.losses import CosineToCentre, build_loss
from spkpeft.nn.model import build_model
from spkpeft.tasks.base import TASKS, Progress, ReportContext, TrainingData
from spkpeft.tasks.cm import evaluate, report
from spkpeft.tasks.labelled import LabelledTask, require_labels, split_labelled, validation_outputs

CLASSES = ("spoof", "bonafide")
BONAFIDE = CLASSES.index("bonafide")
CM_LOSSES = ("ce", "ocsoftmax")
NEEDS = "task cm needs '<utt-id> bonafide|spoof' lines"


@dataclass
class CMTaskConfig:
    """``task: cm``."""

    type: str = "cm"
    val_fraction: float = field(default=0.1, metadata={"check": lambda v: None if 0.0 <= v < 1.0 else f"must be in [0, 1), got {v}"})
    val_max_seconds: float = field(default=6.0, metadata={"check": lambda v: None if v > 0 else f"must be > 0, got {v}"})


def check_cm_labels(data: DataDir) -> dict[str, str]:
    """``utt2label`` of ``data``, checked: ``bonafide`` / ``spoof`` labels and, with
    ``utt2attack``, attack ``-`` for exactly the bona fide utterances."""
    labels = require_labels(data, NEEDS)
    for number, (utt, label) in enumerate(labels.items(), 1):
        if label not in CLASSES:
            raise file_error(data.path / "utt2label", f"label '{label}' of '{utt}' must be bonafide or spoof", number)
        if data.utt2attack is not None and (data.utt2attack[utt] == "-") != (label == "bonafide"):
            raise file_error(data.path / "utt2attack", f"attack '{data.utt2attack[utt]}' of '{utt}' does not fit its "
                             f"label '{label}' ('-' for bona fide only)", number)
    return labels


def cm_labels(data: DataDir) -> list[int]:
    """Class index (0 spoof, 1 bona fide) of every utterance of ``data``, in ``wav.scp`` order."""
    labels = check_cm_labels(data)
    return [CLASSES.index(labels[utt]) for utt in data.wav]


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


class CMTask(LabelledTask):
    """Bona fide vs spoof; the development EER picks ``best.pt``."""

    name = "cm"
    metrics = ("val_loss", "val_eer_pct")
    selection = ("val_eer_pct", "min")
    fixed_classes = CLASSES
    result_keys = evaluate.RESULT_KEYS
    infer_commands = ("cm-score",)
    compare_columns = report.COMPARE_COLUMNS

    # ---------------------------------------------------------------- stage 2
    def check_data_dir(self, data: DataDir) -> None:
        check_cm_labels(data)

    # ---------------------------------------------------------------- stage 3
    def training_data(self, cfg, data_dir: DataDir, seed: int, dev_dir=None) -> TrainingData:
        labels = cm_labels(data_dir)
        if len(set(labels)) < 2:
            raise SpkpeftError(f"{data_dir.path / 'utt2label'}: task cm needs both bonafide and spoof utterances")
        return split_labelled(data_dir, labels, list(CLASSES), dev_dir, cm_labels, cfg.task.val_fraction, seed)

    def build_model(self, cfg, data: TrainingData):
        return build_cm_model(cfg)

    def inference_model(self, cfg, exp):
        return build_cm_model(cfg)

    def build_loss(self, cfg, model, data: TrainingData):
        check_cm_loss(cfg)
        return build_loss(cfg.loss, model.output_dim, 2, data.class_counts)

    def validate(self, trainee, data: TrainingData, cfg, device) -> dict[str, float]:
        """``{"val_loss", "val_eer_pct"}`` of the validation utterances (NaN without them)."""
        if not data.validation:
            return {"val_loss": float("nan"), "val_eer_pct": float("nan")}
        logits, labels, loss, _ = validation_outputs(trainee, data.validation, cfg.task.val_max_seconds, device)
        return {"val_loss": loss, "val_eer_pct": eer_pct(bonafide_scores(logits), labels == BONAFIDE)}

    # ---------------------------------------------------------------- stage 4
    def output_module(self, model):
        return BonafideScore(model)

    def infer(self, model, cfg, exp, data_dir, device, source, progress: Progress | None = None) -> int:
        """Bona fide scores of every utterance -> ``EXP/cm_scores/<name>/scores.txt``."""
        out = Path(exp) / "cm_scores" / Path(data_dir).name
        done = extract_data_dir(self.output_module(model), data_dir, out, cfg.extract, device, source,
                                progress=progress, name="cm")
        utts = list(read_data_dir(data_dir).wav)
        scores = {utt: float(vec[0]) for utt, vec in kaldiio.load_scp_sequential(str(out / "cm.scp"))}
        write_text_atomic(out / "scores.txt", (f"{u} {scores[u]:.6f}" for u in utts))
        return done

    # ---------------------------------------------------------------- stages 5-6
    def evaluate(self, cfg, exp, data_dirs, results, info, options) -> list[dict]:
        return evaluate.evaluate_cm(Path(exp), list(data_dirs), Path(results), info)

    def report_sections(self, rows, context: ReportContext) -> list[str]:
        return [section for row in rows for section in report.cm_breakdown_tables(row)]

    def plots(self, rows, context: ReportContext) -> list[Path]:
        return report.plot_cm_sets(rows, context.exp, context.corpus_dirs, context.plot_dir)


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
