"""Utterance classification (``task: cls``): classes from ``utt2label``, a head + linear
classification layer trained with cross-entropy, validation accuracy on a dev directory
or a stratified held-out part of training, stage 4 class posteriors, stage 5 accuracy and
macro-F1 with a per-class table, stage 6 a confusion matrix."""

from spkpeft.tasks.cls.task import ClsTask, ClsTaskConfig

__all__ = ["ClsTask", "ClsTaskConfig"]
