"""Parameter-efficient fine-tuning methods for :class:`spkpeft.upstream.Upstream`.

``apply_peft(upstream, cfg)`` freezes the upstream, applies the method named by
``cfg.method`` in place and returns a :class:`PeftHandle`.  Methods (``peft.method``):

====================  ==============================================================
``frozen``            frozen upstream (with a learnable layer aggregation downstream)
``full_ft``           full fine-tuning (``freeze_cnn`` keeps the CNN encoder frozen)
``lora``              LoRA on chosen projections (:mod:`.lora`)
``spectral_lora``     top-r singular-vector tuning (:mod:`.spectral_lora`)
``adapter``           Houlsby / Pfeiffer adapters, sequential or parallel (:mod:`.adapters`)
``sv_adapter``        SV adapter framework: parallel block + per-layer output adapters
``prompt``            deep / shallow prompt tuning, joint softmax (:mod:`.prompts`)
``prefix``            prefix tuning with its reparametrisation MLP (:mod:`.prompts`)
``bitfit``            biases only (:mod:`.finetune`)
====================  ==============================================================

Only trainable parameters are saved by :func:`peft_state_dict`; LoRA and Spectral-LoRA
can be merged into plain weights (:func:`merge_peft`) and unmerged again, and prefix
tuning's MLP folded into plain prefixes.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

from spkpeft.errors import SpkpeftError
from spkpeft.peft import adapters, finetune, lora, prompts, spectral_lora  # noqa: F401  (registers the methods)
from spkpeft.peft.adapters import AdapterConfig, SVAdapterConfig
from spkpeft.peft.base import METHODS, PeftConfig, PeftHandle, freeze, select_layers, unfreeze_norms
from spkpeft.peft.finetune import BitFitConfig, FrozenConfig, FullFinetuneConfig
from spkpeft.peft.lora import LoRAConfig, LoRALinear
from spkpeft.peft.prompts import PrefixConfig, PrefixKeyValues, PromptConfig
from spkpeft.peft.spectral_lora import SpectralLoRAConfig, SpectralLoRALinear

__all__ = [
    "METHODS",
    "AdapterConfig",
    "BitFitConfig",
    "FrozenConfig",
    "FullFinetuneConfig",
    "LoRAConfig",
    "PeftConfig",
    "PeftHandle",
    "PrefixConfig",
    "PromptConfig",
    "SVAdapterConfig",
    "SpectralLoRAConfig",
    "apply_peft",
    "load_peft_state_dict",
    "merge_peft",
    "peft_state_dict",
    "select_layers",
    "unmerge_peft",
]

#: wrapped linears whose update folds into the weight
WEIGHT_DELTAS = (LoRALinear, SpectralLoRALinear)
#: every module with ``merge()`` / ``unmerge()`` (prefixes fold their reparametrisation MLP)
MERGEABLE = WEIGHT_DELTAS + (PrefixKeyValues,)


def apply_peft(upstream: nn.Module, cfg: PeftConfig) -> PeftHandle:
    """Freeze ``upstream`` and apply ``cfg.method`` to it in place."""
    if getattr(upstream, "peft_method", None) is not None:
        raise SpkpeftError(f"a PEFT method ({upstream.peft_method}) is already applied to this upstream")
    spec = METHODS.get(cfg.method)
    if not isinstance(cfg, spec.config):
        raise SpkpeftError(f"PEFT method '{cfg.method}' needs a {spec.config.__name__}, got {type(cfg).__name__}")
    if spec.info["needs_blocks"] and upstream.num_layers == 0:
        raise SpkpeftError(f"peft.method '{cfg.method}' adapts transformer blocks, and this upstream has none "
                           f"(use peft.method: frozen)")
    freeze(upstream)
    modules = spec.build(upstream, cfg)
    if cfg.train_norms:
        unfreeze_norms(upstream, cfg.train_norms, select_layers(getattr(cfg, "layers", None), upstream.num_layers))
    upstream.peft_method = cfg.method
    upstream.dropout_while_training = spec.info["upstream_dropout"]
    upstream.train(upstream.training)
    return PeftHandle(cfg.method, upstream, list(modules), spec.info["mergeable"])


def _mergeable_modules(upstream: nn.Module) -> list[nn.Module]:
    return [m for m in upstream.modules() if isinstance(m, MERGEABLE)]


def merge_peft(upstream: nn.Module, unload: bool = False) -> int:
    """Fold LoRA / Spectral-LoRA updates into the frozen weights and prefix tuning's
    reparametrisation MLP into plain prefixes; returns how many modules were merged.

    With ``unload`` the wrappers are then replaced by their plain ``nn.Linear`` and the
    prefix MLP is deleted (smallest inference model, irreversible); otherwise
    :func:`unmerge_peft` can undo the merge.  Methods without a merged form (adapters,
    prompts) are left as they are, and full fine-tuning / BitFit already are plain
    weights: both return 0.
    """
    modules = _mergeable_modules(upstream)
    for module in modules:
        module.merge()
    if unload:
        for name, module in list(upstream.named_modules()):
            if isinstance(module, WEIGHT_DELTAS):
                parent_name, _, attr = name.rpartition(".")
                setattr(upstream.get_submodule(parent_name) if parent_name else upstream, attr, module.base)
            elif isinstance(module, PrefixKeyValues):
                module.unload()
    return len(modules)


def unmerge_peft(upstream: nn.Module) -> int:
    """Undo :func:`merge_peft`; returns how many modules were unmerged."""
    modules = _mergeable_modules(upstream)
    for module in modules:
        module.unmerge()
    return len(modules)


def peft_state_dict(upstream: nn.Module) -> dict[str, Tensor]:
    """The trainable upstream parameters only (PEFT-added or unfrozen), detached copies."""
    return {name: p.detach().clone() for name, p in upstream.named_parameters() if p.requires_grad}


def load_peft_state_dict(upstream: nn.Module, state: dict[str, Tensor]) -> None:
    """Copy ``state`` (from :func:`peft_state_dict`) into the trainable upstream parameters.

    The keys must be exactly the trainable parameter names and the shapes must match.
    """
    params = {name: p for name, p in upstream.named_parameters() if p.requires_grad}
    missing = sorted(set(params) - set(state))
    unexpected = sorted(set(state) - set(params))
    if missing or unexpected:
        raise SpkpeftError(
            "PEFT state dict does not match the model's trainable upstream parameters"
            + (f"; missing: {', '.join(missing[:5])}" + (" ..." if len(missing) > 5 else "") if missing else "")
            + (f"; unexpected: {', '.join(unexpected[:5])}" + (" ..." if len(unexpected) > 5 else "") if unexpected else "")
        )
    with torch.no_grad():
        for name, param in params.items():
            value = state[name]
            if tuple(value.shape) != tuple(param.shape):
                raise SpkpeftError(f"PEFT state dict entry '{name}' has shape {tuple(value.shape)}, expected {tuple(param.shape)}")
            param.copy_(value)
