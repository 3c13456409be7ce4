"""Spectral-LoRA: additive low-rank tuning of the top singular vectors of a weight.

With the SVD ``W = U S V^T`` (``W``: ``m x n``, any shape) and its top-``r`` part
``U_r`` (``m x r``), ``S_r``, ``V_r`` (``n x r``), only that singular subspace is adapted::

    U_r' = U_r + A_u B_u      A_u: m x k (random),  B_u: k x r (zeros)
    V_r' = V_r + A_v B_v      A_v: n x k (random),  B_v: k x r (zeros)
    W'   = (W - U_r S_r V_r^T) + U_r' S_r V_r'^T

The residual ``W - U_r S_r V_r^T`` and ``U_r, S_r, V_r`` are frozen; ``A_u, B_u, A_v, B_v``
(inner rank ``k``) are trained: ``k (m + n) + 2 k r`` parameters per matrix.

The forward never materialises ``W'`` as a new parameter (re-wrapping a rebuilt weight in
``nn.Parameter`` detaches it from the factors, which then never train).  It computes::

    y = W x + b + U_r' S_r V_r'^T x - U_r S_r V_r^T x

(the residual kept implicitly as ``W`` minus the frozen top-``r`` term).  At initialisation
``U_r' = U_r`` and ``V_r' = V_r`` exactly, so the two low-rank terms are computed by the
same operations on the same values and cancel bit-for-bit: training starts exactly from
``W``.  Merging sets ``W <- W - U_r S_r V_r^T + U_r' S_r V_r'^T``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn
from torch import Tensor

from spkpeft.errors import SpkpeftError
from spkpeft.peft.base import LayerSpec, MethodSpec, PeftConfig, layers_field, positive_field, register_method
from spkpeft.peft.lora import TARGET_CHOICES, MergeableDelta, wrap_linears


@dataclass
class SpectralLoRAConfig(PeftConfig):
    """``peft.method: spectral_lora``."""

    method: str = "spectral_lora"
    top_r: int = positive_field(32)
    rank: int = positive_field(4)
    targets: list[str] = field(default_factory=lambda: ["q", "v"], metadata={"choices": TARGET_CHOICES})
    layers: LayerSpec = layers_field()


class SpectralLoRALinear(MergeableDelta, nn.Module):
    """A frozen ``nn.Linear`` whose top-``r`` singular vectors get additive rank-``k`` updates."""

    def __init__(self, base: nn.Linear, top_r: int, rank: int) -> None:
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise SpkpeftError(f"Spectral-LoRA needs an nn.Linear, got {type(base).__name__}")
        out_dim, in_dim = base.weight.shape
        if not 1 <= top_r <= min(out_dim, in_dim):
            raise SpkpeftError(f"Spectral-LoRA top_r must be in [1, {min(out_dim, in_dim)}] for a {out_dim}x{in_dim} weight, got {top_r}")
        if rank < 1:
            raise SpkpeftError(f"Spectral-LoRA rank must be >= 1, got {rank}")
        self.base = base
        weight = base.weight.detach()
        if weight.is_meta:
            u = torch.empty(out_dim, top_r, device="meta")
            s = torch.empty(top_r, device="meta")
            v = torch.empty(in_dim, top_r, device="meta")
        else:
            u_full, s_full, vh_full = torch.linalg.svd(weight.double(), full_matrices=False)
            u, s, v = u_full[:, :top_r], s_full[:top_r], vh_full[:top_r].t()
        dtype = weight.dtype
        self.register_buffer("U", u.to(dtype).contiguous())
        self.register_buffer("S", s.to(dtype).contiguous())
        self.register_buffer("V", v.to(dtype).contiguous())
        device = weight.device
        self.A_u = nn.Parameter(torch.randn(out_dim, rank, device=device, dtype=dtype) / math.sqrt(out_dim))
        self.B_u = nn.Parameter(torch.zeros(rank, top_r, device=device, dtype=dtype))
        self.A_v = nn.Parameter(torch.randn(in_dim, rank, device=device, dtype=dtype) / math.sqrt(in_dim))
        self.B_v = nn.Parameter(torch.zeros(rank, top_r, device=device, dtype=dtype))
        self.merged = False

    @property
    def weight(self) -> Tensor:
        return self.base.weight

    @property
    def bias(self) -> Tensor | None:
        return self.base.bias

    def adapted_factors(self) -> tuple[Tensor, Tensor]:
        """``(U_r + A_u B_u, V_r + A_v B_v)``, differentiable in the four factors."""
        return self.U + self.A_u @ self.B_u, self.V + self.A_v @ self.B_v

    def delta_weight(self) -> Tensor:
        """``U_r' S_r V_r'^T - U_r S_r V_r^T`` (``m x n``)."""
        u_new, v_new = self.adapted_factors()
        return (u_new * self.S) @ v_new.t() - (self.U * self.S) @ self.V.t()

    def forward(self, x: Tensor) -> Tensor:
        y = self.base(x)
        if self.merged:
            return y
        u_new, v_new = self.adapted_factors()
        # difference first: exactly 0 at initialisation, so y is returned unchanged
        delta = ((x @ v_new) * self.S) @ u_new.t() - ((x @ self.V) * self.S) @ self.U.t()
        return y + delta



def apply_spectral_lora(upstream: nn.Module, cfg: SpectralLoRAConfig) -> list[nn.Module]:
    """Wrap the configured projections in :class:`SpectralLoRALinear`."""
    return wrap_linears(upstream, cfg.targets, cfg.layers, lambda lin: SpectralLoRALinear(lin, cfg.top_r, cfg.rank))


register_method(
    MethodSpec(
        "spectral_lora",
        SpectralLoRAConfig,
        apply_spectral_lora,
        mergeable=True,
        description="additive low-rank tuning of the top-r singular vectors",
    )
)
