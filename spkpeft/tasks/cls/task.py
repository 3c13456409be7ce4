"""The utterance-classification task (``task: cls``); see :mod:`spkpeft.tasks.base`.

Labels: ``utt2label`` of the training directory; the classes are its label names in
``LC_ALL=C`` order (class ``i`` = line ``i`` of ``EXP/classes.txt``, written when training
starts).  Validation (never the test set): a ``dev`` directory or a stratified held-out
fraction ``task.val_fraction`` of every class (:mod:`spkpeft.tasks.labelled`).  ``best.pt`` is the epoch of the highest validation
accuracy.  Stage 4 writes each utterance's class posteriors
``softmax(logits)`` (long utterances: the length-weighted mean over chunks) to
``EXP/posteriors/<set>/posteriors.scp``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from spkpeft.engine.extract import extract_data_dir
from spkpeft.errors import SpkpeftError, file_error
from spkpeft.io.atomic import write_text_atomic
from spkpeft.io.datadir import DataDir, c_sort_key
from spkpeft.nn.losses import build_loss
from spkpeft.nn.model import build_model
from spkpeft.tasks.base import TASKS, TRAIN_DIR, InferenceExtras, Progress, ReportContext, TrainingData
from spkpeft.tasks.labelled import LabelledTask, require_labels, split_labelled, validation_outputs
from spkpeft.tasks.cls import evaluate, report

CLASSES_FILE = evaluate.CLASSES_FILE
NEEDS = "task cls needs '<utt-id> <label>' lines"


@dataclass
class ClsTaskConfig:
    """``task: cls``."""

    type: str = "cls"
    val_fraction: float = field(default=0.1, metadata={"check": lambda v: None if 0.0 <= v < 1.0 else f"must be in [0, 1), got {v}"})
    val_max_seconds: float = field(default=10.0, metadata={"check": lambda v: None if v > 0 else f"must be > 0, got {v}"})


def read_classes(exp) -> list[str]:
    """The class names of a trained experiment or package (``classes.txt``, one per line)."""
    return evaluate.read_class_names(Path(exp))


def labels_of(data: DataDir) -> "dict[str, str]":
    """``utt2label`` of ``data`` (an error when the directory has none)."""
    return require_labels(data, NEEDS)


class ClsTask(LabelledTask):
    """Classes of ``utt2label``; logits; accuracy on dev picks ``best.pt``."""

    name = "cls"
    metrics = ("val_loss", "val_acc_pct")
    selection = ("val_acc_pct", "max")
    result_keys = evaluate.RESULT_KEYS
    infer_commands = ("classify",)
    compare_columns = report.COMPARE_COLUMNS

    # ---------------------------------------------------------------- stage 2
    def check_corpus(self, corpus: Path) -> None:
        if not (Path(corpus) / "test" / "wav.scp").is_file():
            raise file_error(Path(corpus) / "test" / "wav.scp", "missing (run the earlier stages first)")

    def check_data_dir(self, data: DataDir) -> None:
        labels_of(data)

    def check_data_dirs(self, dirs) -> None:
        """Every label of an evaluation directory occurs in ``train``."""
        known = {label for data in dirs if data.path.name == TRAIN_DIR for label in labels_of(data).values()}
        if not known:
            return
        for data in dirs:
            for number, (utt, label) in enumerate(labels_of(data).items(), 1):
                if label not in known:
                    raise file_error(data.path / "utt2label", f"label '{label}' of '{utt}' does not occur in train", number)

    # ---------------------------------------------------------------- stage 3
    def training_data(self, cfg, data_dir: DataDir, seed: int, dev_dir=None) -> TrainingData:
        train_labels = labels_of(data_dir)
        classes = sorted(set(train_labels.values()), key=c_sort_key)
        if len(classes) < 2:
            raise SpkpeftError(f"{data_dir.path / 'utt2label'}: task cls needs at least 2 classes, found {len(classes)}")
        index = {name: i for i, name in enumerate(classes)}

        def dev_labels(dev: DataDir) -> list[int]:
            names = labels_of(dev)
            for number, (utt, name) in enumerate(names.items(), 1):
                if name not in index:
                    raise file_error(dev.path / "utt2label", f"class '{name}' of '{utt}' does not occur in training", number)
            return [index[names[u]] for u in dev.wav]

        labels = [index[train_labels[u]] for u in data_dir.wav]
        return split_labelled(data_dir, labels, classes, dev_dir, dev_labels, cfg.task.val_fraction, seed)

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

    def validate(self, trainee, data: TrainingData, cfg, device) -> dict[str, float]:
        """``{"val_loss", "val_acc_pct"}`` of the validation utterances (NaN without any)."""
        if not data.validation:
            return {"val_loss": float("nan"), "val_acc_pct": float("nan")}
        _, _, loss, accuracy = validation_outputs(trainee, data.validation, cfg.task.val_max_seconds, device)
        return {"val_loss": loss, "val_acc_pct": 100.0 * accuracy}

    # ---------------------------------------------------------------- stage 4
    def output_module(self, model):
        return Posteriors(model)

    def infer(self, model, cfg, exp, data_dir, device, source, progress: Progress | None = None) -> int:
        """Class posteriors of every utterance of ``data_dir`` -> ``EXP/posteriors/<name>/posteriors.scp``."""
        out = Path(exp) / "posteriors" / Path(data_dir).name
        return extract_data_dir(self.output_module(model), data_dir, out, cfg.extract, device, source,
                                progress=progress, name="posteriors")

    # ---------------------------------------------------------------- stages 5-6
    def evaluate(self, cfg, exp, data_dirs, results, info, options) -> list[dict]:
        for data_dir in data_dirs:
            if not evaluate.evaluable(Path(exp), Path(data_dir)):
                lacks = "utt2label" if not (Path(data_dir) / "utt2label").is_file() else \
                    evaluate.posteriors_path(Path(exp), Path(data_dir))
                print(f"evaluate: skipping {data_dir} (no {lacks})", file=sys.stderr)
        return evaluate.evaluate_cls(Path(exp), list(data_dirs), Path(results), info)

    def report_sections(self, rows, context: ReportContext) -> list[str]:
        return [f"### per class: {name}\n\n{table}" for name, table in report.per_class_tables(rows, context.score_dir)]

    def plots(self, rows, context: ReportContext) -> list[Path]:
        return report.plot_confusions(rows, context.score_dir, context.plot_dir)

    # ---------------------------------------------------------------- inference and export
    def inference_extras(self, directory: Path, source: dict | None) -> InferenceExtras:
        return InferenceExtras(classes=read_classes(directory))

    def package_extras(self, exp: Path, source: dict, out: Path) -> None:
        write_text_atomic(Path(out) / CLASSES_FILE, read_classes(exp))


class Posteriors(nn.Module):
    """``softmax(model(wavs, lens))``: class posteriors ``(B, K)``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, wavs, wav_lens):
        return torch.softmax(self.model(wavs, wav_lens).float(), dim=-1)


TASKS.register("cls", ClsTaskConfig, ClsTask, description="utterance classification")
