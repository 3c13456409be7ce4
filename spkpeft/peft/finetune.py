"""Frozen upstream, full fine-tuning and BitFit: methods that only choose what to unfreeze.

* ``frozen``: no upstream parameter trains (SUPERB protocol; only the layer aggregation
  and the head learn); the upstream always runs in eval mode (no dropout), as in s3prl's
  downstream runner; ``train_output_norm`` also trains the final LayerNorm of the last
  hidden state (the linear probe of the PETL-AST study, Cappellazzo et al., arXiv 2312.03694);
* ``full_ft``: every upstream parameter trains, optionally keeping the CNN feature
  encoder frozen (``freeze_cnn``, the usual wav2vec 2.0 fine-tuning recipe);
* ``bitfit`` (Ben Zaken et al., 2022): only the bias terms train (linear, convolution and
  LayerNorm biases), those of the CNN feature encoder only with ``include_cnn``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn as nn

from spkpeft.errors import SpkpeftError
from spkpeft.peft.base import PeftConfig, register_method


@dataclass
class FrozenConfig(PeftConfig):
    """``peft.method: frozen``."""

    method: str = "frozen"
    train_output_norm: bool = False


@dataclass
class FullFinetuneConfig(PeftConfig):
    """``peft.method: full_ft``."""

    method: str = "full_ft"
    freeze_cnn: bool = True


@dataclass
class BitFitConfig(PeftConfig):
    """``peft.method: bitfit``."""

    method: str = "bitfit"
    include_cnn: bool = False


def apply_frozen(upstream: nn.Module, cfg: FrozenConfig) -> list[nn.Module]:
    """:func:`spkpeft.peft.apply_peft` has frozen the upstream; ``train_output_norm``
    unfreezes its final LayerNorm."""
    if cfg.train_output_norm:
        norm = upstream.output_norm()
        if norm is None:
            raise SpkpeftError("peft.train_output_norm: this upstream has no final LayerNorm "
                               "(post-LN, truncated, or without blocks)")
        norm.requires_grad_(True)
    return []


def apply_full_ft(upstream: nn.Module, cfg: FullFinetuneConfig) -> list[nn.Module]:
    """Unfreeze every upstream parameter (except the CNN encoder with ``freeze_cnn``, and the
    family's :meth:`~spkpeft.upstream.base.UpstreamBase.fixed_parameters`)."""
    keep = {id(p) for p in upstream.frontend_parameters()} if cfg.freeze_cnn else set()
    keep |= {id(p) for p in upstream.fixed_parameters()}
    for param in upstream.base_parameters():
        if id(param) not in keep:
            param.requires_grad_(True)
    return []


def apply_bitfit(upstream: nn.Module, cfg: BitFitConfig) -> list[nn.Module]:
    """Unfreeze every ``*.bias`` parameter (CNN biases only with ``include_cnn``)."""
    frontend = set() if cfg.include_cnn else {id(p) for p in upstream.frontend_parameters()}
    for name, param in upstream.named_base_parameters():
        if name.endswith("bias") and id(param) not in frontend:
            param.requires_grad_(True)
    return []


register_method("frozen", FrozenConfig, apply_frozen, description="frozen upstream", upstream_dropout=False,
                needs_blocks=False)
register_method("full_ft", FullFinetuneConfig, apply_full_ft, description="full fine-tuning", needs_blocks=False)
register_method("bitfit", BitFitConfig, apply_bitfit, description="biases only")
