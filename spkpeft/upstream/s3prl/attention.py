"""Self-attention of s3prl's WavLM / wav2vec 2.0 / HuBERT blocks, re-expressed with module calls.

s3prl's ``MultiheadAttention`` classes hand their projection *weights* to
``F.multi_head_attention_forward``, so a wrapper placed around ``q_proj`` (LoRA,
Spectral-LoRA) would never be called.  :func:`self_attention` computes the same
function but calls ``attn.q_proj(x)``, ``attn.k_proj(x)``, ``attn.v_proj(x)`` and
``attn.out_proj(.)`` as modules, and takes extra keys/values for prompt and prefix tuning.

For heads ``h`` with dimension ``d``, queries ``i`` and frame keys ``j``, the bare model is::

    A_h = softmax_j( q_hi k_hj^T / sqrt(d) + bias_hij + mask_j ) v_hj,    out = W_o concat_h(A_h) + b_o

Extra keys/values ``(e_p, u_p)`` (prompt tokens, or the learned prefix of the block) join
the attention in one of two ways:

* **joint** (the published prompt and prefix tuning: VPT, Jia et al. 2022; Li & Liang 2021):
  one softmax over ``[extra keys; frame keys]``::

      A_h = softmax over (p, j) of [ q_hi e_hp^T / sqrt(d) ;  q_hi k_hj^T / sqrt(d) + bias_hij + mask_j ] . [u_hp ; v_hj]

  the extra keys get no position bias and are never masked;
* **gated** (zero-initialised gated attention, LLaMA-Adapter, Zhang et al. 2023): a separate
  softmax over the extra keys, scaled by a per-head gate ``g_h`` (0 at init, so the model is
  unchanged at step 0)::

      A_h = softmax_j( q_hi k_hj^T / sqrt(d) + bias_hij + mask_j ) v_hj + g_h softmax_p( q_hi e_hp^T / sqrt(d) ) u_hp

The prompt / prefix mechanics are shared with the other families
(:func:`spkpeft.upstream.attention.attend_with_extras`).  Prompt tokens are also queries (their rows are the first ``P`` rows of the input; they get
no position bias).  WavLM's relative position bias ``bias_hij`` is computed from the number
of *real* frames only (the first layer computes it, later layers reuse it, exactly as in
s3prl), optionally rescaled per query by the gated relative-position unit (``gru_rel_pos``).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from spkpeft.upstream.attention import attend_with_extras, key_padding_bias, merge_heads, split_heads
from spkpeft.upstream.base import ExtraKV

__all__ = ["ExtraKV", "attention_bias", "gated_position_bias", "merge_heads", "self_attention", "split_heads"]


def relative_position_bias(attn: nn.Module, length: int) -> Tensor:
    """WavLM's bucketed relative position bias for ``length`` frames: ``(H, T, T)``."""
    return attn.compute_bias(length, length)


def gated_position_bias(attn: nn.Module, query_input: Tensor, position_bias: Tensor) -> Tensor:
    """Apply WavLM's gated relative position unit (``gru_rel_pos``) to ``position_bias``.

    With ``x_hi`` the head-``h`` slice of the attention input at frame ``i``::

        (a, b) = sigmoid(sum over groups of 4 of grep_linear(x_hi))
        bias'_hij = (a * (b * grep_a_h - 1) + 2) * bias_hij

    ``query_input``: time-first ``(T, B, C)``; returns ``(B, H, T, T)``.
    """
    if not getattr(attn, "gru_rel_pos", False):
        return position_bias.unsqueeze(0)
    heads = split_heads(query_input, attn.num_heads)  # (B, H, T, d)
    batch, num_heads, length, _ = heads.shape
    gates = attn.grep_linear(heads).view(batch, num_heads, length, 2, 4).sum(-1)
    gate_a, gate_b = torch.sigmoid(gates).chunk(2, dim=-1)
    scale = gate_a * (gate_b * attn.grep_a - 1.0) + 2.0  # (B, H, T, 1)
    return scale * position_bias.unsqueeze(0)


def attention_dropout(attn: nn.Module) -> float:
    """The attention-probability dropout rate of ``attn`` while training, else 0."""
    if not attn.training:
        return 0.0
    return float(attn.dropout_module.p)


def attention_bias(
    attn: nn.Module,
    frames_in: Tensor,
    key_padding_mask: Tensor | None,
    position_bias: Tensor | None,
    num_prompts: int,
    joint_prompts: bool,
    dtype: torch.dtype,
) -> tuple[Tensor | None, Tensor | None]:
    """``(bias, position_bias)`` for ``P`` prompt rows followed by ``T`` frames.

    ``bias`` ``(B|1, H|1, P + T, K)`` (or None when there is nothing to add) holds WavLM's
    (gated) relative position bias between frames, 0 for prompt queries and prompt keys,
    and ``-inf`` at padded frame keys for every query.  ``K = P + T`` when the prompt keys
    join the softmax (``joint_prompts``), else ``T``.  ``frames_in``: time-first ``(T, B, C)``.
    """
    length = frames_in.shape[0]
    if position_bias is None and getattr(attn, "has_relative_attention_bias", False):
        position_bias = relative_position_bias(attn, length)
    prompt_keys = num_prompts if joint_prompts else 0
    bias = None
    if position_bias is not None:
        bias = gated_position_bias(attn, frames_in, position_bias)  # (B|1, H, T, T)
        bias = F.pad(bias, (prompt_keys, 0, num_prompts, 0))
    if key_padding_mask is not None:
        neg = key_padding_bias(key_padding_mask, prompt_keys, dtype)
        bias = neg if bias is None else bias + neg
    return bias, position_bias


def self_attention(
    attn: nn.Module,
    x: Tensor,
    key_padding_mask: Tensor | None,
    position_bias: Tensor | None,
    num_prompts: int = 0,
    prompt_gate: Tensor | None = None,
    extra: list[ExtraKV] | None = None,
) -> tuple[Tensor, Tensor | None]:
    """Multi-head self-attention of one block (see the module docstring for the formulas).

    Args:
        attn: s3prl ``MultiheadAttention`` (WavLM or wav2vec 2.0 flavour).
        x: time-first input ``(P + T, B, C)``; the first ``num_prompts`` rows are prompt tokens.
        key_padding_mask: ``(B, T)``, True at padded frames (frames only), or None.
        position_bias: WavLM bias ``(H, T, T)`` from an earlier layer, or None.
        num_prompts: ``P``; their keys/values join the frames' (``prompt_gate`` None: joint
            softmax) or form a gated group (``prompt_gate`` ``(H,)``).
        extra: further key/value groups (prefix tuning), joint or gated by their ``gate``.

    Returns:
        ``(out (P + T, B, C), position_bias)`` where the bias is passed on to the next layer.
    """
    num_heads = attn.num_heads
    q = split_heads(attn.q_proj(x) * attn.scaling, num_heads)
    k = split_heads(attn.k_proj(x), num_heads)
    v = split_heads(attn.v_proj(x), num_heads)
    joint_prompts = num_prompts > 0 and prompt_gate is None
    bias, position_bias = attention_bias(
        attn, x[num_prompts:], key_padding_mask, position_bias, num_prompts, joint_prompts, q.dtype
    )
    out = attend_with_extras(q, k, v, bias, num_prompts, prompt_gate, extra, attention_dropout(attn))
    return attn.out_proj(merge_heads(out)), position_bias
