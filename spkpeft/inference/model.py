"""The Python API over a trained model: ``spkpeft.load(path)`` -> :class:`TrainedModel`.

``path`` is an experiment directory (``EXP/config.yaml`` and its checkpoints; ``checkpoint=``
picks ``best``/``last``/``avg``/a path, default ``extract.checkpoint``) or an exported package
(:mod:`spkpeft.inference.package`).  Inputs are audio files, arrays or tensors, one or a list
(:mod:`spkpeft.inference.inputs`: other sample rates are resampled to 16 kHz, stereo refused).
Outputs equal stage 4's: whole utterances, long ones cut into ``extract.chunk_seconds``
chunks whose outputs are length-weighted averaged, batched by length with
``extract.batch_seconds`` of padded audio per batch, in lists of ``extract.shard_size``
(a list in a data directory's ``wav.scp`` order gives stage 4's batches, hence its exact
numbers; any other batching gives the same numbers within float32 rounding, the model being
batch-invariant).

* ``sv``: :meth:`~TrainedModel.embed` (the embedding), :meth:`~TrainedModel.score` (stage 5's
  raw cosine ``<x1, x2> / (|x1| |x2|)`` of the mean-subtracted embeddings ``x = e - mu``, ``mu``
  the training embeddings' mean when the experiment has them; with a ``calibration.json`` the
  calibrated LLR ``a s + b`` instead, :class:`Score` says which) and
  :meth:`~TrainedModel.verify` (accept when the score reaches the calibration's
  ``threshold_llr`` or an explicit threshold);
* ``cm``: :meth:`~TrainedModel.cm_score`, stage 4's bona fide score (higher = more bona fide);
* ``cls``: :meth:`~TrainedModel.classify`, stage 4's class posteriors and the most probable label.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from spkpeft.engine.extract import embed_utterances
from spkpeft.errors import SpkpeftError
from spkpeft.tasks.sv.scoring import length_normalize, pair_scores
from spkpeft.inference.decision import decide
from spkpeft.inference.inputs import Audio, is_single, to_waveform
from spkpeft.inference.package import Loaded, load_any
from spkpeft.tasks.base import get_task
from spkpeft.tasks.registered import all_tasks

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Score:
    """A trial score: the calibrated LLR (``calibrated``) or the raw cosine."""

    value: float
    calibrated: bool

    def __float__(self) -> float:
        return self.value


@dataclass(frozen=True)
class Decision:
    """``accept`` when ``score >= threshold`` (LLR threshold when calibrated)."""

    accept: bool
    score: float
    threshold: float
    calibrated: bool


@dataclass(frozen=True)
class Classification:
    """The most probable class and the posteriors of every class (stage 4's)."""

    label: str
    posteriors: dict[str, float]


class TrainedModel:
    """A trained ``sv``, ``cm`` or ``cls`` model (see the module docstring)."""

    def __init__(self, loaded: Loaded) -> None:
        self.loaded = loaded
        self.task: str = loaded.cfg.task.type
        self.config = loaded.cfg
        self.classes = loaded.classes
        self.mean = loaded.mean
        self.calibration = loaded.calibration
        self.path = loaded.directory
        self.device = next(loaded.model.parameters()).device
        self._task = get_task(loaded.cfg)
        self._module = self._task.output_module(loaded.model)

    def __repr__(self) -> str:
        return f"TrainedModel(task={self.task!r}, {self.loaded.kind} {str(self.path)!r})"

    # ---------------------------------------------------------------- shared
    def answers(self, command: str) -> bool:
        """Whether the model's task answers the ``infer`` command (``embed``, ``cm-score``, ...)."""
        return command in self._task.infer_commands

    def _need(self, what: str, command: str | None = None) -> None:
        """Refuse ``what`` unless the model's task answers the ``infer`` command (default ``what``
        with ``-`` for ``_``; :attr:`spkpeft.tasks.base.Task.infer_commands`)."""
        command = command or what.replace("_", "-")
        if not self.answers(command):
            raise SpkpeftError(f"{self.path}: {what} needs {tasks_answering(command)} model, this one is '{self.task}'")

    def outputs(self, audios: Sequence[Audio], sample_rate: int | None = None,
                progress: Progress | None = None) -> np.ndarray:
        """Stage 4's outputs ``(N, D)`` of a list of inputs, in shards of ``extract.shard_size``
        (``progress(n)``: called with the number of chunks of every finished batch)."""
        extract = self.config.extract
        parts = []
        for start in range(0, len(audios), extract.shard_size):
            wavs = [to_waveform(a, sample_rate) for a in audios[start:start + extract.shard_size]]
            parts.append(embed_utterances(self._module, wavs, extract, self.device, progress))
        if not parts:
            raise SpkpeftError("no audio given")
        return np.concatenate(parts)

    def _one_or_many(self, audio: Audio | Sequence[Audio], sample_rate: int | None) -> tuple[np.ndarray, bool]:
        single = is_single(audio)
        return self.outputs([audio] if single else list(audio), sample_rate), single

    # ---------------------------------------------------------------- sv
    def embed(self, audio: Audio | Sequence[Audio], sample_rate: int | None = None) -> np.ndarray:
        """The embedding ``(E,)`` of one input, or ``(N, E)`` of a list (float32, stage 4's)."""
        self._need("embed")
        out, single = self._one_or_many(audio, sample_rate)
        return out[0] if single else out

    def score_embeddings(self, emb1: np.ndarray, emb2: np.ndarray) -> tuple[np.ndarray, bool]:
        """Scores of embedding pairs (rows of ``emb1``, ``emb2``) and whether they are calibrated
        LLRs: stage 5's raw cosine of mean-subtracted embeddings, then the calibration if any."""
        self._need("scoring", "score")
        e1, e2 = np.atleast_2d(emb1).astype(np.float64), np.atleast_2d(emb2).astype(np.float64)
        if e1.shape != e2.shape:
            raise SpkpeftError(f"embedding pairs need equal shapes, got {e1.shape} and {e2.shape}")
        unit = length_normalize(np.concatenate([e1, e2]), self.mean)
        index = np.arange(len(e1))
        raw = pair_scores(unit, index, index + len(e1))
        if self.calibration is None:
            return raw, False
        return self.calibration.llr(raw), True

    def score(self, a: Audio, b: Audio, sample_rate: int | None = None) -> Score:
        """The score of a trial: ``a`` (enrollment) against ``b`` (test)."""
        self._need("score")
        emb = self.embed([a, b], sample_rate)
        values, calibrated = self.score_embeddings(emb[:1], emb[1:])
        return Score(float(values[0]), calibrated)

    def verify(self, a: Audio, b: Audio, threshold: float | None = None, sample_rate: int | None = None) -> Decision:
        """Same speaker?  Accepted when :meth:`score` reaches ``threshold`` (an LLR when the
        model is calibrated), by default the calibration's ``threshold_llr``; without a
        calibration the threshold must be given."""
        self._need("verify")
        decide([], self.calibration, threshold, self.path)  # refuses before any audio is read
        result = self.score(a, b, sample_rate)
        accept, used = decide(np.array([result.value]), self.calibration, threshold, self.path)
        return Decision(bool(accept[0]), result.value, used, result.calibrated)

    # ---------------------------------------------------------------- cm
    def cm_score(self, audio: Audio | Sequence[Audio], sample_rate: int | None = None) -> float | np.ndarray:
        """Stage 4's bona fide score (higher = more bona fide) of one input, or ``(N,)`` of a list."""
        self._need("cm_score")
        out, single = self._one_or_many(audio, sample_rate)
        return float(out[0, 0]) if single else out[:, 0]

    # ---------------------------------------------------------------- cls
    def classify(self, audio: Audio | Sequence[Audio],
                 sample_rate: int | None = None) -> Classification | list[Classification]:
        """Stage 4's class posteriors and the most probable class, of one input or a list."""
        self._need("classify")
        out, single = self._one_or_many(audio, sample_rate)
        found = [self.classification(row) for row in out]
        return found[0] if single else found

    def classification(self, posteriors: np.ndarray) -> Classification:
        """A :class:`Classification` of one posterior vector."""
        names = self.classes or []
        return Classification(names[int(np.argmax(posteriors))], dict(zip(names, map(float, posteriors))))


def tasks_answering(command: str) -> str:
    """``a 'sv'`` / ``a 'cls' or 'cm'``: the tasks whose models answer an ``infer`` command."""
    names = [task.name for task in all_tasks() if command in task.infer_commands]
    return "a " + (" or ".join(f"'{n}'" for n in names) or "(no task's)")


def load(path: str | Path, checkpoint: str | None = None, device: str | torch.device = "cpu") -> TrainedModel:
    """Load an experiment directory or an exported package (see the module docstring)."""
    return TrainedModel(load_any(path, checkpoint, device))


__all__ = ["Classification", "Decision", "Score", "TrainedModel", "load"]
