"""Bottleneck adapters (Houlsby, Pfeiffer; sequential or parallel) and the SV adapter framework.

Adapter function (``D`` model dim, ``b`` bottleneck, ``s`` scale)::

    bottleneck:  a(h) = s * W_up act(W_down h + c_down) + s * c_up
    conformer:   a(h) = s * W_up act(DWConv_k(W_down h + c_down)) + s * c_up   (depthwise conv over time)
    conformer_module (the Conformer convolution module, Gulati et al., Interspeech 2020, as the
    adapter of PETL-AST, Cappellazzo et al., arXiv 2312.03694):
                 a(h) = s * PW_2 SiLU(BN(DWConv_k(GLU(PW_1 LN(h)))))     PW_1: D -> 2 b, PW_2: b -> D

``W_up``, ``c_up`` (``PW_2`` for the Conformer module) start at zero, so ``a(h) = 0`` and the
model is unchanged at step 0 (``init: zero_up``).  ``init: zero_all`` also zeroes ``W_down``
and ``c_down``, as PETL-AST's ``Bottleneck_adapter`` does (``src/AST_adapters.py``): with
``act(0) = 0`` only ``c_up`` then ever receives a gradient, so the adapter stays a learned
bias per block; ``init: default`` keeps PyTorch's default initialisation of every layer, as
PETL-AST's ``Conformer_adapter`` (the model then differs from the pre-trained one at step 0).
``module_norm: false`` leaves out the Conformer module's LayerNorm, as PETL-AST's code
effectively does (it computes ``LN(x)`` and then convolves ``x``).  Padded frames are zeroed before the depthwise convolution so
they cannot leak into real ones.  The bottleneck is ``bottleneck``, or ``round(D / reduction_rate)``
when ``reduction_rate`` is set (PETL-AST's parametrisation).  Departures of ``conformer_module``
from PETL-AST's code: its LayerNorm is applied (the reference computes it and then convolves
the un-normalised input), and ``PW_2`` starts at zero (the reference initialises it randomly,
so its model differs from the pre-trained one at step 0).  Its BatchNorm normalises over
all frames of the batch while training (padding included); in eval mode it uses the running
statistics, so inference does not depend on the batch.

Placement inside a block (see :mod:`spkpeft.upstream.s3prl.block`):

* Houlsby (Houlsby et al., 2019): after the attention output and after the FFN output;
* Pfeiffer (Pfeiffer et al., 2021): after the FFN output only;
* ``sequential``: ``h <- h + a(h)`` on the sub-layer output, before the residual sum;
* ``parallel`` (He et al., 2022): ``h <- sublayer(u) + a(u)`` with ``u`` the sub-layer input.

SV adapter framework (Sang & Hansen, "Efficient Adapter Tuning of Pre-trained Speech
Models for Automatic Speaker Verification", ICASSP 2024, arXiv 2403.00293): two kinds of
parallel adapters, inner ones on the latent features of the intermediate transformer
blocks (here parallel to the FFN of the middle half of the stack) and inter ones on the
output embedding of every layer before the layer aggregation, ``h_l <- h_l + a_l(h_l)``.
(Not Peng et al., ICASSP 2023, which puts adapters inside every block.)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch.nn as nn
from torch import Tensor

from spkpeft.peft.base import (
    LayerSpec,
        PeftConfig,
    choices,
    layers_field,
    norms_field,
    positive,
    positive_field,
    register_method,
    select_layers,
)

ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU, "silu": nn.SiLU}
#: ``peft.init`` of ``adapter``: which layers start at zero (module docstring)
ADAPTER_INITS = ("zero_up", "zero_all", "default")


@dataclass
class AdapterConfig(PeftConfig):
    """``peft.method: adapter`` (Houlsby or Pfeiffer)."""

    method: str = "adapter"
    style: str = field(default="houlsby", metadata=choices("houlsby", "pfeiffer"))
    placement: str = field(default="sequential", metadata=choices("sequential", "parallel"))
    adapter_type: str = field(default="bottleneck", metadata=choices("bottleneck", "conformer", "conformer_module"))
    bottleneck: int = positive_field(64)
    reduction_rate: float | None = field(default=None, metadata={"check": positive})
    kernel_size: int = positive_field(3)
    activation: str = field(default="gelu", metadata=choices(*ACTIVATIONS))
    scale: float = 1.0
    layers: LayerSpec = layers_field()
    init: str = field(default="zero_up", metadata=choices(*ADAPTER_INITS))
    module_norm: bool = True
    train_norms: list[str] = norms_field()


@dataclass
class SVAdapterConfig(PeftConfig):
    """``peft.method: sv_adapter`` (parallel block adapters + per-hidden-state adapters)."""

    method: str = "sv_adapter"
    bottleneck: int = positive_field(128)
    embed_bottleneck: int = positive_field(128)
    adapter_type: str = field(default="bottleneck", metadata=choices("bottleneck", "conformer"))
    kernel_size: int = positive_field(3)
    activation: str = field(default="relu", metadata=choices(*ACTIVATIONS))
    scale: float = 1.0
    layers: LayerSpec = layers_field("intermediate")
    train_norms: list[str] = norms_field()


class BottleneckAdapter(nn.Module):
    """``a(h) = s * up(act(down(h)))`` with ``up`` zero-initialised (see module doc)."""

    def __init__(self, dim: int, bottleneck: int, activation: str = "gelu", scale: float = 1.0, time_first: bool = True) -> None:
        super().__init__()
        self.down = nn.Linear(dim, bottleneck)
        self.act = ACTIVATIONS[activation]()
        self.up = nn.Linear(bottleneck, dim)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)
        self.scale = scale
        self.time_first = time_first

    def bottleneck_features(self, h: Tensor, key_padding_mask: Tensor | None) -> Tensor:
        return self.act(self.down(h))

    def forward(self, h: Tensor, key_padding_mask: Tensor | None = None) -> Tensor:
        return self.up(self.bottleneck_features(h, key_padding_mask)) * self.scale


class ConvAdapter(BottleneckAdapter):
    """Conformer-style adapter: a depthwise convolution over time inside the bottleneck."""

    def __init__(
        self, dim: int, bottleneck: int, kernel_size: int = 3, activation: str = "gelu", scale: float = 1.0, time_first: bool = True
    ) -> None:
        super().__init__(dim, bottleneck, activation, scale, time_first)
        self.conv = nn.Conv1d(bottleneck, bottleneck, kernel_size, padding=kernel_size // 2, groups=bottleneck)

    def bottleneck_features(self, h: Tensor, key_padding_mask: Tensor | None) -> Tensor:
        z = self.down(h)
        if self.time_first:
            z = z.transpose(0, 1)  # (B, T, b)
        if key_padding_mask is not None:
            z = z.masked_fill(key_padding_mask[..., None], 0.0)
        length = z.shape[1]
        z = self.conv(z.transpose(1, 2))[..., :length].transpose(1, 2)
        if self.time_first:
            z = z.transpose(0, 1)
        return self.act(z)


class ConformerModuleAdapter(nn.Module):
    """The Conformer convolution module as an adapter (``conformer_module``, module docstring)."""

    def __init__(self, dim: int, bottleneck: int, kernel_size: int = 31, scale: float = 1.0, time_first: bool = True,
                 norm: bool = True) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim) if norm else nn.Identity()
        self.pointwise_in = nn.Linear(dim, 2 * bottleneck)
        self.glu = nn.GLU(dim=-1)
        self.depthwise = nn.Conv1d(bottleneck, bottleneck, kernel_size, padding=kernel_size // 2, groups=bottleneck)
        self.batch_norm = nn.BatchNorm1d(bottleneck)
        self.act = nn.SiLU()
        self.pointwise_out = nn.Linear(bottleneck, dim)
        nn.init.zeros_(self.pointwise_out.weight)
        nn.init.zeros_(self.pointwise_out.bias)
        self.scale = scale
        self.time_first = time_first

    def forward(self, h: Tensor, key_padding_mask: Tensor | None = None) -> Tensor:
        z = self.glu(self.pointwise_in(self.norm(h)))
        if self.time_first:
            z = z.transpose(0, 1)  # (B, T, b)
        if key_padding_mask is not None:
            z = z.masked_fill(key_padding_mask[..., None], 0.0)
        length = z.shape[1]
        z = self.act(self.batch_norm(self.depthwise(z.transpose(1, 2))[..., :length])).transpose(1, 2)
        if self.time_first:
            z = z.transpose(0, 1)
        return self.pointwise_out(z) * self.scale


def make_adapter(
    dim: int, bottleneck: int, adapter_type: str, kernel_size: int, activation: str, scale: float, time_first: bool,
    init: str = "zero_up", module_norm: bool = True,
) -> BottleneckAdapter:
    """A bottleneck, conformer-style or Conformer-module adapter, initialised as ``init`` says."""
    if adapter_type == "conformer_module":
        adapter = ConformerModuleAdapter(dim, bottleneck, kernel_size, scale, time_first, module_norm)
    elif adapter_type == "conformer":
        adapter = ConvAdapter(dim, bottleneck, kernel_size, activation, scale, time_first)
    else:
        adapter = BottleneckAdapter(dim, bottleneck, activation, scale, time_first)
    reinitialise(adapter, init)
    return adapter


def reinitialise(adapter: nn.Module, init: str) -> None:
    """``zero_all``: every linear layer's weight and bias zero; ``default``: every linear layer
    back to PyTorch's default initialisation; ``zero_up``: as built (module docstring)."""
    if init == "zero_up":
        return
    for module in adapter.modules():
        if isinstance(module, nn.Linear):
            if init == "zero_all":
                nn.init.zeros_(module.weight)
                nn.init.zeros_(module.bias)
            else:
                module.reset_parameters()


def adapter_slots(style: str, placement: str) -> tuple[str, ...]:
    """The :class:`~spkpeft.upstream.base.LayerExtensions` slots used by ``style``/``placement``."""
    positions = ("attn", "ffn") if style == "houlsby" else ("ffn",)
    suffix = "_out" if placement == "sequential" else "_parallel"
    return tuple(p + suffix for p in positions)


def apply_adapter(upstream: nn.Module, cfg: AdapterConfig) -> list[nn.Module]:
    """Insert Houlsby/Pfeiffer adapters into the selected blocks."""
    added = []
    bottleneck = cfg.bottleneck if cfg.reduction_rate is None else max(1, round(upstream.hidden_dim / cfg.reduction_rate))
    for index in select_layers(cfg.layers, upstream.num_layers):
        for slot in adapter_slots(cfg.style, cfg.placement):
            adapter = make_adapter(
                upstream.hidden_dim, bottleneck, cfg.adapter_type, cfg.kernel_size, cfg.activation, cfg.scale, True,
                cfg.init, cfg.module_norm,
            )
            setattr(upstream.layer_ext[index], slot, adapter)
            added.append(adapter)
    return added


def apply_sv_adapter(upstream: nn.Module, cfg: SVAdapterConfig) -> list[nn.Module]:
    """Parallel FFN adapters in the selected blocks + one adapter per hidden state."""
    added = []
    for index in select_layers(cfg.layers, upstream.num_layers):
        adapter = make_adapter(upstream.hidden_dim, cfg.bottleneck, cfg.adapter_type, cfg.kernel_size, cfg.activation, cfg.scale, True)
        upstream.layer_ext[index].ffn_parallel = adapter
        added.append(adapter)
    upstream.hidden_adapters = nn.ModuleList(
        make_adapter(upstream.hidden_dim, cfg.embed_bottleneck, "bottleneck", cfg.kernel_size, cfg.activation, cfg.scale, False)
        for _ in range(upstream.num_hidden)
    )
    added.extend(upstream.hidden_adapters)
    return added


register_method("adapter", AdapterConfig, apply_adapter, description="Houlsby / Pfeiffer bottleneck adapters")
register_method("sv_adapter", SVAdapterConfig, apply_sv_adapter, description="speaker-verification adapter framework")
