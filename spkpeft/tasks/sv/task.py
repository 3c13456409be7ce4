"""The speaker-verification task (``task: sv``); see :mod:`spkpeft.tasks.base` for the interface."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from spkpeft.data.augment import num_classes_multiplier
from spkpeft.engine.extract import extract_data_dir
from spkpeft.errors import SpkpeftError
from spkpeft.nn.losses import build_loss
from spkpeft.nn.model import build_model
from spkpeft.tasks.base import TASKS, Task, TrainingData
from spkpeft.tasks.sv.data import split_training_data
from spkpeft.tasks.sv.validation import validate

log = logging.getLogger("spkpeft.train")

MARGIN_LOSSES = ("aam", "am")


def _non_negative(value: int) -> str | None:
    return None if value >= 0 else f"must be >= 0, got {value}"


@dataclass
class SVTaskConfig:
    """``task: sv``: which training data validates (never the test trials)."""

    type: str = "sv"
    val_speakers: int = field(default=20, metadata={"check": _non_negative})
    val_utts_per_speaker: int = field(default=1, metadata={"check": _non_negative})
    val_max_seconds: float = field(default=6.0, metadata={"check": lambda v: None if v > 0 else f"must be > 0, got {v}"})


class SVTask(Task):
    """Speakers of ``utt2spk``; embeddings; EER of held-out speakers picks ``best.pt``."""

    name = "sv"
    metrics = ("val_loss", "val_eer_pct")
    selection = ("val_eer_pct", "min")

    def training_data(self, cfg, data_dir, seed: int, dev_dir=None) -> TrainingData:
        if dev_dir is not None:
            raise SpkpeftError("task sv validates on held-out training speakers (task.val_speakers); it takes no dev directory")
        split = split_training_data(data_dir, cfg.task, seed)
        few = [s for s in split.speakers if len(data_dir.spk2utt[s]) <= cfg.task.val_utts_per_speaker]
        if few and cfg.task.val_utts_per_speaker:
            log.info("%d training speaker(s) (e.g. '%s') have too few utterances to hold %d out for the "
                     "validation loss; all of theirs train", len(few), few[0], cfg.task.val_utts_per_speaker)
        counts = [0] * len(split.speakers)
        for _, _, label in split.train_utts:
            counts[label] += 1
        return TrainingData(items=split.train_utts, class_names=list(split.speakers),
                            num_classes=len(split.speakers) * num_classes_multiplier(cfg.data.augment),
                            class_counts=counts, speed_changes_label=True, validation=split)

    def build_model(self, cfg, data: TrainingData):
        return build_model(cfg)

    def inference_model(self, cfg, exp):
        return build_model(cfg)

    def build_loss(self, cfg, model, data: TrainingData):
        if cfg.loss.type not in MARGIN_LOSSES:
            raise SpkpeftError(f"loss.type '{cfg.loss.type}' does not train speaker embeddings "
                               f"(task sv expects one of: {', '.join(MARGIN_LOSSES)})")
        return build_loss(cfg.loss, model.head.embed_dim, data.num_classes)

    def validate(self, trainee, data: TrainingData, cfg, device) -> dict[str, float]:
        return validate(trainee, data.validation, cfg.task, device)

    def infer(self, model, cfg, exp, data_dir, device, source, progress=None) -> int:
        """Embeddings of every utterance of ``data_dir`` -> ``EXP/embeddings/<name>/xvector.scp``."""
        out = Path(exp) / "embeddings" / Path(data_dir).name
        return extract_data_dir(model, data_dir, out, cfg.extract, device, source, progress=progress)


TASKS.register("sv", SVTaskConfig, SVTask, description="speaker verification")
