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
passed to :func:`~spkpeft.upstream.s3prl.attention.self_attention`.  The slots are those of
:class:`spkpeft.upstream.base.LayerExtensions`.

:data:`ROLE_PATHS` locates the block's linear layers by role (:data:`spkpeft.upstream.base.ROLES`).
"""

from __future__ import annotations

import torch.nn as nn
from torch import Tensor

from spkpeft.upstream.base import FAIRSEQ_ROLE_PATHS, ExtraKV, LayerExtensions, extend_sublayer
from spkpeft.upstream.s3prl.attention import self_attention

#: projection role -> attribute path of the ``nn.Linear`` inside one s3prl block (all families)
ROLE_PATHS = FAIRSEQ_ROLE_PATHS


def get_linear(layer: nn.Module, role: str) -> nn.Module:
    """The (possibly wrapped) linear module of ``role`` in ``layer``."""
    return layer.get_submodule(ROLE_PATHS[role])


def set_linear(layer: nn.Module, role: str, module: nn.Module) -> None:
    """Replace the linear module of ``role`` in ``layer`` by ``module``."""
    parent_path, _, attr = ROLE_PATHS[role].rpartition(".")
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
    h = extend_sublayer(ext, "attn", h, attn_in, key_padding_mask)
    x = residual + layer.dropout1(h)
    if not layer.layer_norm_first:
        x = layer.self_attn_layer_norm(x)

    residual = x
    ffn_in = layer.final_layer_norm(x) if layer.layer_norm_first else x
    h = layer.fc2(layer.dropout2(_activation(layer)(layer.fc1(ffn_in))))
    h = extend_sublayer(ext, "ffn", h, ffn_in, key_padding_mask)
    x = residual + layer.dropout3(h)
    if not layer.layer_norm_first:
        x = layer.final_layer_norm(x)
    return x, position_bias
