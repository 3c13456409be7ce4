"""One transformer block of the upstream, with extension points for parameter-efficient methods.

s3prl's WavLM and wav2vec 2.0 / HuBERT blocks (``TransformerSentenceEncoderLayer`` in
``s3prl/upstream/wavlm/WavLM.py`` and ``s3prl/upstream/wav2vec2/wav2vec2_model.py``) share
their layout: ``self_attn`` (``q_proj``, ``k_proj``, ``v_proj``, ``out_proj``),
``self_attn_layer_norm``, ``fc1``, ``fc2``, ``final_layer_norm``, ``dropout1..3`` and a
``layer_norm_first`` switch.  :func:`block_forward` computes the block as s3prl does
(time-first ``(S, B, C)``)::

    post-LN:  x = LN1(x + drop(Att(x) [+ adapters]));  x = LN2(x + drop(FFN(x) [+ adapters]))
    pre-LN:   x = x + drop(Att(LN1(x)) [+ adapters]);  x = x + drop(FFN(LN2(x)) [+ adapters])

with ``FFN(u) = fc2(drop(act(fc1(u))))``.  The optional :class:`LayerExtensions` of the
block add (each an ``nn.Module`` called as ``m(h, key_padding_mask)`` on time-first
``h`` and returning a tensor of the same shape):

* ``attn_parallel(u)``: added to the attention output, ``u`` the attention input;
* ``attn_out(h)``: sequential adapter, ``h <- h + attn_out(h)`` on the attention output;
* ``ffn_parallel(u)``: added to the FFN output, ``u`` the FFN input;
* ``ffn_out(h)``: sequential adapter, ``h <- h + ffn_out(h)`` on the FFN output.

Prompt rows (``num_prompts``) and extra key/value groups (prefixes, :class:`ExtraKV`) are
passed to :func:`~spkpeft.upstream.attention.self_attention`.

:data:`LINEAR_TARGETS` is the per-architecture accessor of the block's linear layers.
"""

from __future__ import annotations

import torch.nn as nn
from torch import Tensor

from spkpeft.errors import SpkpeftError
from spkpeft.upstream.attention import ExtraKV, self_attention

#: target name -> attribute path of the ``nn.Linear`` inside one block (same for all families)
LINEAR_TARGETS: dict[str, str] = {
    "q": "self_attn.q_proj",
    "k": "self_attn.k_proj",
    "v": "self_attn.v_proj",
    "out": "self_attn.out_proj",
    "fc1": "fc1",
    "fc2": "fc2",
}

#: aliases accepted in configs, expanded to :data:`LINEAR_TARGETS` names
TARGET_ALIASES: dict[str, tuple[str, ...]] = {"ffn": ("fc1", "fc2"), "attn": ("q", "k", "v", "out")}


class LayerExtensions(nn.Module):
    """Per-block slots filled by :mod:`spkpeft.peft` (see the module docstring)."""

    SLOTS = ("attn_parallel", "attn_out", "ffn_parallel", "ffn_out")

    def __init__(self) -> None:
        super().__init__()
        for slot in self.SLOTS:
            setattr(self, slot, None)


def expand_targets(targets: list[str]) -> list[str]:
    """Expand aliases (``ffn`` -> ``fc1, fc2``) and drop duplicates, keeping order."""
    out: list[str] = []
    for target in targets:
        for name in TARGET_ALIASES.get(target, (target,)):
            if name not in LINEAR_TARGETS:
                known = ", ".join(list(LINEAR_TARGETS) + list(TARGET_ALIASES))
                raise SpkpeftError(f"unknown projection target '{target}' (expected one of: {known})")
            if name not in out:
                out.append(name)
    return out


def get_linear(layer: nn.Module, target: str) -> nn.Module:
    """The (possibly wrapped) linear module named ``target`` in ``layer``."""
    return layer.get_submodule(LINEAR_TARGETS[target])


def set_linear(layer: nn.Module, target: str, module: nn.Module) -> None:
    """Replace the linear module named ``target`` in ``layer`` by ``module``."""
    parent_path, _, attr = LINEAR_TARGETS[target].rpartition(".")
    parent = layer.get_submodule(parent_path) if parent_path else layer
    setattr(parent, attr, module)


def _activation(layer: nn.Module):
    """The FFN activation; WavLM's GLU variant activates inside ``fc1``."""
    if getattr(layer, "activation_name", None) == "glu":
        return lambda h: h
    return layer.activation_fn


def block_forward(
    layer: nn.Module,
    x: Tensor,
    key_padding_mask: Tensor | None,
    position_bias: Tensor | None,
    ext: LayerExtensions | None = None,
    num_prompts: int = 0,
    prompt_gate: Tensor | None = None,
    extra: list[ExtraKV] | None = None,
) -> tuple[Tensor, Tensor | None]:
    """Run one block on time-first ``x`` ``(P + T, B, C)``; returns ``(x, position_bias)``.

    ``key_padding_mask`` ``(B, T)`` covers the frames only (prompt rows are never padding)."""

    residual = x
    attn_in = layer.self_attn_layer_norm(x) if layer.layer_norm_first else x
    h, position_bias = self_attention(
        layer.self_attn, attn_in, key_padding_mask, position_bias, num_prompts, prompt_gate, extra
    )
    if ext is not None and ext.attn_parallel is not None:
        h = h + ext.attn_parallel(attn_in, key_padding_mask)
    if ext is not None and ext.attn_out is not None:
        h = h + ext.attn_out(h, key_padding_mask)
    x = residual + layer.dropout1(h)
    if not layer.layer_norm_first:
        x = layer.self_attn_layer_norm(x)

    residual = x
    ffn_in = layer.final_layer_norm(x) if layer.layer_norm_first else x
    h = layer.fc2(layer.dropout2(_activation(layer)(layer.fc1(ffn_in))))
    if ext is not None and ext.ffn_parallel is not None:
        h = h + ext.ffn_parallel(ffn_in, key_padding_mask)
    if ext is not None and ext.ffn_out is not None:
        h = h + ext.ffn_out(h, key_padding_mask)
    x = residual + layer.dropout3(h)
    if not layer.layer_norm_first:
        x = layer.final_layer_norm(x)
    return x, position_bias
