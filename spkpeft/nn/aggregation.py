"""Layer aggregation: from the upstream's hidden states ``[h_0 .. h_L]`` to one feature sequence.

* ``weighted_sum`` (SUPERB): ``y = sum_l softmax(w)_l h_l``, ``w`` learnable, initialised to
  0 (uniform weights).
* ``attentive_merge``: the weights depend on the utterance.  Each layer is summarised by
  its masked time average ``e_l = (1/T_b) sum_{t < T_b} h_l[t]``; a bottleneck MLP shared by
  the layers scores every layer and channel, and a softmax over the layers gives
  per-channel layer weights::

      s_l = W_2 GELU(W_1 LN(e_l) + c_1) + c_2 + beta_l        (D -> A -> D, beta_l: layer bias)
      alpha_l = softmax over l of s_l                          (per utterance and channel)
      y[t] = sum_l alpha_l * h_l[t]

  (attentive merging of hidden embeddings, after Pan et al., 2024, anti-spoofing).

Both return ``(B, T, D)``; frames beyond each length are left as computed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn
from torch import Tensor

from spkpeft.registry import Registry, tagged_section

#: ``aggregation.type`` -> config and ``build(cfg, num_hidden, dim)``
AGGREGATIONS = Registry("aggregation", tag_key="type")


@tagged_section(AGGREGATIONS)
@dataclass
class AggregationConfig:
    """``aggregation:`` section, ``type: weighted_sum`` (no other key)."""

    type: str = "weighted_sum"


@dataclass
class AttentiveMergeConfig:
    """``aggregation.type: attentive_merge``."""

    type: str = "attentive_merge"
    attention_dim: int = field(default=128, metadata={"check": lambda v: None if v >= 1 else f"must be >= 1, got {v}"})


def masked_mean(h: Tensor, lengths: Tensor) -> Tensor:
    """Time average of ``h`` ``(B, T, D)`` over the first ``lengths[b]`` frames: ``(B, D)``."""
    valid = (torch.arange(h.shape[1], device=h.device)[None, :] < lengths[:, None]).to(h.dtype)
    return (h * valid[..., None]).sum(1) / valid.sum(1).clamp(min=1)[:, None]


class WeightedSum(nn.Module):
    """``y = sum_l softmax(w)_l h_l`` with ``w`` initialised to zeros."""

    def __init__(self, num_hidden: int) -> None:
        super().__init__()
        self.weights = nn.Parameter(torch.zeros(num_hidden))

    def forward(self, hidden: list[Tensor], lengths: Tensor) -> Tensor:
        stacked = torch.stack(hidden, dim=0)  # (L, B, T, D)
        alpha = torch.softmax(self.weights, dim=0)
        return (alpha.view(-1, 1, 1, 1) * stacked).sum(0)


class AttentiveMerge(nn.Module):
    """Utterance-dependent per-channel layer weights from the layers' pooled embeddings."""

    def __init__(self, num_hidden: int, dim: int, attention_dim: int = 128) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.score = nn.Sequential(nn.Linear(dim, attention_dim), nn.GELU(), nn.Linear(attention_dim, dim))
        self.layer_bias = nn.Parameter(torch.zeros(num_hidden, 1, dim))

    def layer_weights(self, hidden: list[Tensor], lengths: Tensor) -> Tensor:
        """``alpha``: ``(L, B, D)``, summing to 1 over the layers."""
        pooled = torch.stack([masked_mean(h, lengths) for h in hidden], dim=0)  # (L, B, D)
        scores = self.score(self.norm(pooled)) + self.layer_bias
        return torch.softmax(scores, dim=0)

    def forward(self, hidden: list[Tensor], lengths: Tensor) -> Tensor:
        alpha = self.layer_weights(hidden, lengths)
        return (alpha[:, :, None, :] * torch.stack(hidden, dim=0)).sum(0)


def build_aggregation(cfg, num_hidden: int, dim: int) -> nn.Module:
    """The aggregation module of ``cfg`` for ``num_hidden`` hidden states of size ``dim``."""
    return AGGREGATIONS.get(cfg.type).build(cfg, num_hidden, dim)


AGGREGATIONS.register("weighted_sum", AggregationConfig, lambda cfg, num_hidden, dim: WeightedSum(num_hidden),
                      description="softmax-weighted sum of all hidden states (SUPERB)")
AGGREGATIONS.register("attentive_merge", AttentiveMergeConfig,
                      lambda cfg, num_hidden, dim: AttentiveMerge(num_hidden, dim, cfg.attention_dim),
                      description="utterance-dependent per-channel layer weights")
