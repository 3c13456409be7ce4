"""AASIST graph-attention back-end (``head.type: aasist``), as used in SSL-AASIST.

Sources.  AASIST: J.-w. Jung, H.-S. Heo, H. Tak, H.-j. Shim, J. S. Chung, B.-J. Lee,
H.-J. Yu and N. Evans, "AASIST: Audio anti-spoofing using integrated spectro-temporal
graph attention networks", ICASSP 2022 (reference code: github.com/clovaai/aasist,
``models/AASIST.py``).  SSL-AASIST: H. Tak, M. Todisco, X. Wang, J.-w. Jung,
J. Yamagishi and N. Evans, "Automatic speaker verification spoofing and deepfake
detection using wav2vec 2.0 and data augmentation", Odyssey 2022 (reference code:
github.com/TakHemlata/SSL_Anti-spoofing, ``model.py``), which feeds the AASIST graph
back-end with wav2vec 2.0 / XLS-R frame features instead of sinc-filter outputs.
The architecture and every default value below follow the SSL-AASIST ``model.py``.

Architecture.  Input ``h (B, T, D)`` (SSL frames) and valid lengths ``(B,)``; ``P =
proj_dim``, ``C = filters[-1][1]``, ``(G_1, G_2) = gat_dims``, ``tau = temperatures``,
``r = pool_ratios``.

1. Projection ``Linear(D -> P)``; the frames are laid out as a one-channel image
   ``(1, P, T)`` (height: projected dimension, "spectral"; width: time), max-pooled
   3x3 (stride 3) to ``(1, F, T')`` with ``F = P // 3`` (42 for P=128) and ``T' =
   ceil(T / 3)``, then BN -> SELU.
2. Residual encoder, one block per ``filters`` pair ``[c_in, c_out]``:
   ``y = Conv(2x3, pad (0,1))(SELU(BN(Conv(2x3, pad (1,1))(a))))`` plus the identity
   (a ``Conv(1x3)`` when ``c_in != c_out``); the spatial size is kept (no max-pool in
   SSL-AASIST's blocks).  Then BN -> SELU: ``x (B, C, F, T')``.
3. Node sets (SSL-AASIST's self-attention, not AASIST's ``max |x|``): an attention map
   ``w = Conv1x1(BN(SELU(Conv1x1(x))))`` (``C -> attention_channels -> C``);
   spectral nodes ``e_S[f] = sum_t softmax_t(w)[:, f, t] x[:, f, t] + pos_S[f]`` (F
   nodes, learnt positional embedding ``pos_S``), temporal nodes ``e_T[t] = sum_f
   softmax_f(w)[:, f, t] x[:, f, t]`` (T' nodes), each node a C-vector.
4. Graph attention layer (GAL), for the spectral graph (``tau_0``) and the temporal
   graph (``tau_1``), ``C -> G_1``:

       a_ij  = softmax_j( w^T tanh(W_a (x_i (.) x_j) + b_a) / tau )
       x'_i  = SELU(BN( W_1 sum_j a_ij x_j + W_2 x_i + b ))

   (``(.)``: element-wise product; dropout ``gat_dropout`` on the layer input).
5. Graph pooling: score ``s_i = sigmoid(p^T dropout(x_i) + c)``, keep the ``k =
   max(floor(r N), 1)`` best-scored of the N nodes, each scaled by its score
   (``r_0`` spectral, ``r_1`` temporal).
6. Two parallel branches of heterogeneous stacking graph attention (HS-GAL), each
   with its own learnt master node ``m`` (a G_1-vector).  One HS-GAL layer maps the
   temporal nodes with ``W_T``, the spectral ones with ``W_S`` (both square), joins them
   into one graph and, with ``u_ij = tanh(W_a (x_i (.) x_j) + b_a)`` and a weight vector
   chosen by the node types (``w_TT``, ``w_SS``, ``w_TS`` for both mixed pairs),

       a_ij = softmax_j( w_type(i,j)^T u_ij / tau ),  x'_i = SELU(BN(W_1 sum_j a_ij x_j + W_2 x_i + b))
       b_j  = softmax_j( w_M^T tanh(W_M (x_j (.) m) + b_M) / tau ),  m' = W_3 sum_j b_j x_j + W_4 m + b'

   A branch is ``HS-GAL_1`` (``G_1 -> G_2``) -> graph pooling of its spectral and
   temporal nodes (both ``r_2``) -> ``HS-GAL_2`` (``G_2 -> G_2``) added to its input
   (nodes and master); all HS-GAL layers use ``tau_2``.  As in both references,
   ``r_3`` and ``tau_3`` are read by no layer (the four-value lists are kept so that the
   reference configurations are accepted unchanged).  The two branches are merged by an
   element-wise maximum (nodes slot by slot, and masters), after dropout ``branch_dropout``.
7. Readout: ``[max_i |T_i|, mean_i T_i, max_i |S_i|, mean_i S_i, m]`` -> ``5 G_2``
   values (160 for the defaults), then dropout ``readout_dropout``.  The task's
   ``Linear(5 G_2 -> 2)`` on top plays the reference's output layer.

Padding (departure: the reference trains on fixed 4 s crops and masks nothing).  Padded
frames are zeroed before every convolution (the 2x3 convolutions' time padding is zero,
so a padded batch sees the same neighbourhood as a lone utterance); the 3x3 max-pool
treats padded frames as ``-inf`` and the valid length becomes ``ceil(L / 3)``; the
softmax over time (spectral nodes) and the graph attentions ignore padded frames/nodes;
temporal graph pooling keeps ``k_b = max(floor(r n_b), 1)`` nodes where ``n_b`` is the
utterance's own number of valid nodes (padded nodes get score ``-inf`` before the top-k;
the batch keeps ``max_b k_b`` slots and masks the rest), i.e. exactly what the utterance
would keep alone; readout maxima and means run over valid nodes only.  In training mode
every BatchNorm takes its statistics from valid frames/nodes only.  Hence in eval mode an
utterance gets the same output alone and inside a padded batch.

Other departures.  (i) Time pooling uses ``ceil`` instead of the reference's ``floor``
(an utterance of fewer than 3 frames still yields a node); when ``T`` is a multiple of 3
both agree.  (ii) The reference's residual block computes ``BN -> SELU`` of its input
for every non-first block but then convolves the raw input (``conv1(x)``, in both
reference repositories), so that BN is dead weight; by default (``encoder_preactivation:
false``) this module reproduces the reference's computation and omits the dead BN (512
parameters with the default filters); ``encoder_preactivation: true`` applies it (the
evident intent; same parameter count as the reference).  Apart from (i), (ii) and the
padding rules, a default head computes what the reference computes: loaded with the
reference's weights it gives the same eval-mode logits to float rounding on unpadded
input with ``T`` a multiple of 3.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spkpeft.errors import SpkpeftError
from spkpeft.nn.heads import (HEADS, broadcast_mask, channels_first_masked, frame_mask, host_reads_are_cheap,
                              masked_batch_norm)

#: the frame pooling of step 1: kernel and stride 3 on both axes (SSL-AASIST ``max_pool2d(x, (3, 3))``)
FIRST_POOL = 3


# ----------------------------------------------------------------------------
# configuration


def _check_filters(value: list[list[int]]) -> str | None:
    if not value or any(len(pair) != 2 or min(pair) < 1 for pair in value):
        return f"must be a non-empty list of [in, out] channel pairs >= 1, got {value!r}"
    if value[0][0] != 1:
        return f"must start from 1 input channel (the projected frames), got {value[0][0]}"
    for prev, cur in zip(value, value[1:]):
        if cur[0] != prev[1]:
            return f"must chain (each block's input = the previous block's output), got {value!r}"
    return None


def _check_count(n: int, upper: float | None = None) -> Callable[[list], str | None]:
    """Validator of a list of ``n`` numbers, each > 0 (and <= ``upper`` when given)."""

    def check(value: list) -> str | None:
        ok = len(value) == n and all(v > 0 and (upper is None or v <= upper) for v in value)
        bound = f"in (0, {upper}]" if upper is not None else "> 0"
        return None if ok else f"must be a list of {n} values {bound}, got {value!r}"

    return check


def _at_least(minimum: int) -> Callable[[int], str | None]:
    return lambda v: None if v >= minimum else f"must be >= {minimum}, got {v}"


def _probability(v: float) -> str | None:
    return None if 0.0 <= v < 1.0 else f"must be in [0, 1), got {v}"


@dataclass
class AasistConfig:
    """``head.type: aasist``; defaults: SSL-AASIST ``model.py`` (``Model.__init__``).

    * ``proj_dim``: the ``LL = Linear(1024, 128)`` after the SSL model (P = 128); the
      spectral graph has ``P // 3`` nodes (42, the reference's ``pos_S`` size).
    * ``filters``: the six encoder blocks, ``filts[1..4]`` with ``filts[4]`` repeated
      three times: ``[1,32], [32,32], [32,64], [64,64] x 3``.
    * ``encoder_preactivation``: see departure (ii) of the module docstring.
    * ``attention_channels``: hidden width of the node attention map (``Conv2d(64, 128, 1)``).
    * ``gat_dims = [64, 32]``, ``pool_ratios = [0.5] * 4``, ``temperatures = [2, 2, 100, 100]``
      (indices: see steps 4-6 of the module docstring; index 3 is unused, as in the reference).
    * dropouts: ``gat_dropout = 0.2`` (GAL/HS-GAL ``input_drop``), ``pool_dropout = 0.3``
      (``GraphPool(..., 0.3)``), ``branch_dropout = 0.2`` (``drop_way``),
      ``readout_dropout = 0.5`` (``drop`` before the output layer).
    """

    type: str = "aasist"
    proj_dim: int = field(default=128, metadata={"check": _at_least(FIRST_POOL)})
    filters: list[list[int]] = field(
        default_factory=lambda: [[1, 32], [32, 32], [32, 64], [64, 64], [64, 64], [64, 64]],
        metadata={"check": _check_filters},
    )
    encoder_preactivation: bool = False
    attention_channels: int = field(default=128, metadata={"check": _at_least(1)})
    gat_dims: list[int] = field(default_factory=lambda: [64, 32], metadata={"check": _check_count(2)})
    pool_ratios: list[float] = field(
        default_factory=lambda: [0.5, 0.5, 0.5, 0.5], metadata={"check": _check_count(4, upper=1.0)}
    )
    temperatures: list[float] = field(
        default_factory=lambda: [2.0, 2.0, 100.0, 100.0], metadata={"check": _check_count(4)}
    )
    gat_dropout: float = field(default=0.2, metadata={"check": _probability})
    pool_dropout: float = field(default=0.3, metadata={"check": _probability})
    branch_dropout: float = field(default=0.2, metadata={"check": _probability})
    readout_dropout: float = field(default=0.5, metadata={"check": _probability})


def validate_aasist_config(cfg: AasistConfig) -> None:
    """Run every field's check (as the config reader does); raise naming ``head.<key>``."""
    for fld in dataclasses.fields(cfg):
        check = fld.metadata.get("check")
        problem = check(getattr(cfg, fld.name)) if check is not None else None
        if problem:
            raise SpkpeftError(f"head.{fld.name} {problem}.")


# ----------------------------------------------------------------------------
# masking helpers (``mask (B, N)``: True on valid frames / nodes, N the last axis)


def _zero_padded(x: Tensor, mask: Tensor) -> Tensor:
    """``x (B, C, ..., N)`` with padded positions set to zero."""
    return x * broadcast_mask(mask, x).to(x.dtype)


def _zero_nodes(x: Tensor, mask: Tensor) -> Tensor:
    """Nodes ``x (B, N, D)`` with padded nodes set to zero."""
    return x * mask.unsqueeze(-1).to(x.dtype)


def _masked_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """Softmax over the last axis with ``~mask`` (broadcast over leading axes) excluded."""
    return scores.masked_fill(~mask, float("-inf")).softmax(dim=-1)


# ----------------------------------------------------------------------------
# encoder


def first_pool(x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """3x3 max-pool of ``x (B, 1, P, T)`` (stride 3) ignoring padded frames.

    The spectral axis is floored (``P // 3`` rows), the time axis is ceiled: the valid
    length becomes ``ceil(L / 3)``, a partial last window pools its valid frames only.
    """
    rows = x.shape[2] // FIRST_POOL * FIRST_POOL
    x = x[:, :, :rows].masked_fill(~broadcast_mask(mask, x), float("-inf"))
    extra = -x.shape[-1] % FIRST_POOL
    x = F.max_pool2d(F.pad(x, (0, extra), value=float("-inf")), FIRST_POOL)
    lengths = (mask.sum(1) + FIRST_POOL - 1) // FIRST_POOL
    pooled_mask = frame_mask(lengths, x.shape[-1])
    return x.masked_fill(~broadcast_mask(pooled_mask, x), 0.0), pooled_mask


class ResidualBlock(nn.Module):
    """Residual block of the 2-D encoder on ``(B, C_in, F, T)`` (spatial size kept).

    ``y = conv2(SELU(BN2(conv1(a)))) + skip(x)`` with ``conv1`` 2x3 (padding (1, 1)),
    ``conv2`` 2x3 (padding (0, 1)), ``skip`` a 1x3 convolution when the channel count
    changes (identity otherwise), and ``a = SELU(BN1(x))`` with ``preactivation`` on a
    non-first block, ``a = x`` otherwise (the reference's effective computation).
    """

    def __init__(self, in_ch: int, out_ch: int, first: bool, preactivation: bool) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_ch) if preactivation and not first else None
        self.conv1 = nn.Conv2d(in_ch, out_ch, kernel_size=(2, 3), padding=(1, 1))
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, kernel_size=(2, 3), padding=(0, 1))
        self.skip = nn.Conv2d(in_ch, out_ch, kernel_size=(1, 3), padding=(0, 1)) if in_ch != out_ch else None

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """``x`` zero on padded frames -> output zero on padded frames."""
        a = F.selu(masked_batch_norm(self.bn1, x, mask)) if self.bn1 is not None else x
        y = F.selu(masked_batch_norm(self.bn2, self.conv1(a), mask))
        y = self.conv2(y)
        skip = self.skip(x) if self.skip is not None else x
        return _zero_padded(y + skip, mask)


class NodeAttention(nn.Module):
    """The attention map of step 3: ``Conv1x1 -> SELU -> BN -> Conv1x1`` (C -> A -> C)."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, hidden, kernel_size=1)
        self.bn = nn.BatchNorm2d(hidden)
        self.conv2 = nn.Conv2d(hidden, channels, kernel_size=1)

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Spectral nodes ``(B, F, C)`` (before ``pos_S``) and temporal nodes ``(B, T, C)``."""
        w = self.conv2(masked_batch_norm(self.bn, F.selu(self.conv1(x)), mask))  # (B, C, F, T)
        over_time = _masked_softmax(w, broadcast_mask(mask, w))
        over_freq = w.softmax(dim=-2)  # padded frames: x is zero there
        spectral = (x * over_time).sum(-1).transpose(1, 2)
        temporal = (x * over_freq).sum(-2).transpose(1, 2)
        return spectral, temporal


# ----------------------------------------------------------------------------
# graph layers (nodes ``(B, N, dim)``, ``mask (B, N)``)


def _pairwise(x: Tensor) -> Tensor:
    """``(B, N, D) -> (B, N, N, D)``: ``x_i (.) x_j``."""
    return x.unsqueeze(2) * x.unsqueeze(1)


def _xavier(*size: int) -> nn.Parameter:
    weight = nn.Parameter(torch.empty(*size))
    nn.init.xavier_normal_(weight)
    return weight


def _norm_nodes(bn: nn.BatchNorm1d, x: Tensor, mask: Tensor) -> Tensor:
    """BatchNorm over the feature axis of nodes ``(B, N, D)`` (valid nodes only)."""
    return masked_batch_norm(bn, x.transpose(1, 2), mask).transpose(1, 2)


class GraphAttention(nn.Module):
    """Graph attention layer (step 4): all nodes attend to all valid nodes."""

    def __init__(self, in_dim: int, out_dim: int, temperature: float, dropout: float) -> None:
        super().__init__()
        self.temperature = temperature
        self.drop = nn.Dropout(dropout)
        self.att_proj = nn.Linear(in_dim, out_dim)
        self.att_weight = _xavier(out_dim, 1)
        self.proj_with_att = nn.Linear(in_dim, out_dim)
        self.proj_without_att = nn.Linear(in_dim, out_dim)
        self.bn = nn.BatchNorm1d(out_dim)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        x = self.drop(x)
        scores = (torch.tanh(self.att_proj(_pairwise(x))) @ self.att_weight).squeeze(-1)
        att = _masked_softmax(scores / self.temperature, mask.unsqueeze(1))  # (B, N, N)
        out = self.proj_with_att(att @ x) + self.proj_without_att(x)
        return _zero_nodes(F.selu(_norm_nodes(self.bn, out, mask)), mask)


class HeteroGraphAttention(nn.Module):
    """HS-GAL layer (step 6) on temporal nodes, spectral nodes and a master node."""

    def __init__(self, in_dim: int, out_dim: int, temperature: float, dropout: float) -> None:
        super().__init__()
        self.temperature = temperature
        self.drop = nn.Dropout(dropout)
        self.proj_t = nn.Linear(in_dim, in_dim)
        self.proj_s = nn.Linear(in_dim, in_dim)
        self.att_proj = nn.Linear(in_dim, out_dim)
        self.att_proj_master = nn.Linear(in_dim, out_dim)
        self.att_weight_tt = _xavier(out_dim, 1)
        self.att_weight_ss = _xavier(out_dim, 1)
        self.att_weight_ts = _xavier(out_dim, 1)
        self.att_weight_master = _xavier(out_dim, 1)
        self.proj_with_att = nn.Linear(in_dim, out_dim)
        self.proj_without_att = nn.Linear(in_dim, out_dim)
        self.proj_with_att_master = nn.Linear(in_dim, out_dim)
        self.proj_without_att_master = nn.Linear(in_dim, out_dim)
        self.bn = nn.BatchNorm1d(out_dim)

    def node_scores(self, x: Tensor, num_t: int) -> Tensor:
        """``(B, N, N)`` scores ``w_type(i,j)^T u_ij`` (T-T, S-S, or mixed pair weights)."""
        hidden = torch.tanh(self.att_proj(_pairwise(x)))
        weights = torch.cat([self.att_weight_tt, self.att_weight_ss, self.att_weight_ts], dim=1)
        all_scores = hidden @ weights  # (B, N, N, 3)
        b, n = x.shape[:2]
        kind = torch.full((n, n), 2, dtype=torch.long, device=x.device)  # mixed pairs
        kind[:num_t, :num_t] = 0
        kind[num_t:, num_t:] = 1
        index = kind.view(1, n, n, 1).expand(b, -1, -1, 1)
        return all_scores.gather(-1, index).squeeze(-1)

    def update_master(self, x: Tensor, mask: Tensor, master: Tensor) -> Tensor:
        """``m' = W_3 sum_j b_j x_j + W_4 m + b'`` (no normalisation, as in the reference)."""
        scores = (torch.tanh(self.att_proj_master(x * master)) @ self.att_weight_master).squeeze(-1)
        att = _masked_softmax(scores / self.temperature, mask).unsqueeze(1)  # (B, 1, N)
        return self.proj_with_att_master(att @ x) + self.proj_without_att_master(master)

    def forward(
        self, x_t: Tensor, mask_t: Tensor, x_s: Tensor, mask_s: Tensor, master: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Updated ``(temporal nodes, spectral nodes, master (B, 1, out_dim))``."""
        num_t = x_t.shape[1]
        x = self.drop(torch.cat([self.proj_t(x_t), self.proj_s(x_s)], dim=1))
        mask = torch.cat([mask_t, mask_s], dim=1)
        master = self.update_master(x, mask, master)
        att = _masked_softmax(self.node_scores(x, num_t) / self.temperature, mask.unsqueeze(1))
        out = self.proj_with_att(att @ x) + self.proj_without_att(x)
        out = _zero_nodes(F.selu(_norm_nodes(self.bn, out, mask)), mask)
        return out[:, :num_t], out[:, num_t:], master


class GraphPool(nn.Module):
    """Graph pooling (step 5): keep ``max(floor(ratio n_b), 1)`` best valid nodes per utterance.

    Scores ``sigmoid(p^T dropout(x) + c)``; padded nodes score ``-inf``; the batch keeps
    ``K`` slots ordered by decreasing score, slots ``>= k_b`` are padded.  ``K`` is
    ``max_b k_b`` on the CPU and, on an accelerator, ``max(floor(ratio N), 1)`` for the
    batch's node axis ``N`` (the largest ``k_b`` can be; equal to ``max_b k_b`` when no node
    is padded): the counts are never read on the host, and the extra slots are padding.
    """

    def __init__(self, ratio: float, dim: int, dropout: float) -> None:
        super().__init__()
        self.ratio = ratio
        self.drop = nn.Dropout(dropout)
        self.proj = nn.Linear(dim, 1)

    def kept(self, mask: Tensor) -> Tensor:
        """Number of nodes kept per utterance (``k_b``, from its valid node count; float64
        product as the reference's Python arithmetic), on the mask's device."""
        counts = mask.sum(1).to(torch.float64)
        return torch.clamp(torch.floor(counts * self.ratio), min=1).long()

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        scores = torch.sigmoid(self.proj(self.drop(x)))  # (B, N, 1)
        keep = self.kept(mask)
        slots = int(keep.max()) if host_reads_are_cheap(mask.device) else max(int(mask.shape[1] * self.ratio), 1)
        ranked = scores.squeeze(-1).masked_fill(~mask, float("-inf"))
        index = ranked.topk(slots, dim=1, sorted=True).indices  # (B, K)
        pooled = (x * scores).gather(1, index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
        new_mask = frame_mask(keep, index.shape[1])
        return _zero_nodes(pooled, new_mask), new_mask


class HsgalBranch(nn.Module):
    """One branch of step 6: HS-GAL_1 -> graph pooling -> HS-GAL_2 (residual), own master."""

    def __init__(self, cfg: AasistConfig) -> None:
        super().__init__()
        (d1, d2), tau, r = cfg.gat_dims, cfg.temperatures, cfg.pool_ratios
        self.master = nn.Parameter(torch.randn(1, 1, d1))
        self.layer1 = HeteroGraphAttention(d1, d2, tau[2], cfg.gat_dropout)
        self.pool_s = GraphPool(r[2], d2, cfg.pool_dropout)
        self.pool_t = GraphPool(r[2], d2, cfg.pool_dropout)  # r[2] too, as the reference
        self.layer2 = HeteroGraphAttention(d2, d2, tau[2], cfg.gat_dropout)  # tau[2] too

    def forward(
        self, x_t: Tensor, mask_t: Tensor, x_s: Tensor, mask_s: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """``(temporal nodes, their mask, spectral nodes, their mask, master)``."""
        t, s, master = self.layer1(x_t, mask_t, x_s, mask_s, self.master)
        s, mask_s = self.pool_s(s, mask_s)
        t, mask_t = self.pool_t(t, mask_t)
        t_aug, s_aug, m_aug = self.layer2(t, mask_t, s, mask_s, master)
        return t + t_aug, mask_t, s + s_aug, mask_s, master + m_aug


def _readout(nodes: Tensor, mask: Tensor) -> list[Tensor]:
    """``[max_i |x_i|, mean_i x_i]`` over valid nodes (padded nodes are zero, |x| >= 0)."""
    weights = mask.unsqueeze(-1).to(nodes.dtype)
    mean = (nodes * weights).sum(1) / weights.sum(1).clamp_min(1.0)
    return [nodes.abs().amax(1), mean]


# ----------------------------------------------------------------------------
# the head


class AasistHead(nn.Module):
    """AASIST back-end: ``forward(feats (B, T, D), lengths (B,)) -> (B, 5 gat_dims[1])``."""

    def __init__(self, cfg: AasistConfig, feat_dim: int) -> None:
        super().__init__()
        validate_aasist_config(cfg)
        channels = cfg.filters[-1][1]
        (d1, d2), tau, r = cfg.gat_dims, cfg.temperatures, cfg.pool_ratios
        self.embed_dim = 5 * d2
        self.proj = nn.Linear(feat_dim, cfg.proj_dim)
        self.first_bn = nn.BatchNorm2d(1)
        self.encoder = nn.ModuleList(
            ResidualBlock(c_in, c_out, i == 0, cfg.encoder_preactivation)
            for i, (c_in, c_out) in enumerate(cfg.filters)
        )
        self.encoder_bn = nn.BatchNorm2d(channels)
        self.node_attention = NodeAttention(channels, cfg.attention_channels)
        self.pos_s = nn.Parameter(torch.randn(1, cfg.proj_dim // FIRST_POOL, channels))
        self.gat_s = GraphAttention(channels, d1, tau[0], cfg.gat_dropout)
        self.gat_t = GraphAttention(channels, d1, tau[1], cfg.gat_dropout)
        self.pool_s = GraphPool(r[0], d1, cfg.pool_dropout)
        self.pool_t = GraphPool(r[1], d1, cfg.pool_dropout)
        self.branches = nn.ModuleList(HsgalBranch(cfg) for _ in range(2))
        self.branch_drop = nn.Dropout(cfg.branch_dropout)
        self.readout_drop = nn.Dropout(cfg.readout_dropout)

    def encode(self, feats: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor]:
        """Steps 1-2: encoder output ``(B, C, F, T')`` (zero on padded frames) and its mask."""
        x, mask = channels_first_masked(feats, lengths)
        x = _zero_padded(self.proj(x.transpose(1, 2)).transpose(1, 2), mask)  # (B, P, T)
        x, mask = first_pool(x.unsqueeze(1), mask)
        x = F.selu(masked_batch_norm(self.first_bn, x, mask))
        for block in self.encoder:
            x = block(x, mask)
        return F.selu(masked_batch_norm(self.encoder_bn, x, mask)), mask

    def graphs(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Steps 3-5: pooled temporal nodes, their mask, pooled spectral nodes, their mask."""
        spectral, temporal = self.node_attention(x, mask)
        spectral_mask = torch.ones(spectral.shape[:2], dtype=torch.bool, device=x.device)
        s, s_mask = self.pool_s(self.gat_s(spectral + self.pos_s, spectral_mask), spectral_mask)
        t, t_mask = self.pool_t(self.gat_t(temporal, mask), mask)
        return t, t_mask, s, s_mask

    def forward(self, feats: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Utterance vectors ``(B, embed_dim)``; frames ``t >= lengths[b]`` are ignored."""
        t, t_mask, s, s_mask = self.graphs(*self.encode(feats, lengths))
        first, second = (branch(t, t_mask, s, s_mask) for branch in self.branches)
        t_mask, s_mask = first[1], first[3]  # both branches keep the same node counts
        t, s, master = (
            torch.maximum(self.branch_drop(first[i]), self.branch_drop(second[i])) for i in (0, 2, 4)
        )
        hidden = torch.cat([*_readout(t, t_mask), *_readout(s, s_mask), master.squeeze(1)], dim=1)
        return self.readout_drop(hidden)


def build_aasist(cfg: AasistConfig, feat_dim: int) -> AasistHead:
    """Builder of the ``aasist`` head for ``feat_dim``-dim frame features."""
    return AasistHead(cfg, feat_dim)


HEADS.register("aasist", AasistConfig, build_aasist, description="AASIST graph attention back-end (SSL-AASIST)")
