"""What stage 4 computes per chunk for each task, as one module ``forward(wavs, wav_lens) -> (B, D)``."""

from __future__ import annotations

from torch import nn

from spkpeft.errors import SpkpeftError
from spkpeft.tasks.cls.task import Posteriors
from spkpeft.tasks.cm.task import BonafideScore


def stage4_module(task: str, model: nn.Module) -> nn.Module:
    """The model itself (``sv``: embeddings), its bona fide score (``cm``: ``(B, 1)``, higher =
    more bona fide) or its class posteriors (``cls``), as :meth:`Task.infer` writes them."""
    wrappers = {"sv": lambda m: m, "cm": BonafideScore, "cls": Posteriors}
    if task not in wrappers:
        raise SpkpeftError(f"task '{task}' has no inference output here (expected one of: {', '.join(wrappers)})")
    return wrappers[task](model)
