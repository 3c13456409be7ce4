"""Embedding heads on top of the aggregated upstream features (ECAPA-TDNN).

The head maps frame features ``(B, T, D)`` plus valid lengths ``(B,)`` to one
embedding per utterance ``(B, E)``.  Architecture (Desplanques et al., 2020,
"ECAPA-TDNN"), with ``C = channels`` and ``M = mfa_channels``:

1. input TDNN layer: Conv1d(D -> C, k=5) -> ReLU -> BN;
2. three SE-Res2 blocks (k=3, dilations 2, 3, 4), each
   Conv1d(C -> C, k=1) -> ReLU -> BN, a Res2 dilated conv with
   ``s = res2_scale`` chunks, Conv1d(C -> C, k=1) -> ReLU -> BN,
   a squeeze-excitation gate (bottleneck ``se_channels``) and a residual add;
3. multi-layer feature aggregation (MFA): concatenate the three block
   outputs (3C) -> Conv1d(3C -> M, k=1) -> ReLU;
4. channel- and context-dependent attentive statistics pooling (ASP) with
   ``attention_channels`` hidden units -> (2M,);
5. BN -> Linear(2M -> E) -> BN.

Padding. Every intermediate feature map is zeroed on padded frames (``t >=
length``) before it reaches a convolution, and all time reductions (SE
squeeze, pooling, the fusion's context) are masked means.  Because the
convolutions use zero "same" padding, an utterance therefore produces the same
embedding alone and inside a padded batch (exactly, up to float rounding).
In training mode the BatchNorm statistics of frame-level layers are computed
over valid frames only.

Transformation module (``transform: partition_fusion``, ``partition_groups =
G >= 2``), after Li et al., "Lightweight Speaker Verification Using
Transformation Module with Feature Partition and Fusion", arXiv:2312.03324
(see :class:`PartitionFusion` for the formula and the departures).  A
:class:`PartitionFusion` module sits in front of each SE-Res2 block and in
front of the MFA layer; between two of them the G channel subsets are
processed independently: every convolution of the blocks and of the MFA layer
is grouped (``groups=G``; the Res2 chunks are taken inside each subset), and
the SE gate of subset g is computed from subset g only (grouped bottleneck of
``se_channels / G`` units per subset).  Block and MFA parameters and MACs are
thus divided by G.  The input layer, the ASP and the final layers stay dense.
"""

from __future__ import annotations

import math

from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spkpeft.errors import SpkpeftError
from spkpeft.registry import Registry, tagged_section

#: ``head.type`` -> config and ``build(cfg, feat_dim) -> module`` with an ``embed_dim``
#: attribute, called as ``head(feats (B, T, D), lengths (B,)) -> (B, embed_dim)``
HEADS = Registry("head", tag_key="type")
HEAD_TRANSFORMS = ("none", "partition_fusion")
BLOCK_DILATIONS = (2, 3, 4)


@tagged_section(HEADS)
@dataclass
class HeadConfig:
    """``head:`` section of a config, ``type: ecapa`` (ECAPA-TDNN; other types: :data:`HEADS`).

    ``mfa_channels = 0`` means ``3 * channels`` (1536 for C=512, as in the
    paper; the paper's C=1024 model keeps 1536, i.e. set it explicitly).
    ``transform: partition_fusion`` turns on the transformation module of
    arXiv:2312.03324 with ``partition_groups`` (>= 2) feature subsets; with
    ``transform: none`` (default) ``partition_groups`` must be 0 or 1.
    """

    type: str = "ecapa"
    channels: int = 512
    embed_dim: int = 192
    res2_scale: int = 8
    se_channels: int = 128
    attention_channels: int = 128
    transform: str = field(default="none", metadata={"choices": HEAD_TRANSFORMS})
    partition_groups: int = 0
    mfa_channels: int = 0

    def __post_init__(self) -> None:
        validate_head_config(self)


# ----------------------------------------------------------------------------
# configuration checks


def _positive_int(cfg: HeadConfig, key: str, minimum: int = 1) -> int:
    value = getattr(cfg, key)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SpkpeftError(f"head.{key} must be an integer >= {minimum}, got {value!r}.")
    return value


def num_groups(cfg: HeadConfig) -> int:
    """Number of feature subsets G (1 when the transformation module is off)."""
    return cfg.partition_groups if cfg.transform == "partition_fusion" else 1


def mfa_channels(cfg: HeadConfig) -> int:
    """Output channels M of the MFA layer (``3 * channels`` when set to 0)."""
    return cfg.mfa_channels or 3 * cfg.channels


def plain_config(cfg: HeadConfig) -> HeadConfig:
    """The same head with the transformation module off (the reference for its savings)."""
    return replace(cfg, transform="none", partition_groups=0)


def validate_head_config(cfg: HeadConfig) -> None:
    """Raise :class:`SpkpeftError` naming the ``head.<key>`` that is invalid."""
    if cfg.type not in HEADS or HEADS.get(cfg.type).config is not type(cfg):
        ecapa = [entry.name for entry in HEADS if entry.config is type(cfg)]
        raise SpkpeftError(f"head.type must be one of {', '.join(ecapa)} for this section, got {cfg.type!r}.")
    if cfg.transform not in HEAD_TRANSFORMS:
        raise SpkpeftError(
            f"head.transform must be one of {', '.join(HEAD_TRANSFORMS)}, got {cfg.transform!r}."
        )
    channels = _positive_int(cfg, "channels")
    for key in ("embed_dim", "se_channels", "attention_channels"):
        _positive_int(cfg, key)
    scale = _positive_int(cfg, "res2_scale", minimum=2)
    groups = _positive_int(cfg, "partition_groups", minimum=0)
    _positive_int(cfg, "mfa_channels", minimum=0)
    if channels % scale:
        raise SpkpeftError(
            f"head.channels ({channels}) must be divisible by head.res2_scale ({scale})."
        )
    if cfg.transform == "none":
        if groups > 1:
            raise SpkpeftError(
                f"head.partition_groups ({groups}) > 1 needs head.transform: partition_fusion "
                "(with head.transform: none it must be 0 or 1)."
            )
        return
    if groups < 2:
        raise SpkpeftError(
            f"head.partition_groups must be >= 2 with head.transform: {cfg.transform}, "
            f"got {groups}."
        )
    if channels % (scale * groups):
        raise SpkpeftError(
            f"head.partition_groups ({groups}): head.channels ({channels}) must be "
            f"divisible by head.res2_scale * head.partition_groups ({scale * groups})."
        )
    if cfg.se_channels % groups:
        raise SpkpeftError(
            f"head.partition_groups ({groups}) must divide head.se_channels "
            f"({cfg.se_channels}): each subset gets its own SE bottleneck."
        )
    if mfa_channels(cfg) % groups:
        raise SpkpeftError(
            f"head.partition_groups ({groups}) must divide the MFA channels "
            f"({mfa_channels(cfg)}, head.mfa_channels or 3 * head.channels)."
        )


# ----------------------------------------------------------------------------
# masking helpers


def host_reads_are_cheap(device: torch.device) -> bool:
    """Whether reading a tensor of ``device`` on the host costs nothing: on the CPU it does not;
    on an accelerator ``bool(t)``, ``.item()``, ``.cpu()`` or a data-dependent shape makes the host
    wait for the device, so the layers here take their paths that read nothing (the same
    results up to rounding; tests compare the two paths on the CPU)."""
    return device.type == "cpu"


def frame_mask(lengths: Tensor, num_frames: int) -> Tensor:
    """Boolean mask ``(B, T)``: ``mask[b, t] = t < lengths[b]``."""
    steps = torch.arange(num_frames, device=lengths.device)
    return steps.unsqueeze(0) < lengths.unsqueeze(1)


def channels_first_masked(feats: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor]:
    """``feats (B, T, D)`` -> ``(x (B, D, T) zero on padded frames, mask (B, T))``; every
    frame is valid when ``lengths`` is None, and an utterance without frames is an error
    (not checked while exporting a graph, where the upstreams keep at least one frame).  On
    an accelerator the check is a device-side assertion: reading the lengths on the host
    would make every forward wait for the device."""
    b, t, _ = feats.shape
    if lengths is None:
        lengths = torch.full((b,), t, dtype=torch.long, device=feats.device)
    elif torch.compiler.is_exporting():
        pass
    elif host_reads_are_cheap(lengths.device):
        if bool((lengths < 1).any()):
            raise SpkpeftError("the head got an utterance with no frames (length < 1).")
    else:
        torch._assert_async((lengths >= 1).all(), "the head got an utterance with no frames (length < 1).")
    mask = frame_mask(lengths.to(feats.device), t)
    return feats.transpose(1, 2) * mask.unsqueeze(1).to(feats.dtype), mask


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean over time of ``x (B, C, T)`` on valid frames: sum_t m_t x_t / sum_t m_t."""
    weights = mask.unsqueeze(1).to(x.dtype)
    return (x * weights).sum(-1) / weights.sum(-1).clamp_min(1.0)


def broadcast_mask(mask: Tensor, x: Tensor) -> Tensor:
    """``mask (B, N)`` viewed as ``(B, 1, ..., 1, N)`` with ``x.dim()`` axes."""
    return mask.view(mask.shape[0], *([1] * (x.dim() - 2)), mask.shape[1])


def masked_batch_norm(bn: nn.modules.batchnorm._BatchNorm, x: Tensor, mask: Tensor) -> Tensor:
    """Apply ``bn`` to ``x (B, C, ..., N)`` and zero the padded positions (``~mask (B, N)``).

    In training mode the batch statistics come from the valid positions only.  On the CPU,
    where reading the mask costs nothing, a full mask takes ``bn(x)`` itself and a padded one
    ``bn`` of the gathered valid positions (normalised and scattered back); on an accelerator
    :func:`valid_batch_norm` weighs the positions by the mask instead, so that the host never
    waits for the device (a data-dependent branch or shape would, at every BatchNorm).
    """
    keep = broadcast_mask(mask, x)
    if not bn.training:
        return bn(x) * keep.to(x.dtype)
    if not host_reads_are_cheap(x.device):
        return valid_batch_norm(bn, x, keep)
    if bool(mask.all()):
        return bn(x) * keep.to(x.dtype)
    values = x.movedim(1, -1)  # (B, ..., N, C)
    where = keep.squeeze(1).expand(values.shape[:-1])  # (B, ..., N)
    picked = values[where]  # (M, C)
    normed = bn(picked.view(*picked.shape, *([1] * (x.dim() - 2)))).view(picked.shape)
    out = values.new_zeros(values.shape)
    out[where] = normed
    return out.movedim(-1, 1)


def valid_batch_norm(bn: nn.modules.batchnorm._BatchNorm, x: Tensor, keep: Tensor) -> Tensor:
    """Training-mode BatchNorm of ``x (B, C, ...)`` over the positions where ``keep``
    (broadcastable to ``x``, one value per position for all channels) is True, with shapes that
    do not depend on the data.  In float32, with ``n`` valid positions per channel:
    ``mu = sum_valid x / n``, ``var = sum_valid (x - mu)^2 / n``,
    ``y = (x - mu) / sqrt(var + eps) * weight + bias`` zeroed where not ``keep``; the running
    statistics move as in :class:`torch.nn.BatchNorm1d` (``momentum``, or the cumulative mean
    when it is None), towards ``mu`` and the unbiased ``var n / (n - 1)``.
    """
    dims = [0, *range(2, x.dim())]
    weights = keep.expand(x.shape[0], 1, *x.shape[2:]).to(torch.float32)
    count = weights.sum()
    values = x.float()
    mean = (values * weights).sum(dims, keepdim=True) / count
    var = ((values - mean) ** 2 * weights).sum(dims, keepdim=True) / count
    y = (values - mean) * torch.rsqrt(var + bn.eps)
    if bn.affine:
        shape = (1, -1, *([1] * (x.dim() - 2)))
        y = y * bn.weight.float().view(shape) + bn.bias.float().view(shape)
    if bn.track_running_stats and bn.running_mean is not None:
        with torch.no_grad():
            bn.num_batches_tracked.add_(1)
            factor = bn.momentum if bn.momentum is not None else 1.0 / bn.num_batches_tracked
            bn.running_mean.lerp_(mean.flatten().to(bn.running_mean.dtype), factor)
            unbiased = var.flatten() * count / (count - 1).clamp_min(1.0)
            bn.running_var.lerp_(unbiased.to(bn.running_var.dtype), factor)
    return (y * weights).to(x.dtype)


# ----------------------------------------------------------------------------
# building blocks


class TDNNLayer(nn.Module):
    """Conv1d(k, dilation, groups, zero 'same' padding) -> ReLU -> BN, masked."""

    def __init__(
        self, in_ch: int, out_ch: int, kernel: int = 1, dilation: int = 1, groups: int = 1
    ) -> None:
        super().__init__()
        pad = dilation * (kernel - 1) // 2
        self.conv = nn.Conv1d(in_ch, out_ch, kernel, dilation=dilation, padding=pad, groups=groups)
        self.bn = nn.BatchNorm1d(out_ch)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        return masked_batch_norm(self.bn, F.relu(self.conv(x)), mask)


class Res2Conv(nn.Module):
    """Res2Net dilated convolution with ``scale`` chunks, group-aware.

    Channels are viewed as ``(G, s, c)`` with ``c = C / (G s)``: chunk ``i``
    collects sub-chunk ``i`` of every group.  ``y_1 = x_1``,
    ``y_2 = K_2(x_2)``, ``y_i = K_i(x_i + y_{i-1})`` for ``i > 2``, where
    each ``K_i`` is a TDNN layer (k=3, dilation d) with ``groups=G``; hence
    group g of the output depends only on group g of the input.
    """

    def __init__(self, channels: int, scale: int, dilation: int, groups: int) -> None:
        super().__init__()
        self.scale, self.groups = scale, groups
        width = channels // scale
        self.convs = nn.ModuleList(
            TDNNLayer(width, width, 3, dilation, groups) for _ in range(scale - 1)
        )

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        b, c, t = x.shape
        parts = x.view(b, self.groups, self.scale, -1, t).unbind(2)
        chunks = [p.reshape(b, -1, t) for p in parts]
        outs = [chunks[0]]
        prev = None
        for conv, chunk in zip(self.convs, chunks[1:]):
            prev = conv(chunk if prev is None else chunk + prev, mask)
            outs.append(prev)
        stacked = torch.stack([o.view(b, self.groups, -1, t) for o in outs], dim=2)
        return stacked.reshape(b, c, t)


class SqueezeExcite(nn.Module):
    """SE gate: ``x * sigmoid(W_2 relu(W_1 mean_t(x) + b_1) + b_2)`` (masked mean).

    With ``groups = G > 1`` both projections are block-diagonal (grouped 1x1
    convolutions on the squeezed vector): subset g of ``C / G`` channels has its
    own bottleneck of ``bottleneck / G`` units, so its gate depends on subset g
    only.  ``G = 1`` is the usual dense SE (``nn.Linear`` layers).
    """

    def __init__(self, channels: int, bottleneck: int, groups: int = 1) -> None:
        super().__init__()
        self.groups = groups
        if groups == 1:
            self.down = nn.Linear(channels, bottleneck)
            self.up = nn.Linear(bottleneck, channels)
        else:
            self.down = nn.Conv1d(channels, bottleneck, 1, groups=groups)
            self.up = nn.Conv1d(bottleneck, channels, 1, groups=groups)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        squeezed = masked_mean(x, mask)  # (B, C)
        if self.groups == 1:
            gate = self.up(F.relu(self.down(squeezed)))
        else:
            gate = self.up(F.relu(self.down(squeezed.unsqueeze(-1)))).squeeze(-1)
        return x * torch.sigmoid(gate).unsqueeze(-1)


class PartitionFusion(nn.Module):
    """Transformation module with feature partition and fusion (arXiv:2312.03324).

    Source: Yanxiong Li, Zhongjie Jiang, Qisheng Huang, Wenchang Cao, Jialong
    Li, "Lightweight Speaker Verification Using Transformation Module with
    Feature Partition and Fusion", arXiv:2312.03324 (eess.AS, Dec. 2023).
    What the paper states (abstract): the input feature is split into several
    low-dimensional feature subsets; each subset is updated by fusing it with
    inter-subset correlational information built from simple operations
    (convolution, pooling, mean, concatenation, normalisation, element-wise
    summation); the updated subsets are fed *independently* into the next
    block (one or several layers) of the model, and the block's output is
    transformed the same way before the next block.  It was implanted into
    AMCRN, ResNet34 and ECAPA-TDNN.

    Formula implemented here.  ``x (B, C, T)`` is split along channels into G
    contiguous subsets ``x_g`` of ``c = C / G`` channels; with ``V`` the valid
    frames of the utterance and ``(.)`` the element-wise product:

        m     = (1/G) sum_h x_h                       mean over subsets       (c, T)
        p     = (1/|V|) sum_{t in V} m_t              temporal avg pooling    (c,)
        u_g   = a_g (.) x_g + b_g (.) m + d_g (.) p   per-channel (depthwise) 1x1 conv
                                                      over the channel-aligned
                                                      concatenation [x_g ; m ; p 1^T]
        x'_g  = x_g + BN(u_g)                         normalisation, element-wise sum

    ``a, b, d`` hold one weight per channel of C (3C parameters, initialised
    to 1, 1, 0); BN has statistics and affine parameters per channel (2C).
    Channel j of every subset thus receives channel j of all the others
    (through ``m``) and an utterance-level summary (``p``); the grouped 1x1
    convolution that opens the next block then spreads that information over
    the whole subset.  Cost: ``(3C + c) T + C`` MACs (see :func:`count_macs`).

    Departures and unverified choices.  The paper's full text (wiring and
    order of the operations, kernel sizes, number of subsets, which
    ECAPA-TDNN layers carry the module, its reported parameter/MAC counts)
    could not be consulted; only the abstract was available.  Hence (i) the
    composition above is our reading of the listed operations, not the
    paper's equations; (ii) the convolution is depthwise and pointwise, chosen
    so that the module costs O(C) per frame and the transformed head is
    cheaper than the plain one for every G >= 2 (a shared dense 1x1 conv over
    ``[x_g ; m]``, tried first, made the G = 2 head costlier than the plain
    one: its fusion before the MFA layer alone outweighs the grouping); (iii) the
    placement (one module before each SE-Res2 block and one before the MFA
    layer; dense input layer and pooling) is our choice; (iv) there is no
    activation inside the module (the next block starts with conv -> ReLU).

    Padding: ``m`` is zero on padded frames, ``p`` is a masked mean and the
    BN output is re-masked, so padded frames stay zero.
    """

    def __init__(self, channels: int, groups: int) -> None:
        super().__init__()
        self.groups = groups
        init = torch.tensor([1.0, 1.0, 0.0])  # own, subset mean, pooled mean
        self.weight = nn.Parameter(init.repeat(channels, 1))  # (C, 3)
        self.bn = nn.BatchNorm1d(channels)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        b, c, t = x.shape
        subsets = x.view(b, self.groups, -1, t)
        mean = subsets.mean(dim=1, keepdim=True)  # (B, 1, c, T), zero on padded frames
        pooled = masked_mean(mean.squeeze(1), mask).view(b, 1, -1, 1)  # (B, 1, c, 1)
        w = self.weight.view(self.groups, -1, 3, 1)
        update = w[:, :, 0] * subsets + w[:, :, 1] * mean + w[:, :, 2] * pooled
        return x + masked_batch_norm(self.bn, update.reshape(b, c, t), mask)


class SERes2Block(nn.Module):
    """TDNN(k=1) -> Res2Conv -> TDNN(k=1) -> SE, plus residual.

    With ``G = num_groups(cfg) > 1`` every layer is grouped, so channel subset g
    of the output depends only on subset g of the input (the transformation
    module that mixes the subsets lives outside the block, in the head).
    """

    def __init__(self, cfg: HeadConfig, dilation: int) -> None:
        super().__init__()
        c, g = cfg.channels, num_groups(cfg)
        self.pre = TDNNLayer(c, c, 1, groups=g)
        self.res2 = Res2Conv(c, cfg.res2_scale, dilation, g)
        self.post = TDNNLayer(c, c, 1, groups=g)
        self.se = SqueezeExcite(c, cfg.se_channels, g)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        y = self.post(self.res2(self.pre(x, mask), mask), mask)
        return x + self.se(y, mask)


class AttentiveStatsPool(nn.Module):
    """Channel- and context-dependent attentive statistics pooling (masked).

    With global context ``mu, sigma`` (plain masked mean/std of ``h``) and
    ``u_t = [h_t; mu; sigma]``:

        e_t = V tanh(W u_t + b) + k,   alpha_t = softmax_t(e_t) (valid t only)
        mean = sum_t alpha_t h_t,  std = sqrt(max(sum_t alpha_t h_t^2 - mean^2, eps))

    (all per channel); output ``[mean; std]`` of size 2M.
    """

    def __init__(self, channels: int, hidden: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.attend = nn.Conv1d(3 * channels, hidden, 1)
        self.score = nn.Conv1d(hidden, channels, 1)

    def statistics(self, h: Tensor, weights: Tensor) -> tuple[Tensor, Tensor]:
        """Weighted mean and std over time; ``weights (B, C|1, T)`` sum to 1."""
        mean = (weights * h).sum(-1)
        var = (weights * h * h).sum(-1) - mean * mean
        return mean, var.clamp_min(self.eps).sqrt()

    def forward(self, h: Tensor, mask: Tensor) -> Tensor:
        t = h.shape[-1]
        m = mask.unsqueeze(1)
        uniform = m.to(h.dtype) / m.sum(-1, keepdim=True).clamp_min(1)
        mu, sigma = self.statistics(h, uniform)
        context = torch.cat(
            [h, mu.unsqueeze(-1).expand(-1, -1, t), sigma.unsqueeze(-1).expand(-1, -1, t)], dim=1
        )
        scores = self.score(torch.tanh(self.attend(context)))
        alpha = scores.masked_fill(~m, float("-inf")).softmax(dim=-1)
        mean, std = self.statistics(h, alpha)
        return torch.cat([mean, std], dim=1)


def _interleave_groups(outs: list[Tensor], groups: int) -> Tensor:
    """Concatenate block outputs so that channel group g of every block is adjacent.

    ``(B, C, T) x L -> (B, L C, T)`` laid out as ``(G, L, C/G)``; for G=1 this
    is plain concatenation.
    """
    b, _, t = outs[0].shape
    stacked = torch.stack([o.view(b, groups, -1, t) for o in outs], dim=2)
    return stacked.reshape(b, -1, t)


class EcapaTDNN(nn.Module):
    """ECAPA-TDNN head: ``forward(feats (B, T, D), lengths (B,)) -> (B, E)``.

    With the transformation module on, ``fusions[i]`` precedes ``blocks[i]``
    and ``mfa_fusion`` precedes the (grouped) MFA layer; otherwise both are None.
    """

    def __init__(self, cfg: HeadConfig, feat_dim: int) -> None:
        super().__init__()
        c, g, m = cfg.channels, num_groups(cfg), mfa_channels(cfg)
        self.groups = g
        self.feat_dim = feat_dim
        self.embed_dim = cfg.embed_dim
        self.input_layer = TDNNLayer(feat_dim, c, kernel=5)
        self.fusions = (
            nn.ModuleList(PartitionFusion(c, g) for _ in BLOCK_DILATIONS) if g > 1 else None
        )
        self.blocks = nn.ModuleList(SERes2Block(cfg, d) for d in BLOCK_DILATIONS)
        self.mfa_fusion = PartitionFusion(3 * c, g) if g > 1 else None
        self.mfa = nn.Conv1d(3 * c, m, 1, groups=g)
        self.pool = AttentiveStatsPool(m, cfg.attention_channels)
        self.pool_bn = nn.BatchNorm1d(2 * m)
        self.fc = nn.Linear(2 * m, cfg.embed_dim)
        self.out_bn = nn.BatchNorm1d(cfg.embed_dim)

    def frame_features(self, x: Tensor, mask: Tensor) -> Tensor:
        """Masked MFA output ``(B, M, T)`` from masked input ``x (B, D, T)``."""
        h = self.input_layer(x, mask)
        outs = []
        for i, block in enumerate(self.blocks):
            if self.fusions is not None:
                h = self.fusions[i](h, mask)
            h = block(h, mask)
            outs.append(h)
        cat = _interleave_groups(outs, self.groups)
        if self.mfa_fusion is not None:
            cat = self.mfa_fusion(cat, mask)
        return F.relu(self.mfa(cat)) * mask.unsqueeze(1).to(cat.dtype)

    def forward(self, feats: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Embeddings ``(B, E)``; frames ``t >= lengths[b]`` are ignored (None: all valid)."""
        x, mask = channels_first_masked(feats, lengths)
        pooled = self.pool(self.frame_features(x, mask), mask)
        return self.out_bn(self.fc(self.pool_bn(pooled)))


def build_head(cfg, feat_dim: int) -> nn.Module:
    """Build the head described by ``cfg`` (``cfg.type`` in :data:`HEADS`) for ``feat_dim``-dim input."""
    if isinstance(feat_dim, bool) or not isinstance(feat_dim, int) or feat_dim < 1:
        raise SpkpeftError(
            f"head input feature dimension must be a positive integer, got {feat_dim!r}."
        )
    return HEADS.get(cfg.type).build(cfg, feat_dim)


def build_ecapa(cfg: HeadConfig, feat_dim: int) -> "EcapaTDNN":
    return EcapaTDNN(cfg, feat_dim)


HEADS.register("ecapa", HeadConfig, build_ecapa, description="ECAPA-TDNN embedding head")


# ----------------------------------------------------------------------------
# cost accounting


def count_params(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _layer_macs(module: nn.Module, inputs: tuple, output: Tensor) -> int:
    """Analytic MACs of one call of a Conv1d, Conv2d, Linear, LSTM or PartitionFusion layer.

    :class:`PartitionFusion` has no Conv1d/Linear children: its cost is
    counted here in closed form from the input shape.  An LSTM layer of ``H``
    units on ``I`` inputs costs ``4 H (I + H)`` per time step and direction.
    """
    if isinstance(module, (nn.Conv1d, nn.Conv2d)):
        per_out = module.in_channels // module.groups * math.prod(module.kernel_size)
        return output.numel() * per_out
    if isinstance(module, nn.LSTM):
        x = inputs[0]
        steps = x.data.shape[0] if isinstance(x, nn.utils.rnn.PackedSequence) else x.shape[0] * x.shape[1]
        dirs = 2 if module.bidirectional else 1
        hidden = module.hidden_size
        sizes = [module.input_size] + [hidden * dirs] * (module.num_layers - 1)
        return steps * dirs * sum(4 * hidden * (size + hidden) for size in sizes)
    if isinstance(module, nn.Linear):
        return output.numel() * module.in_features
    if isinstance(module, PartitionFusion):
        x = inputs[0]  # (B, C, T)
        per_utterance = x.numel() // x.shape[-1]  # d (.) p: C per utterance
        return 3 * x.numel() + x.numel() // module.groups + per_utterance
    return 0


def count_macs(module_or_cfg: nn.Module | HeadConfig, feat_dim: int, num_frames: int) -> int:
    """Multiply-accumulates of one forward pass on one utterance of ``num_frames``.

    Counted analytically from the layer shapes (forward hooks record the shapes
    of one dummy pass; nothing is timed): Conv1d ``C_out T_out (C_in / groups)
    k``; Linear ``out_features in_features`` per row.  The transformation
    module (:class:`PartitionFusion`, C channels, G subsets of c = C / G, T
    frames) costs per call

        C T     mean over subsets (one MAC per input element)
      + c T     masked temporal average pooling of the mean
      + 2 C T   a (.) x_g + b (.) m (one MAC each per output element)
      + C       d (.) p (once per utterance),

    i.e. ``(3C + c) T + C``.  Element-wise ops (the residual
    summations, SE rescaling), normalisation (BatchNorm folds into the
    preceding convolution at inference) and activations are not counted.
    """
    if num_frames < 1:
        raise SpkpeftError(f"num_frames must be positive, got {num_frames}.")
    module = module_or_cfg
    if not isinstance(module_or_cfg, nn.Module):
        module = build_head(module_or_cfg, feat_dim)
    total = [0]

    def hook(mod: nn.Module, inputs: tuple, output: Tensor) -> None:
        total[0] += _layer_macs(mod, inputs, output)

    handles = [m.register_forward_hook(hook) for m in module.modules()
               if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear, nn.LSTM, PartitionFusion))]
    was_training = module.training
    try:
        module.eval()
        param = next(module.parameters(), None)  # a parameter-free head (mean pooling) runs on the CPU
        dtype, device = (param.dtype, param.device) if param is not None else (torch.float32, torch.device("cpu"))
        with torch.no_grad():
            module(torch.zeros(1, num_frames, feat_dim, dtype=dtype, device=device),
                   torch.tensor([num_frames], device=device))
    finally:
        module.train(was_training)
        for handle in handles:
            handle.remove()
    return total[0]


def head_cost(cfg: HeadConfig, feat_dim: int, num_frames: int = 300) -> dict[str, int]:
    """``{"params": trainable parameters, "macs": MACs for num_frames frames}``."""
    head = build_head(cfg, feat_dim)
    return {"params": count_params(head), "macs": count_macs(head, feat_dim, num_frames)}


def head_cost_vs_plain(
    cfg: HeadConfig, feat_dim: int, num_frames: int = 300, head: nn.Module | None = None
) -> dict[str, int]:
    """Cost of the head next to the plain head (same config, transform off).

    ``{"params", "macs", "plain_params", "plain_macs", "num_frames"}``; ``head``
    (built from ``cfg``) is measured instead of building a new one when given.
    """
    if head is None:
        head = build_head(cfg, feat_dim)
    plain = head_cost(plain_config(cfg) if isinstance(cfg, HeadConfig) else cfg, feat_dim, num_frames)
    return {
        "params": count_params(head),
        "macs": count_macs(head, feat_dim, num_frames),
        "plain_params": plain["params"],
        "plain_macs": plain["macs"],
        "num_frames": num_frames,
    }
