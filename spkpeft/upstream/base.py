"""The upstream protocol: what parameter-efficient methods may use of an upstream.

An upstream family (s3prl's WavLM / wav2vec 2.0 / HuBERT in :mod:`spkpeft.upstream.s3prl`, the
Audio Spectrogram Transformer in :mod:`spkpeft.upstream.ast`, the filterbank front end in
:mod:`spkpeft.upstream.fbank`) subclasses :class:`UpstreamBase`, implements its abstract
methods, and registers the class with its config dataclass (:func:`register_family`, which
refuses a class that leaves one unimplemented).  :mod:`spkpeft.peft` imports this module only,
never a family's code, so a method written once works on every family.

What a family provides, as the class (its names, before any model is built):

* :meth:`~UpstreamBase.from_config`: the upstream of an ``upstream:`` section;
* :meth:`~UpstreamBase.check_name`: whether ``upstream.name`` resolves, without building the model;
* :meth:`~UpstreamBase.weights_file`: ``(format, path)`` of the weights a name loads (a file or
  a directory), or None for a family without weights (exported packages copy them), and
  :meth:`~UpstreamBase.name_for_weights`: the name that loads such a copy;

and as the model:

* ``forward(wavs (B, S), wav_lens (B,)) -> (hidden states [(B, T, D)] * (L + 1), lengths (B,))``;
* the transformer blocks (:attr:`num_layers`, :attr:`hidden_dim`, :attr:`num_heads`) and
  their linear projections by **role** (:data:`ROLES`: ``q``, ``k``, ``v``, ``out``,
  ``fc1`` = FFN in, ``fc2`` = FFN out), read and replaced through :meth:`projection` /
  :meth:`set_projection`;
* extension slots its forward honours: per block :class:`LayerExtensions` (adapters around
  the attention and FFN sub-layers), ``prompts`` (tokens prepended to the blocks' input),
  ``prefixes`` (extra keys/values per block, :class:`ExtraKV`), ``hidden_adapters`` (one
  module per hidden state);
* the LayerNorm whose output block ``i`` reads (:meth:`block_input_norm`; None for pre-LN
  blocks), for methods that initialise on the scale of the hidden states, and the final
  LayerNorm of the last hidden state (:meth:`output_norm`; None when there is none);
* its parameters by part: every parameter of the bare model (:meth:`base_parameters`),
  the waveform frontend's (:meth:`frontend_parameters`, e.g. a CNN encoder), named
  (:meth:`named_base_parameters`);
* parameters no method trains (:meth:`fixed_parameters`, e.g. Whisper's sinusoidal position
  table, a buffer in the reference model): full fine-tuning leaves them frozen;
* ``dropout_while_training``: False keeps the bare model in eval mode while training.
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ContextManager, Iterator

import torch
import torch.nn as nn
from torch import Tensor

from spkpeft.errors import SpkpeftError
from spkpeft.registry import Registry, tagged_section

#: projection roles inside one transformer block
ROLES = ("q", "k", "v", "out", "fc1", "fc2")
#: role -> attribute path of the linear layer inside one block of the fairseq layout, which
#: s3prl's WavLM / wav2vec 2.0 / HuBERT and transformers' Whisper (BART-derived) blocks share
FAIRSEQ_ROLE_PATHS: dict[str, str] = {
    "q": "self_attn.q_proj",
    "k": "self_attn.k_proj",
    "v": "self_attn.v_proj",
    "out": "self_attn.out_proj",
    "fc1": "fc1",
    "fc2": "fc2",
}
#: aliases accepted in configs, expanded to roles
ROLE_ALIASES: dict[str, tuple[str, ...]] = {"ffn": ("fc1", "fc2"), "attn": ("q", "k", "v", "out")}
TARGET_CHOICES = ROLES + tuple(ROLE_ALIASES)

#: upstream families: ``upstream.type`` -> its config dataclass and its :class:`UpstreamBase`
#: subclass (the entry's ``build``; :func:`register_family`)
UPSTREAMS = Registry("upstream", tag_key="type")

BASE_MARK = "_spkpeft_base"


@tagged_section(UPSTREAMS)
@dataclass
class UpstreamConfig:
    """``upstream:`` section; ``type`` selects the family (its subclass adds no key today)."""

    type: str = "s3prl"
    name: str = "wavlm_base_plus"
    num_layers: int | None = field(default=None, metadata={"check": lambda v: None if v is None or v > 0 else f"must be > 0, got {v}"})


def expand_roles(targets: list[str]) -> list[str]:
    """Expand aliases (``ffn`` -> ``fc1, fc2``) and drop duplicates, keeping order."""
    out: list[str] = []
    for target in targets:
        for role in ROLE_ALIASES.get(target, (target,)):
            if role not in ROLES:
                raise SpkpeftError(f"unknown projection target '{target}' (expected one of: {', '.join(TARGET_CHOICES)})")
            if role not in out:
                out.append(role)
    return out


@dataclass
class ExtraKV:
    """Extra keys/values (batch-broadcastable ``(B or 1, H, P, d)``) of one block's attention;
    ``gate`` ``(H,)`` for the zero-initialised gated form, None for a joint softmax."""

    keys: Tensor
    values: Tensor
    gate: Tensor | None = None


class LayerExtensions(nn.Module):
    """Per-block slots filled by :mod:`spkpeft.peft`; each a module ``m(h, key_padding_mask)``
    on time-first ``h`` returning a tensor of the same shape:

    * ``attn_parallel(u)``: added to the attention output, ``u`` the attention input;
    * ``attn_out(h)``: sequential adapter, ``h <- h + attn_out(h)`` on the attention output;
    * ``ffn_parallel(u)``: added to the FFN output, ``u`` the FFN input;
    * ``ffn_out(h)``: sequential adapter, ``h <- h + ffn_out(h)`` on the FFN output.
    """

    SLOTS = ("attn_parallel", "attn_out", "ffn_parallel", "ffn_out")

    def __init__(self) -> None:
        super().__init__()
        for slot in self.SLOTS:
            setattr(self, slot, None)


def extend_sublayer(ext: LayerExtensions | None, sublayer: str, h: Tensor, u: Tensor,
                    key_padding_mask: Tensor | None) -> Tensor:
    """The output ``h`` of a block's ``sublayer`` (``attn`` or ``ffn``) with its slots applied:
    ``h + <sublayer>_parallel(u)`` (``u`` the sub-layer's input), then ``h + <sublayer>_out(h)``."""
    if ext is None:
        return h
    parallel, out = getattr(ext, f"{sublayer}_parallel"), getattr(ext, f"{sublayer}_out")
    if parallel is not None:
        h = h + parallel(u, key_padding_mask)
    if out is not None:
        h = h + out(h, key_padding_mask)
    return h


class UpstreamBase(nn.Module, metaclass=abc.ABCMeta):
    """Base class of every upstream family (see the module docstring).

    A family's ``__init__`` sets ``self.layer_ext = nn.ModuleList(LayerExtensions() ...)``
    (one per block) and calls :meth:`mark_base_parameters` once its model is in place.
    """

    def __init__(self) -> None:
        super().__init__()
        self.prompts: nn.Module | None = None
        self.prefixes: nn.Module | None = None
        self.hidden_adapters: nn.ModuleList | None = None
        self.peft_method: str | None = None
        self.dropout_while_training = True

    # ---- the family (class methods) --------------------------------------------------
    @classmethod
    @abc.abstractmethod
    def from_config(cls, cfg: Any) -> "UpstreamBase":
        """The upstream of an ``upstream:`` section (the family's config dataclass)."""

    @classmethod
    @abc.abstractmethod
    def check_name(cls, name: str) -> None:
        """Raise :class:`SpkpeftError` when ``upstream.name`` does not resolve (a missing or
        malformed checkpoint, an unknown hub name), without building the model."""

    @classmethod
    @abc.abstractmethod
    def weights_file(cls, name: str) -> ContextManager[tuple[str, Path] | None]:
        """A context manager giving ``(format, path)`` of the weights that ``name`` loads (a file
        or a directory, valid inside the ``with`` block), or None when the family has no
        weights (the filterbank front end)."""

    @classmethod
    @abc.abstractmethod
    def name_for_weights(cls, fmt: str, path: Path) -> str:
        """The ``upstream.name`` that loads a copy at ``path`` of what :meth:`weights_file` gave
        (``fmt`` as it said)."""

    # ---- structure ---------------------------------------------------------------
    @property
    @abc.abstractmethod
    def num_layers(self) -> int:
        """Transformer blocks (0 for a front end without blocks)."""

    @property
    @abc.abstractmethod
    def hidden_dim(self) -> int:
        """Width of the hidden states."""

    @property
    @abc.abstractmethod
    def num_heads(self) -> int:
        """Attention heads per block."""

    @abc.abstractmethod
    def projection(self, block: int, role: str) -> nn.Module:
        """The (possibly wrapped) linear layer of ``role`` in block ``block``."""

    @abc.abstractmethod
    def set_projection(self, block: int, role: str, module: nn.Module) -> None:
        """Replace the linear layer of ``role`` in block ``block`` by ``module``."""

    @abc.abstractmethod
    def block_input_norm(self, block: int) -> nn.LayerNorm | None:
        """The LayerNorm whose output is block ``block``'s input (post-LN), or None (pre-LN)."""

    def output_norm(self) -> nn.LayerNorm | None:
        """The LayerNorm that produces the last hidden state (pre-LN models' final norm), or None."""
        return None

    @abc.abstractmethod
    def bare_model(self) -> nn.Module:
        """The family's own model (the module whose parameters are the bare upstream's)."""

    @abc.abstractmethod
    def frontend_parameters(self) -> list[nn.Parameter]:
        """Parameters of the waveform frontend (e.g. the CNN feature encoder)."""

    def fixed_parameters(self) -> list[nn.Parameter]:
        """Parameters of the bare model that no method trains (none unless a family says so)."""
        return []

    # ---- derived -------------------------------------------------------------------
    @property
    def num_hidden(self) -> int:
        """Hidden states returned by ``forward`` (blocks + 1)."""
        return self.num_layers + 1

    def mark_base_parameters(self) -> None:
        """Tag the bare model's parameters (call once at load, before any method is applied)."""
        for param in self.bare_model().parameters():
            setattr(param, BASE_MARK, True)

    def named_base_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        """``(name, parameter)`` of the bare model, names relative to :meth:`bare_model`."""
        return self.bare_model().named_parameters()

    def base_parameters(self) -> list[nn.Parameter]:
        """Parameters of the bare upstream (not those added by a PEFT method)."""
        return [p for p in self.parameters() if getattr(p, BASE_MARK, False)]

    def num_base_params(self) -> int:
        return sum(p.numel() for p in self.base_parameters())

    def with_prompts(self, index: int, state: Tensor, carried: int) -> tuple[Tensor, int, Tensor | None]:
        """Prepend block ``index``'s prompt tokens to time-first ``state`` (deep: every block,
        replacing the ``carried`` previous ones; shallow: block 0 only, carried through);
        returns ``(state, P, gate)``, ``gate`` None for a joint softmax."""
        prompts = self.prompts
        if prompts is None:
            return state, 0, None
        if prompts.deep or index == 0:
            tokens = prompts.tokens(index, state.shape[1]).to(state.dtype)  # (P, B, C)
            state = torch.cat([tokens, state[carried:]], dim=0)
            carried = tokens.shape[0]
        return state, carried, prompts.gate(index)

    def train(self, mode: bool = True) -> "UpstreamBase":
        """With ``dropout_while_training`` False (methods that train nothing inside the model,
        e.g. ``frozen``) the bare model stays in eval mode, as in s3prl's downstream runner."""
        super().train(mode)
        if mode and not self.dropout_while_training:
            self.bare_model().eval()
        return self


def register_family(name: str, config: type, family: type[UpstreamBase], description: str = "") -> None:
    """Register an upstream family: ``upstream.type: name`` reads ``config`` and builds
    ``family``; a class that leaves an abstract method of :class:`UpstreamBase` unimplemented is
    refused here, naming them, rather than failing when an experiment is exported."""
    if not (isinstance(family, type) and issubclass(family, UpstreamBase)):
        raise SpkpeftError(f"upstream family '{name}': {family!r} is not a subclass of UpstreamBase")
    missing = sorted(getattr(family, "__abstractmethods__", ()))
    if missing:
        raise SpkpeftError(f"upstream family '{name}' ({family.__name__}) does not implement: {', '.join(missing)}")
    UPSTREAMS.register(name, config, family, description)


def family_of(cfg: UpstreamConfig) -> type[UpstreamBase]:
    """The :class:`UpstreamBase` subclass of ``cfg.type``."""
    return UPSTREAMS.get(cfg.type).build


class PathBlocksUpstream(UpstreamBase):
    """A family whose blocks (``self.model.layers``) hold each role's linear layer at a fixed
    attribute path, :attr:`ROLE_PATHS` (role -> dotted path inside one block)."""

    ROLE_PATHS: dict[str, str] = {}

    @property
    def layers(self) -> nn.ModuleList:
        return self.model.layers

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def projection(self, block: int, role: str) -> nn.Module:
        return self.layers[block].get_submodule(self.ROLE_PATHS[role])

    def set_projection(self, block: int, role: str, module: nn.Module) -> None:
        self.layers[block].set_submodule(self.ROLE_PATHS[role], module)

    def bare_model(self) -> nn.Module:
        return self.model


def build_upstream(cfg: UpstreamConfig) -> UpstreamBase:
    """The upstream of ``cfg`` (family ``cfg.type``)."""
    return family_of(cfg).from_config(cfg)


def check_upstream(cfg: UpstreamConfig) -> None:
    """Check without building the model that ``cfg.name`` resolves (raises the family's error)."""
    family_of(cfg).check_name(cfg.name)


def base_checksum(upstream: UpstreamBase) -> str:
    """sha256 (hex) of the bare upstream's parameters as loaded, before any training.

    Over :meth:`UpstreamBase.base_parameters` in module order, each contributing
    ``"<dtype> <shape>;"`` and then its values' bytes (native little-endian).  It covers
    exactly what the model uses (pre-training-only modules are dropped at load, blocks
    beyond ``upstream.num_layers`` removed), does not depend on how the checkpoint file
    was serialised, and is the same for every PEFT method (their wrappers keep the
    parameter objects and order).  An upstream without parameters (``fbank``) hashes to
    sha256 of nothing.  Call it before trained weights are loaded or a method is merged.
    """
    digest = hashlib.sha256()
    with torch.no_grad():
        for param in upstream.base_parameters():
            tensor = param.detach().cpu().contiguous()
            digest.update(f"{tensor.dtype} {tuple(tensor.shape)};".encode())
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


@contextlib.contextmanager
def upstream_file(cfg: UpstreamConfig) -> Iterator[tuple[str, Path] | None]:
    """``(format, path)`` of the weights that ``cfg`` loads (the family's
    :meth:`UpstreamBase.weights_file`), or None for a family without weights (``fbank``).
    The path stays valid inside the ``with`` block."""
    with family_of(cfg).weights_file(cfg.name) as found:
        yield found


def upstream_name_for_file(cfg: UpstreamConfig, fmt: str, path: Path) -> str:
    """The ``upstream.name`` that loads a copy at ``path`` of what :func:`upstream_file` found
    (``fmt`` as it said): the family's :meth:`UpstreamBase.name_for_weights`."""
    return family_of(cfg).name_for_weights(fmt, path)
