"""The Audio Spectrogram Transformer family (``upstream.type: ast``), on Hugging Face
``transformers``' ``ASTModel`` (Gong et al., "AST: Audio Spectrogram Transformer",
Interspeech 2021, arXiv 2104.01778).

``upstream.name``: a local model directory, a hub id (``MIT/ast-finetuned-audioset-10-10-0.4593``,
downloaded when the model is built) or ``random:ast_base`` / ``random:tiny_ast``
(:data:`~spkpeft.upstream.ast.sources.ARCHS`).  Keys besides ``type``, ``name`` and
``num_layers``:

* ``max_length``: input frames (10 ms each); null = the checkpoint's (1024 for AudioSet);
  the position embeddings are cropped or interpolated to it
  (:mod:`~spkpeft.upstream.ast.positions`);
* ``output``: ``tokens`` | ``cls`` | ``cls_dist`` | ``frames`` (:mod:`~spkpeft.upstream.ast.model`);
* ``specaugment``: ``{freq_mask, time_mask}``, maximum mask widths while training (0: none).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from spkpeft.upstream.ast.features import SpecAugmentConfig
from spkpeft.upstream.ast.model import OUTPUTS, AstUpstream
from spkpeft.upstream.ast.sources import ARCHS
from spkpeft.upstream.base import register_family


def _positive_or_null(value: int | None) -> str | None:
    return None if value is None or value > 0 else f"must be > 0, got {value}"


@dataclass
class AstConfig:
    """``upstream.type: ast`` (see the module docstring)."""

    type: str = "ast"
    name: str = "MIT/ast-finetuned-audioset-10-10-0.4593"
    num_layers: int | None = field(default=None, metadata={"check": _positive_or_null})
    max_length: int | None = field(default=None, metadata={"check": _positive_or_null})
    output: str = field(default="tokens", metadata={"choices": OUTPUTS})
    specaugment: SpecAugmentConfig = field(default_factory=SpecAugmentConfig)


def load_ast(name: str, num_layers: int | None = None, max_length: int | None = None, output: str = "tokens",
             specaugment: SpecAugmentConfig | None = None) -> AstUpstream:
    """The AST upstream ``name`` (see :class:`AstConfig` for the arguments)."""
    return AstUpstream.load(name, num_layers, max_length, output, specaugment)


register_family("ast", AstConfig, AstUpstream, description="Audio Spectrogram Transformer via transformers")

__all__ = ["ARCHS", "AstConfig", "AstUpstream", "load_ast"]
