"""Pooling heads: one vector per utterance straight from the aggregated hidden states.

``head.type: pooled`` maps frame features ``(B, T, D)`` and lengths ``(B,)`` to

* ``pooling: mean``: the masked time average ``(1/T_b) sum_{t < T_b} h_t`` (``D`` values), or
* ``pooling: asp``: attentive statistics pooling (the attention-weighted mean and standard
  deviation of :class:`~spkpeft.nn.heads.AttentiveStatsPool`, ``2 D`` values),

optionally followed by dropout, and with ``embed_dim > 0`` by ``BatchNorm1d`` and a linear
layer to ``embed_dim`` values (the head of WeSpeaker's Whisper-PMFA: ASTP, BN, FC to 192;
``wespeaker/models/whisper_PMFA.py``).  With the ``cls`` task's classification layer on top
this is the pooled linear classifier of the SUPERB / PETL studies (mean of all tokens).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor, nn

from spkpeft.nn.heads import HEADS, AttentiveStatsPool, channels_first_masked, masked_mean


@dataclass
class PooledConfig:
    """``head.type: pooled``."""

    type: str = "pooled"
    pooling: str = field(default="mean", metadata={"choices": ("mean", "asp")})
    attention_channels: int = field(default=128, metadata={"check": lambda v: None if v >= 1 else f"must be >= 1, got {v}"})
    dropout: float = field(default=0.0, metadata={"check": lambda v: None if 0.0 <= v < 1.0 else f"must be in [0, 1), got {v}"})
    embed_dim: int = field(default=0, metadata={"check": lambda v: None if v >= 0 else f"must be >= 0, got {v}"})


class PooledHead(nn.Module):
    """``forward(feats (B, T, D), lengths (B,)) -> (B, embed_dim)`` (see the module docstring)."""

    def __init__(self, cfg: PooledConfig, feat_dim: int) -> None:
        super().__init__()
        self.pooling = cfg.pooling
        self.attentive = AttentiveStatsPool(feat_dim, cfg.attention_channels) if cfg.pooling == "asp" else None
        self.dropout = nn.Dropout(cfg.dropout) if cfg.dropout > 0 else nn.Identity()
        pooled_dim = 2 * feat_dim if cfg.pooling == "asp" else feat_dim
        self.project = None
        if cfg.embed_dim > 0:
            self.project = nn.Sequential(nn.BatchNorm1d(pooled_dim), nn.Linear(pooled_dim, cfg.embed_dim))
        self.embed_dim = cfg.embed_dim or pooled_dim

    def forward(self, feats: Tensor, lengths: Tensor | None = None) -> Tensor:
        x, mask = channels_first_masked(feats, lengths)  # (B, D, T)
        pooled = self.attentive(x, mask) if self.attentive is not None else masked_mean(x, mask)
        pooled = self.dropout(pooled)
        return self.project(pooled) if self.project is not None else pooled


HEADS.register("pooled", PooledConfig, lambda cfg, feat_dim: PooledHead(cfg, feat_dim),
               description="mean or attentive statistics pooling of the aggregated hidden states")
