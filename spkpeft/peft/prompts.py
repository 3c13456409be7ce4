"""Prompt tuning (deep / shallow) and prefix tuning with zero-initialised gated attention.

Prompt tuning: ``P`` learned tokens are prepended to the input of every block ("deep",
fresh tokens per block, the previous block's prompt outputs discarded) or of the first
block only ("shallow", the tokens then flow through all blocks).  Their outputs are
removed from every hidden state, and the frame lengths are those of the real frames.

Prefix tuning (Li & Liang, 2021): each selected block gets ``P`` learned keys and values
per head, used by its self-attention in addition to the frames' own keys/values.

Exact identity at initialisation.  With a joint softmax over ``[extra keys; frame keys]``
any extra key changes the normalisation of the frames' attention, so a plain prompt or
prefix can never leave the model unchanged.  Both methods therefore use the zero-init
gated attention of LLaMA-Adapter (Zhang et al., 2023): the extra keys get their own
softmax whose output is scaled by a learnable per-head gate ``g`` initialised to 0
(:mod:`spkpeft.upstream.attention`)::

    out_h = softmax(q_h K_h^T + bias) V_h  +  g_h * softmax(q_h E_h^T) U_h

At ``g = 0`` the frames attend exactly as in the bare model (bit-identical outputs); the
gradient with respect to ``g_h`` is ``softmax(q_h E_h^T) U_h`` (non-zero), so the gates
open at the first step and the tokens/prefixes receive gradients from then on.  WavLM's
relative position bias is computed over the real frames only (prompts carry no
position), so relative distances between frames are untouched by the prepended tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn
from torch import Tensor

from spkpeft.peft.base import (
    LayerSpec,
    MethodSpec,
    PeftConfig,
    layers_field,
    non_negative,
    positive_field,
    register_method,
    select_layers,
)
from spkpeft.upstream.attention import ExtraKV


@dataclass
class PromptConfig(PeftConfig):
    """``peft.method: prompt``."""

    method: str = "prompt"
    num_tokens: int = positive_field(20)
    deep: bool = True
    init_std: float = field(default=0.02, metadata={"check": non_negative})


@dataclass
class PrefixConfig(PeftConfig):
    """``peft.method: prefix``."""

    method: str = "prefix"
    length: int = positive_field(16)
    init_std: float = field(default=0.02, metadata={"check": non_negative})
    layers: LayerSpec = layers_field()


class PromptTokens(nn.Module):
    """Learned prompt tokens ``(L or 1, P, D)`` and per-block attention gates ``(L, H)`` (zeros)."""

    def __init__(self, num_layers: int, num_tokens: int, dim: int, num_heads: int, deep: bool, init_std: float) -> None:
        super().__init__()
        self.deep = deep
        self.num_tokens = num_tokens
        self.prompt = nn.Parameter(torch.randn(num_layers if deep else 1, num_tokens, dim) * init_std)
        self.gates = nn.Parameter(torch.zeros(num_layers, num_heads))

    def tokens(self, layer: int, batch: int) -> Tensor:
        """Time-first prompt tokens for block ``layer``: ``(P, B, D)``."""
        return self.prompt[layer if self.deep else 0].unsqueeze(1).expand(-1, batch, -1)

    def gate(self, layer: int) -> Tensor:
        """Per-head gate of block ``layer``: ``(H,)``."""
        return self.gates[layer]


class KeyValuePrefix(nn.Module):
    """Learned keys/values ``(P, D)`` of one block and its per-head gate ``(H,)`` (zeros)."""

    def __init__(self, length: int, dim: int, num_heads: int, init_std: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.keys = nn.Parameter(torch.randn(length, dim) * init_std)
        self.values = nn.Parameter(torch.randn(length, dim) * init_std)
        self.gate = nn.Parameter(torch.zeros(num_heads))

    def _heads(self, x: Tensor) -> Tensor:
        length, dim = x.shape
        return x.view(length, self.num_heads, dim // self.num_heads).transpose(0, 1).unsqueeze(0)  # (1, H, P, d)

    def extra_kv(self, batch: int) -> ExtraKV:
        """The prefix as an extra gated key/value group (broadcast over the batch)."""
        return ExtraKV(self._heads(self.keys), self._heads(self.values), self.gate)


def apply_prompt(upstream: nn.Module, cfg: PromptConfig) -> list[nn.Module]:
    """Attach :class:`PromptTokens` to the upstream's block loop."""
    upstream.prompts = PromptTokens(
        upstream.num_layers, cfg.num_tokens, upstream.hidden_dim, upstream.num_heads, cfg.deep, cfg.init_std
    )
    return [upstream.prompts]


def apply_prefix(upstream: nn.Module, cfg: PrefixConfig) -> list[nn.Module]:
    """Give each selected block a :class:`KeyValuePrefix`."""
    added = []
    for index in select_layers(cfg.layers, upstream.num_layers):
        prefix = KeyValuePrefix(cfg.length, upstream.hidden_dim, upstream.num_heads, cfg.init_std)
        upstream.layer_ext[index].kv_prefix = prefix
        added.append(prefix)
    return added


register_method(MethodSpec("prompt", PromptConfig, apply_prompt, description="deep / shallow prompt tuning (gated)"))
register_method(MethodSpec("prefix", PrefixConfig, apply_prefix, description="prefix tuning (gated)"))
