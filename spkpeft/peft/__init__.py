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

LoRA and Spectral-LoRA can be merged into plain weights (:func:`merge_peft`) and unmerged
again, and prefix tuning's MLP folded into plain prefixes: their modules are
:class:`~spkpeft.peft.base.Mergeable`, the one record of which methods merge.  Checkpoints hold
the trainable parameters only (:meth:`spkpeft.nn.model.Encoder.trainable_state_dict`).
"""

from __future__ import annotations

import torch.nn as nn

from spkpeft.errors import SpkpeftError
from spkpeft.peft import adapters, finetune, lora, prompts, spectral_lora  # noqa: F401  (registers the methods)
from spkpeft.peft.adapters import AdapterConfig, SVAdapterConfig
from spkpeft.peft.base import METHODS, Mergeable, PeftConfig, PeftHandle, freeze, is_mergeable, select_layers
from spkpeft.peft.finetune import BitFitConfig, FrozenConfig, FullFinetuneConfig
from spkpeft.peft.lora import LoRAConfig, LoRALinear  # noqa: F401  (the wrapper classes, for users)
from spkpeft.peft.prompts import PrefixConfig, PrefixKeyValues, PromptConfig  # noqa: F401
from spkpeft.peft.spectral_lora import SpectralLoRAConfig, SpectralLoRALinear  # noqa: F401

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
    "Mergeable",
    "apply_peft",
    "is_mergeable",
    "merge_peft",
    "select_layers",
    "unmerge_peft",
]

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
    spec.build(upstream, cfg)
    upstream.peft_method = cfg.method
    upstream.dropout_while_training = spec.info["upstream_dropout"]
    upstream.train(upstream.training)
    return PeftHandle(cfg.method, upstream)


def _mergeable_modules(upstream: nn.Module) -> list[Mergeable]:
    return [m for m in upstream.modules() if isinstance(m, Mergeable)]


def merge_peft(upstream: nn.Module, unload: bool = False) -> int:
    """Fold the :class:`~spkpeft.peft.base.Mergeable` modules (LoRA / Spectral-LoRA updates into
    the frozen weights, prefix tuning's reparametrisation MLP into plain prefixes); returns how
    many were merged.

    With ``unload`` each is then replaced by its :meth:`~spkpeft.peft.base.Mergeable.unloaded`
    form (the plain ``nn.Linear``, the prefixes without their MLP: the smallest inference
    model, irreversible); otherwise :func:`unmerge_peft` can undo the merge.  Methods without a
    merged form (adapters, prompts) are left as they are, and full fine-tuning / BitFit already
    are plain weights: both return 0.
    """
    modules = _mergeable_modules(upstream)
    for module in modules:
        module.merge()
    if unload:
        for name, module in list(upstream.named_modules()):
            if isinstance(module, Mergeable):
                replacement = module.unloaded()
                if replacement is not module:
                    parent_name, _, attr = name.rpartition(".")
                    setattr(upstream.get_submodule(parent_name) if parent_name else upstream, attr, replacement)
    return len(modules)


def unmerge_peft(upstream: nn.Module) -> int:
    """Undo :func:`merge_peft`; returns how many modules were unmerged."""
    modules = _mergeable_modules(upstream)
    for module in modules:
        module.unmerge()
    return len(modules)
