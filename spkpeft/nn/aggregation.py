"""Layer aggregation: from the upstream's hidden states ``[h_0 .. h_L]`` to one feature sequence.

* ``weighted_sum`` (SUPERB): ``y = sum_l softmax(w)_l h_l``, ``w`` learnable, initialised to
  0 (uniform weights).  ``(B, T, D)``.
* ``last``: the last hidden state ``h_L`` alone (no parameter): the linear probe of the
  PETL-AST study (Cappellazzo et al., arXiv 2312.03694), whose classifier reads the AST's
  final (layer-normalised) output.  ``(B, T, D)``.
* ``attentive_merge`` with ``merge: concat`` (default): attentive merging of hidden
  embeddings (AttM) of Pan et al., "Attentive Merging of Hidden Embeddings from
  Pre-trained Speech Model for Anti-spoofing Detection", Interspeech 2024
  (arXiv:2406.10283), see :class:`ConcatAttentiveMerge`.  One sigmoid weight per layer and
  utterance, the re-weighted layers concatenated along the channels and projected:
  ``(B, T, proj_dim)``.
* ``attentive_merge`` with ``merge: channel_sum``: this project's earlier per-channel variant
  (see :class:`AttentiveMerge`), kept unchanged (same parameter names, so its checkpoints
  load): per-channel layer weights from a softmax over the layers, weighted sum::

      s_l = W_2 GELU(W_1 LN(e_l) + c_1) + c_2 + beta_l        (D -> A -> D, beta_l: layer bias)
      alpha_l = softmax over l of s_l                          (per utterance and channel)
      y[t] = sum_l alpha_l * h_l[t]                            (B, T, D)

* ``pmfa``: partial multi-scale feature aggregation (Whisper-PMFA, Zhao et al., Interspeech
  2024, arXiv:2408.15585), see :class:`PartialMultiScale`: the outputs of a range of blocks
  concatenated along the features and layer-normalised, ``(B, T, (e - s + 1) D)``.

Utterance descriptors are masked time averages ``e_l = (1/T_b) sum_{t < T_b} h_l[t]``
(:func:`masked_mean`), so the frames beyond each length change nothing in the valid
frames' outputs; the padded frames of the output are left as computed.  Every module
exposes ``output_dim``, the feature size the head receives.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from spkpeft.errors import SpkpeftError
from spkpeft.registry import Registry, tagged_section

#: ``aggregation.type`` -> config and ``build(cfg, num_hidden, dim)``
AGGREGATIONS = Registry("aggregation", tag_key="type")
#: ``aggregation.merge`` of ``type: attentive_merge``
MERGES = ("concat", "channel_sum")


def _at_least(low: int):
    return lambda v: None if v >= low else f"must be >= {low}, got {v}"


@tagged_section(AGGREGATIONS)
@dataclass
class AggregationConfig:
    """``aggregation:`` section, ``type: weighted_sum`` or ``last`` (no other key)."""

    type: str = "weighted_sum"


@dataclass
class AttentiveMergeConfig:
    """``aggregation.type: attentive_merge``.

    * ``merge``: ``concat`` (Pan et al., 2024; :class:`ConcatAttentiveMerge`) or
      ``channel_sum`` (the earlier per-channel weighted sum; :class:`AttentiveMerge`).
    * ``attention_dim`` (``channel_sum`` only): bottleneck ``A`` of its scoring MLP.
    * ``reduction`` (``concat`` only): ``r`` of the layer bottleneck ``L -> max(1, L // r) -> L``
      (2, the authors' code).
    * ``proj_dim`` (``concat`` only): output size of the projection; 0 = the upstream's
      hidden size ``D`` (the authors' code projects back to ``D``).
    * ``proj_hidden`` (``concat`` only): hidden size of the two-layer projection; 0 =
      ``L D // 4`` (the authors' code).
    * ``include_input`` (``concat`` only): also merge ``h_0`` (the input of the first block);
      false (the authors' code merges the block outputs ``h_1 .. h_L`` only).
    """

    type: str = "attentive_merge"
    merge: str = field(default="concat", metadata={"choices": MERGES})
    attention_dim: int = field(default=128, metadata={"check": _at_least(1)})
    reduction: int = field(default=2, metadata={"check": _at_least(1)})
    proj_dim: int = field(default=0, metadata={"check": _at_least(0)})
    proj_hidden: int = field(default=0, metadata={"check": _at_least(0)})
    include_input: bool = False


@dataclass
class PMFAConfig:
    """``aggregation.type: pmfa``: hidden states ``first .. last`` (``h_i`` is the output of
    block ``i``, 1-based; 0 the first block's input; ``last: null`` the last hidden state).
    Whisper-PMFA on large-v2 (32 blocks): ``first: 17, last: 24`` (WeSpeaker's
    ``layer_st: 16, layer_ed: 23``, 0-based) with ``upstream.num_layers: 24``."""

    type: str = "pmfa"
    first: int = field(default=1, metadata={"check": _at_least(0)})
    last: int | None = field(default=None, metadata={"check": lambda v: None if v is None or v >= 0 else f"must be >= 0, got {v}"})


def masked_mean(h: Tensor, lengths: Tensor) -> Tensor:
    """Time average of ``h`` ``(B, T, D)`` over the first ``lengths[b]`` frames: ``(B, D)``."""
    valid = (torch.arange(h.shape[1], device=h.device)[None, :] < lengths[:, None]).to(h.dtype)
    return (h * valid[..., None]).sum(1) / valid.sum(1).clamp(min=1)[:, None]


class WeightedSum(nn.Module):
    """``y = sum_l softmax(w)_l h_l`` with ``w`` initialised to zeros (``output_dim = dim``)."""

    def __init__(self, num_hidden: int, dim: int | None = None) -> None:
        super().__init__()
        self.weights = nn.Parameter(torch.zeros(num_hidden))
        self.output_dim = dim

    def forward(self, hidden: list[Tensor], lengths: Tensor) -> Tensor:
        stacked = torch.stack(hidden, dim=0)  # (L, B, T, D)
        alpha = torch.softmax(self.weights, dim=0)
        return (alpha.view(-1, 1, 1, 1) * stacked).sum(0)


class LastHidden(nn.Module):
    """``y = h_L``: the last hidden state (``output_dim = dim``, no parameter)."""

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.output_dim = dim

    def forward(self, hidden: list[Tensor], lengths: Tensor) -> Tensor:
        return hidden[-1]


class AttentiveMerge(nn.Module):
    """``merge: channel_sum``: utterance-dependent per-channel layer weights from the layers'
    pooled embeddings, softmax over the layers, weighted sum (``output_dim = dim``)."""

    def __init__(self, num_hidden: int, dim: int, attention_dim: int = 128) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.score = nn.Sequential(nn.Linear(dim, attention_dim), nn.GELU(), nn.Linear(attention_dim, dim))
        self.layer_bias = nn.Parameter(torch.zeros(num_hidden, 1, dim))
        self.output_dim = dim

    def layer_weights(self, hidden: list[Tensor], lengths: Tensor) -> Tensor:
        """``alpha``: ``(L, B, D)``, summing to 1 over the layers."""
        pooled = torch.stack([masked_mean(h, lengths) for h in hidden], dim=0)  # (L, B, D)
        scores = self.score(self.norm(pooled)) + self.layer_bias
        return torch.softmax(scores, dim=0)

    def forward(self, hidden: list[Tensor], lengths: Tensor) -> Tensor:
        alpha = self.layer_weights(hidden, lengths)
        return (alpha[:, :, None, :] * torch.stack(hidden, dim=0)).sum(0)


class ConcatAttentiveMerge(nn.Module):
    """``merge: concat``: attentive merging (AttM) of Pan et al., Interspeech 2024, arXiv:2406.10283.

    For the merged hidden states ``h_1 .. h_L`` (each ``(B, T, D)``; ``h_0 .. h_L`` with
    ``include_input``) and valid lengths ``T_b``::

        e_l = (1/T_b) sum_{t < T_b} h_l[t]                  (B, L, D)   squeeze 1: time
        z_l = SiLU(u^T e_l)                                  (B, L)      squeeze 2: channels
        w   = sigmoid(W_2 SiLU(W_1 z))                       (B, L)      W_1: L -> max(1, L // r), W_2: back to L
        x[t] = [w_1 h_1[t], w_2 h_2[t], ..., w_L h_L[t]]     (B, T, L D) concatenation, layer-major
        y[t] = P_2 SiLU(P_1 x[t] + b_1) + b_2                (B, T, proj_dim)

    ``u`` (``D``), ``W_1``, ``W_2`` have no bias; ``P_1``: ``L D -> proj_hidden``, ``P_2``:
    ``proj_hidden -> proj_dim``.

    Source of the details.  The paper describes a two-step squeeze (time, then channels)
    followed by an SE-like attention over the layers; the values used here follow the
    authors' released code (github.com/pandarialTJU/AttM_INTERSPEECH24, ``model_file.py``,
    class ``AttM``), read, not copied: the channel squeeze is a learned vector ``u`` followed
    by Swish (SiLU) -- not a plain mean; the layer bottleneck has reduction ``r = 2`` with
    Swish between the two matrices and a **sigmoid** gate, i.e. independent weights in
    (0, 1) per layer (SE style: the layers are re-scaled, not forced to compete as a softmax
    would, since their concatenation keeps every layer's channels apart anyway); the
    projection is ``Linear(L D -> L D / 4) -> SiLU -> Linear(-> D)``, i.e. back to the
    upstream's hidden size (defaults ``proj_hidden = 0``, ``proj_dim = 0``); the CNN
    output ``h_0`` is not merged (``include_input: false``).

    Departures.  (1) The time average is masked (valid frames only; the reference averages
    over the padded crop), so a padded utterance gets the same weights as alone.  (2)
    Initialisation: ``u = 1/D`` (the squeeze starts as the channel mean, the description of
    the task's issue), ``W_1, W_2, P_1, P_2`` with PyTorch's default ``nn.Linear``
    initialisation (the reference draws ``u, W_1, W_2`` from N(0, 1)).  (3) The
    concatenation is layer-major (channel ``l D + d``; the reference interleaves ``d L + l``),
    a fixed permutation of ``P_1``'s inputs, equivalent for training from scratch.
    """

    def __init__(self, num_hidden: int, dim: int, reduction: int = 2, proj_dim: int = 0, proj_hidden: int = 0,
                 include_input: bool = False) -> None:
        super().__init__()
        self.first = 0 if include_input else 1
        layers = num_hidden - self.first
        if layers < 1:
            raise SpkpeftError(
                f"aggregation.merge concat needs at least one hidden state to merge: the upstream has "
                f"{num_hidden} and aggregation.include_input is false (set it to true)"
            )
        if reduction < 1 or proj_dim < 0 or proj_hidden < 0:
            raise SpkpeftError(f"aggregation: reduction must be >= 1 and proj_dim, proj_hidden >= 0, got "
                               f"{reduction}, {proj_dim}, {proj_hidden}")
        self.num_layers = layers
        self.output_dim = proj_dim or dim
        hidden = proj_hidden or max(1, layers * dim // 4)
        self.squeeze = nn.Linear(dim, 1, bias=False)
        nn.init.constant_(self.squeeze.weight, 1.0 / dim)
        self.excite = nn.Sequential(
            nn.Linear(layers, max(1, layers // reduction), bias=False),
            nn.SiLU(),
            nn.Linear(max(1, layers // reduction), layers, bias=False),
        )
        self.proj = nn.Sequential(nn.Linear(layers * dim, hidden), nn.SiLU(), nn.Linear(hidden, self.output_dim))

    def _merged(self, hidden: list[Tensor]) -> list[Tensor]:
        states = list(hidden[self.first:])
        if len(states) != self.num_layers:
            raise SpkpeftError(f"attentive merge built for {self.num_layers + self.first} hidden states, got {len(hidden)}")
        return states

    def layer_weights(self, hidden: list[Tensor], lengths: Tensor | None) -> Tensor:
        """``w``: ``(B, L)``, each in (0, 1) (sigmoid gate), one per merged layer and utterance."""
        states = self._merged(hidden)
        if lengths is None:
            lengths = torch.full((states[0].shape[0],), states[0].shape[1], device=states[0].device)
        pooled = torch.stack([masked_mean(h, lengths) for h in states], dim=1)  # (B, L, D)
        squeezed = F.silu(self.squeeze(pooled).squeeze(-1))  # (B, L)
        return torch.sigmoid(self.excite(squeezed))

    def forward(self, hidden: list[Tensor], lengths: Tensor | None) -> Tensor:
        weights = self.layer_weights(hidden, lengths)
        states = self._merged(hidden)
        merged = torch.cat([weights[:, i, None, None] * h for i, h in enumerate(states)], dim=-1)  # (B, T, L D)
        return self.proj(merged)


class PartialMultiScale(nn.Module):
    """Partial multi-scale feature aggregation (PMFA) of Whisper-PMFA (Zhao et al., "Whisper-PMFA:
    Partial Multi-Scale Feature Aggregation for Speaker Verification using Whisper Models",
    Interspeech 2024, arXiv:2408.15585)::

        y[t] = LayerNorm([h_s[t]; h_{s+1}[t]; ...; h_e[t]])        (B, T, (e - s + 1) D)

    one LayerNorm over the whole concatenation (learned gain and bias of ``(e - s + 1) D``,
    eps 1e-5, computed in float32).  Source of the details: the paper's equations (concat, then
    LayerNorm) and WeSpeaker's ``wespeaker/frontend/whisper_encoder.py`` (read, not copied:
    ``ln_post2 = LayerNorm(n_state * (layer_ed - layer_st + 1))`` over the concatenated raw
    outputs of blocks ``layer_st .. layer_ed``, the encoder's own final LayerNorm unused, the
    blocks after ``layer_ed`` not built: ``num_blocks: 24`` of large-v2's 32).  With
    ``upstream.num_layers`` set to ``last`` our hidden states are exactly those raw outputs;
    when ``last`` is an untruncated encoder's last block, ``h_L`` carries the encoder's final
    LayerNorm (as every family's last hidden state does).  WeSpeaker's head on top (attentive
    statistics pooling, BatchNorm, a linear layer to 192) is ``head: {type: pooled, pooling:
    asp, embed_dim: 192}``.
    """

    def __init__(self, num_hidden: int, dim: int, first: int = 1, last: int | None = None) -> None:
        super().__init__()
        last = num_hidden - 1 if last is None else last
        if not 0 <= first <= last <= num_hidden - 1:
            raise SpkpeftError(f"aggregation pmfa: blocks first={first} .. last={last} must satisfy 0 <= first <= last "
                               f"<= {num_hidden - 1} (the upstream's number of blocks)")
        self.first, self.last = first, last
        self.output_dim = (last - first + 1) * dim
        self.norm = nn.LayerNorm(self.output_dim)

    def forward(self, hidden: list[Tensor], lengths: Tensor | None = None) -> Tensor:
        merged = torch.cat(hidden[self.first: self.last + 1], dim=-1)
        return self.norm(merged.float()).to(merged.dtype)


def build_attentive_merge(cfg: AttentiveMergeConfig, num_hidden: int, dim: int) -> nn.Module:
    if cfg.merge == "channel_sum":
        return AttentiveMerge(num_hidden, dim, cfg.attention_dim)
    if cfg.merge == "concat":
        return ConcatAttentiveMerge(num_hidden, dim, cfg.reduction, cfg.proj_dim, cfg.proj_hidden, cfg.include_input)
    raise SpkpeftError(f"aggregation.merge must be one of: {', '.join(MERGES)}; got {cfg.merge!r}")


def build_aggregation(cfg, num_hidden: int, dim: int) -> nn.Module:
    """The aggregation module of ``cfg`` for ``num_hidden`` hidden states of size ``dim``
    (its ``output_dim``: the feature size it passes to the head)."""
    return AGGREGATIONS.get(cfg.type).build(cfg, num_hidden, dim)


AGGREGATIONS.register("weighted_sum", AggregationConfig, lambda cfg, num_hidden, dim: WeightedSum(num_hidden, dim),
                      description="softmax-weighted sum of all hidden states (SUPERB)")
AGGREGATIONS.register("attentive_merge", AttentiveMergeConfig, build_attentive_merge,
                      description="attentive merging of hidden embeddings (Pan et al., 2024): sigmoid layer "
                                  "weights, concatenation, projection (merge: concat; channel_sum: per-channel sum)")
AGGREGATIONS.register("last", AggregationConfig, lambda cfg, num_hidden, dim: LastHidden(dim),
                      description="the last hidden state (no parameter)")
AGGREGATIONS.register("pmfa", PMFAConfig, lambda cfg, num_hidden, dim: PartialMultiScale(num_hidden, dim, cfg.first, cfg.last),
                      description="partial multi-scale feature aggregation (Whisper-PMFA, Zhao et al., 2024): a range "
                                  "of blocks concatenated and layer-normalised")
