"""Using a trained model: the Python API (:func:`load` -> :class:`TrainedModel`), exported
packages (:mod:`.package`) and their ONNX form (:mod:`.onnx_export`).  ``spkpeft.load`` is
:func:`load`, imported on first use."""

from spkpeft.inference.model import Classification, Decision, Score, TrainedModel, load

__all__ = ["Classification", "Decision", "Score", "TrainedModel", "load"]
