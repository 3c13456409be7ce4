"""What a task decides, and the registry of tasks.

A task (``task.type`` in a config: ``sv`` speaker verification, ``cls`` utterance
classification; ``cm`` next) is a :class:`Task` registered in :data:`TASKS` with the
dataclass of its ``task:`` section.  It decides:

* the labels a data directory provides (``utt2spk`` speakers, ``utt2label`` classes) and how
  the training directory splits into training and validation parts
  (:meth:`Task.training_data`);
* the model and the loss built on the shared layers (:meth:`Task.build_model`,
  :meth:`Task.build_loss`): e.g. ECAPA embeddings + a margin softmax for ``sv``, a head +
  linear classification layer + cross-entropy for ``cls``;
* the validation metrics and how the best checkpoint is chosen (:attr:`Task.metrics`,
  :attr:`Task.selection`), computed by :meth:`Task.validate`;
* what stage 4 writes (:meth:`Task.infer`: embeddings, posteriors, scores) and the result
  keys of stage 5.

The trainer (:mod:`spkpeft.engine.trainer`) is task-agnostic: it takes a task object and
asks it for all of the above.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from spkpeft.registry import Registry, tagged_section

#: ``task.type`` -> the task's config dataclass and its :class:`Task` class (``build()``)
TASKS = Registry("task", tag_key="type")


@tagged_section(TASKS)
@dataclass
class TaskConfig:
    """``task:`` section (``task: sv`` is short for ``task: {type: sv}``)."""

    type: str = "sv"


@dataclass
class TrainingData:
    """A training data directory as a task sees it.

    ``items``: ``(utt, path, label)`` training utterances; ``class_names[label]``;
    ``num_classes``: outputs of the classifier / loss (speaker verification with speed
    perturbation: 3 per speaker); ``class_counts``: training utterances per class;
    ``speed_changes_label``: a speed-perturbed crop is a new class (speakers) or not;
    ``validation``: whatever :meth:`Task.validate` needs.
    """

    items: list[tuple[str, str, int]]
    class_names: list[str]
    num_classes: int
    class_counts: list[int] = field(default_factory=list)
    speed_changes_label: bool = False
    validation: Any = None


class Task:
    """The interface of a task (see the module docstring)."""

    name: str = ""
    #: validation metrics of ``train_epochs.csv`` (``val_*``), in column order
    metrics: Sequence[str] = ()
    #: ``(metric, "min" | "max")``: the metric that picks ``best.pt``
    selection: tuple[str, str] = ("val_loss", "min")

    def training_data(self, cfg, data_dir, seed: int, dev_dir=None) -> TrainingData:
        raise NotImplementedError

    def prepare_exp(self, exp, data: TrainingData) -> None:
        """Write what inference needs besides the weights (e.g. the class names); default none."""

    def build_model(self, cfg, data: TrainingData):
        raise NotImplementedError

    def inference_model(self, cfg, exp):
        """The model of a trained experiment ``exp``, before its weights are loaded."""
        raise NotImplementedError

    def build_loss(self, cfg, model, data: TrainingData):
        raise NotImplementedError

    def validate(self, trainee, data: TrainingData, cfg, device) -> dict[str, float]:
        raise NotImplementedError

    def infer(self, model, cfg, exp, data_dir, device, source) -> int:
        """Stage 4 for one data directory; returns how many utterances were processed."""
        raise NotImplementedError

    def better(self, value: float, best: float) -> bool:
        """Whether ``value`` of :attr:`selection`'s metric beats ``best``.  Until a real value
        has been seen (``best`` not finite), every epoch counts as the best one, so that a run
        without validation data still keeps its latest epoch as ``best.pt``."""
        if not math.isfinite(best):
            return True
        if value != value:  # NaN
            return False
        return value < best if self.selection[1] == "min" else value > best

    def worst(self) -> float:
        """The starting 'best' value of the selection metric."""
        return float("inf") if self.selection[1] == "min" else float("-inf")


def stratified_split(utts: list[str], labels: list[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices ``(train, held_out)``: ``round(fraction n_c)`` of every class ``c`` held out
    (at least one when the class has two or more utterances and ``fraction > 0``)."""
    rng = np.random.default_rng([seed, 7])
    held: set[int] = set()
    by_class: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        by_class.setdefault(label, []).append(index)
    for label in sorted(by_class):
        members = by_class[label]
        k = int(round(fraction * len(members)))
        if fraction > 0 and len(members) >= 2:
            k = min(max(k, 1), len(members) - 1)
        held.update(rng.choice(members, size=k, replace=False).tolist() if k else [])
    return [i for i in range(len(utts)) if i not in held], sorted(held)


def get_task(cfg) -> Task:
    """The task object of ``cfg.task``."""
    return TASKS.get(cfg.task.type).build()
