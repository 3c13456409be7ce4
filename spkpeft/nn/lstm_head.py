"""LSTM back-end (``head.type: lstm``) of AttM-LSTM (Pan et al., "Attentive Merging of
Hidden Embeddings from Pre-trained Speech Model for Anti-spoofing Detection", Interspeech
2024, arXiv:2406.10283).

Frame features ``h (B, T, D)`` (the attentive merge's output) and valid lengths ``T_b``::

    o_1 .. o_{T_b} = LSTM(h[:T_b])              (hidden_size, x2 if bidirectional)
    embedding      = (1/T_b) sum_{t <= T_b} o_t   (B, embed_dim)

The paper's back-end is one unidirectional LSTM layer with 192 hidden units whose outputs
are averaged over time (the defaults here; cf. the authors' code,
github.com/pandarialTJU/AttM_INTERSPEECH24, ``model_file.py``, ``my_LSTM``); its
``Linear(192 -> 2)`` output layer is the ``cm`` task's classifier on top of this head.

Padding (departure: the reference averages over the whole padded crop).  The sequences
are packed (``pack_padded_sequence``), so the LSTM never reads a padded frame (a
backward direction starts at each sequence's own last valid frame) and the mean runs over
the valid steps only: a padded utterance gives the same embedding alone and in a batch.
``lengths=None`` means every frame is valid.  On an accelerator a unidirectional LSTM runs
on the padded batch as it is (its output at step ``t`` reads frames ``<= t`` only, so the
valid steps never see padding) and the mean is masked: ``pack_padded_sequence`` takes its
lengths on the host, and reading them would make every forward wait for the device.  A
bidirectional one still packs (its backward direction must start at each sequence's end).
``dropout`` is nn.LSTM's dropout between
stacked layers, so it needs ``num_layers >= 2``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from spkpeft.errors import SpkpeftError
from spkpeft.nn.heads import HEADS, frame_mask, host_reads_are_cheap


def _positive(v) -> str | None:
    return None if v >= 1 else f"must be >= 1, got {v}"


def _probability(v) -> str | None:
    return None if 0.0 <= v < 1.0 else f"must be in [0, 1), got {v}"


@dataclass
class LSTMConfig:
    """``head.type: lstm`` (defaults: the paper's back-end)."""

    type: str = "lstm"
    hidden_size: int = field(default=192, metadata={"check": _positive})
    num_layers: int = field(default=1, metadata={"check": _positive})
    bidirectional: bool = False
    dropout: float = field(default=0.0, metadata={"check": _probability})


def validate_lstm_config(cfg: LSTMConfig) -> None:
    """Every field's check (as the config reader runs them) and ``dropout`` needing
    ``num_layers >= 2``; raise naming ``head.<key>``."""
    for fld in dataclasses.fields(cfg):
        check = fld.metadata.get("check")
        problem = check(getattr(cfg, fld.name)) if check is not None else None
        if problem:
            raise SpkpeftError(f"head.{fld.name} {problem}.")
    if cfg.dropout > 0 and cfg.num_layers < 2:
        raise SpkpeftError(
            f"head.dropout must be 0 with head.num_layers {cfg.num_layers}: the LSTM applies it "
            f"between stacked layers only, got {cfg.dropout}."
        )


class LSTMHead(nn.Module):
    """``forward(feats (B, T, D), lengths (B,) or None) -> (B, embed_dim)`` (see the module docstring)."""

    def __init__(self, cfg: LSTMConfig, feat_dim: int) -> None:
        super().__init__()
        validate_lstm_config(cfg)
        self.lstm = nn.LSTM(feat_dim, cfg.hidden_size, num_layers=cfg.num_layers, batch_first=True,
                            bidirectional=cfg.bidirectional, dropout=cfg.dropout)
        self.embed_dim = cfg.hidden_size * (2 if cfg.bidirectional else 1)

    def forward(self, feats: Tensor, lengths: Tensor | None = None) -> Tensor:
        batch, frames = feats.shape[:2]
        if lengths is None:
            lengths = torch.full((batch,), frames, dtype=torch.long, device=feats.device)
        if not host_reads_are_cheap(feats.device) and not self.lstm.bidirectional:
            lengths = lengths.to(feats.device, torch.long).clamp(1, frames)
            out, _ = self.lstm(feats)
            out = out * frame_mask(lengths, frames).unsqueeze(-1).to(out.dtype)
            return out.sum(1) / lengths.to(out.dtype)[:, None]
        lengths = lengths.detach().to("cpu", torch.long).clamp(1, frames)
        packed = pack_padded_sequence(feats, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=frames)  # zeros beyond each length
        return out.sum(1) / lengths.to(out.device, out.dtype)[:, None]


HEADS.register("lstm", LSTMConfig, lambda cfg, feat_dim: LSTMHead(cfg, feat_dim),
               description="LSTM back-end averaged over valid frames (AttM-LSTM, Pan et al., 2024)")
