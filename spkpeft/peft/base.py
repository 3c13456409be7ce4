"""Shared pieces of the PEFT methods: config base class, method registry, handle, layer selection."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch.nn as nn

from spkpeft.errors import SpkpeftError
from spkpeft.registry import Registry, tagged_section

#: a per-layer selection in configs: None/"all", "intermediate", or explicit block indices
LayerSpec = list[int] | str | None
LAYER_SPEC_NAMES = ("all", "intermediate")


def choices(*values: str) -> dict:
    """Field metadata restricting a str (or list-of-str) config field to ``values``."""
    return {"choices": values}


def positive(value: int | float | None) -> str | None:
    """Config check: None or a number > 0."""
    if value is not None and value <= 0:
        return f"must be > 0, got {value}"
    return None


def non_negative(value: int | float) -> str | None:
    """Config check: a number >= 0."""
    return f"must be >= 0, got {value}" if value < 0 else None


def dropout_rate(value: float) -> str | None:
    """Config check: a probability in [0, 1)."""
    return None if 0.0 <= value < 1.0 else f"must be in [0, 1), got {value}"


def layer_spec(value: LayerSpec) -> str | None:
    """Config check of a :data:`LayerSpec` (see :func:`select_layers`)."""
    if isinstance(value, str) and value not in LAYER_SPEC_NAMES:
        return f"must be a list of block indices or one of: {', '.join(LAYER_SPEC_NAMES)}; got '{value}'"
    return None


def layers_field(default: LayerSpec = None) -> Any:
    """A dataclass field holding a :data:`LayerSpec`."""
    return field(default=default, metadata={"check": layer_spec})


def positive_field(default: int | float) -> Any:
    """A dataclass field holding a number > 0."""
    return field(default=default, metadata={"check": positive})


#: the PEFT methods: ``peft.method`` -> config dataclass and ``apply(upstream, cfg) -> added modules``;
#: ``info``: ``upstream_dropout``
#: (the upstream runs in train mode, dropout on, while training; False: always eval mode,
#: for methods that train nothing inside it), ``averageable`` (checkpoint averaging of its
#: parameters averages the model; False for factorised updates ``B A``, whose mean factors
#: do not give the mean update), ``needs_blocks`` (refused on an upstream without
#: transformer blocks, e.g. the fbank front end)
METHODS = Registry("peft", tag_key="method")


@tagged_section(METHODS)
@dataclass
class PeftConfig:
    """``peft:`` section; ``method`` selects the subclass registered in :data:`METHODS`."""

    method: str = "frozen"


def register_method(name: str, config: type, apply: Callable[[nn.Module, PeftConfig], list[nn.Module]],
                    description: str = "", upstream_dropout: bool = True, averageable: bool = True,
                    needs_blocks: bool = True) -> None:
    """Register a PEFT method in :data:`METHODS` (see there for the flags; whether a method
    merges is not a flag: its modules are :class:`Mergeable` or not)."""
    METHODS.register(name, config, apply, description, upstream_dropout=upstream_dropout,
                     averageable=averageable, needs_blocks=needs_blocks)


class Mergeable:
    """A module a method adds whose effect folds into a plain model for inference: the one
    record of which methods merge (LoRA and Spectral-LoRA wrappers, prefix tuning's
    reparametrisation).  ``merge()`` folds it (the forward then gives the same outputs
    faster), ``unmerge()`` undoes that, and ``unloaded()`` returns what replaces it in the
    smallest inference model (irreversible): the plain module it wraps, or itself reduced."""

    def merge(self) -> None:
        raise NotImplementedError

    def unmerge(self) -> None:
        raise NotImplementedError

    def unloaded(self) -> nn.Module:
        raise NotImplementedError


def is_mergeable(module: nn.Module) -> bool:
    """Whether a method applied to ``module`` (an upstream, a model) added a :class:`Mergeable` module."""
    return any(isinstance(m, Mergeable) for m in module.modules())


@dataclass
class PeftHandle:
    """What :func:`spkpeft.peft.apply_peft` did: the method and the upstream's trainable parameters."""

    method: str
    upstream: nn.Module

    @property
    def mergeable(self) -> bool:
        """Whether the method merges (:class:`Mergeable` modules in the upstream)."""
        return is_mergeable(self.upstream)

    def named_trainable_parameters(self) -> list[tuple[str, nn.Parameter]]:
        """``(name, parameter)`` of every trainable upstream parameter (PEFT-added or unfrozen)."""
        return [(n, p) for n, p in self.upstream.named_parameters() if p.requires_grad]

    def num_trainable(self) -> int:
        """Number of trainable upstream parameters."""
        return sum(p.numel() for _, p in self.named_trainable_parameters())


def select_layers(spec: LayerSpec, num_layers: int, key: str = "peft.layers") -> list[int]:
    """Block indices chosen by ``spec``.

    ``None`` or ``"all"``: every block; ``"intermediate"``: blocks ``[L//4, L - L//4)``
    (the middle half of the stack; every block when ``L < 4``); a list: those indices,
    negative ones counting from the end as in Python.
    """
    if spec is None or spec == "all":
        return list(range(num_layers))
    if spec == "intermediate":
        skip = num_layers // 4
        return list(range(skip, num_layers - skip))
    if isinstance(spec, str):
        raise SpkpeftError(f"key '{key}' must be a list of block indices or one of: {', '.join(LAYER_SPEC_NAMES)}; got '{spec}'")
    chosen: list[int] = []
    for index in spec:
        if not -num_layers <= index < num_layers:
            raise SpkpeftError(f"key '{key}': block index {index} is out of range for an upstream with {num_layers} blocks")
        index %= num_layers
        if index not in chosen:
            chosen.append(index)
    return sorted(chosen)


def freeze(module: nn.Module) -> None:
    """Set ``requires_grad=False`` on every parameter of ``module``."""
    for param in module.parameters():
        param.requires_grad_(False)
