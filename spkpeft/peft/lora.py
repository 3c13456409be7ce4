"""LoRA: low-rank updates of chosen projections (Hu et al., 2021).

For a frozen ``nn.Linear`` ``y = W x + b`` (``W``: ``out x in``)::

    y = W x + b + (alpha / r) * B A dropout(x),   A: r x in (Kaiming-uniform),  B: out x r (zeros)

so the model is unchanged at initialisation.  Merging folds the update into the weight,
``W <- W + (alpha / r) B A``, which gives the same outputs without the extra path.
Default (``conf/lora.yaml``): rank 16 on ``q`` and ``v`` of every block, as in the
wav2vec 2.0 fake-audio-detection LoRA study; trainable parameters per adapted matrix:
``r * (in + out)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn
from torch import Tensor

from spkpeft.errors import SpkpeftError
from spkpeft.peft.base import (
    LayerSpec,
    Mergeable,
    PeftConfig,
    dropout_rate,
    layers_field,
    positive_field,
    register_method,
    select_layers,
)
from spkpeft.upstream.base import TARGET_CHOICES, UpstreamBase, expand_roles


@dataclass
class LoRAConfig(PeftConfig):
    """``peft.method: lora``."""

    method: str = "lora"
    rank: int = positive_field(16)
    alpha: float = positive_field(32.0)
    dropout: float = field(default=0.05, metadata={"check": dropout_rate})
    targets: list[str] = field(default_factory=lambda: ["q", "v"], metadata={"choices": TARGET_CHOICES})
    layers: LayerSpec = layers_field()


class MergeableDelta(Mergeable):
    """Merging for a wrapped linear ``self.base`` whose method adds ``self.delta_weight()``
    to its weight: ``merge`` folds the delta in (the forward then skips the method's path),
    ``unmerge`` takes it out again; ``self.merged`` records the state; unloaded, the merged
    plain linear replaces the wrapper."""

    @torch.no_grad()
    def merge(self) -> None:
        """``W <- W + delta``."""
        if not self.merged:
            self.base.weight += self.delta_weight()
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Undo :meth:`merge`."""
        if self.merged:
            self.base.weight -= self.delta_weight()
            self.merged = False

    def unloaded(self) -> nn.Module:
        """The wrapped ``nn.Linear`` with the delta merged into its weight."""
        self.merge()
        return self.base


class LoRALinear(MergeableDelta, nn.Module):
    """``base(x) + (alpha / r) * B(A(dropout(x)))`` around a frozen ``nn.Linear`` (see module doc)."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float = 0.0) -> None:
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise SpkpeftError(f"LoRA needs an nn.Linear, got {type(base).__name__}")
        if rank < 1:
            raise SpkpeftError(f"LoRA rank must be >= 1, got {rank}")
        self.base = base
        self.rank = rank
        self.scaling = alpha / rank
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features, device=base.weight.device, dtype=base.weight.dtype))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank, device=base.weight.device, dtype=base.weight.dtype))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.merged = False

    @property
    def weight(self) -> Tensor:
        """The base weight (merged or not; see :attr:`merged`)."""
        return self.base.weight

    @property
    def bias(self) -> Tensor | None:
        return self.base.bias

    def delta_weight(self) -> Tensor:
        """``(alpha / r) * B A`` (``out x in``)."""
        return (self.lora_B @ self.lora_A) * self.scaling

    def forward(self, x: Tensor) -> Tensor:
        y = self.base(x)
        if self.merged:
            return y
        return y + (self.dropout(x) @ self.lora_A.t() @ self.lora_B.t()) * self.scaling


def wrap_linears(upstream: UpstreamBase, targets: list[str], layers: LayerSpec, make) -> list[nn.Module]:
    """Replace the ``targets`` projections of the selected blocks by ``make(linear)``; return the wrappers."""
    added = []
    for index in select_layers(layers, upstream.num_layers):
        for role in expand_roles(targets):
            module = make(upstream.projection(index, role))
            upstream.set_projection(index, role, module)
            added.append(module)
    return added


def apply_lora(upstream: nn.Module, cfg: LoRAConfig) -> list[nn.Module]:
    """Wrap the configured projections in :class:`LoRALinear`."""
    return wrap_linears(upstream, cfg.targets, cfg.layers, lambda lin: LoRALinear(lin, cfg.rank, cfg.alpha, cfg.dropout))


register_method("lora", LoRAConfig, apply_lora, description="LoRA on chosen projections", averageable=False)
