"""Self-attention of s3prl's WavLM / wav2vec 2.0 / HuBERT blocks, re-expressed with module calls.

s3prl's ``MultiheadAttention`` classes hand their projection *weights* to
``F.multi_head_attention_forward``, so a wrapper placed around ``q_proj`` (LoRA,
Spectral-LoRA) would never be called.  :func:`self_attention` computes the same
function but calls ``attn.q_proj(x)``, ``attn.k_proj(x)``, ``attn.v_proj(x)`` and
``attn.out_proj(.)`` as modules, and adds two extension points used by prompt and
prefix tuning.

For heads ``h`` with dimension ``d`` and real (non-prompt) keys ``j``::

    A_h = softmax_j( q_h k_hj^T / sqrt(d) + bias_hij + mask_j ) v_hj           (bare model)
    out = W_o concat_h( A_h + sum_g gate_gh * softmax_p( q_h e_ghp^T / sqrt(d) ) u_ghp ) + b_o

where ``(e_g, u_g)`` are the keys/values of an extra group ``g`` (prompt tokens or a
learned prefix) and ``gate_g`` a per-head gate.  Each extra group gets its *own*
softmax, scaled by its gate (zero-initialised gated attention, as in LLaMA-Adapter),
so a gate of 0 reproduces the bare model exactly, whatever the extra keys are.

WavLM's relative position bias ``bias_hij`` is computed from the number of *real*
frames only (the first layer computes it, later layers reuse it, exactly as in
s3prl), optionally rescaled per query by the gated relative-position unit
(``gru_rel_pos``).  Prompt queries get no position bias; extra keys are position-free.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


@dataclass
class ExtraKV:
    """Extra keys/values (batch-broadcastable ``(B or 1, H, P, d)``) with a per-head gate ``(H,)``."""

    keys: Tensor
    values: Tensor
    gate: Tensor


def split_heads(x: Tensor, num_heads: int) -> Tensor:
    """Time-first ``(S, B, C)`` -> ``(B, H, S, C / H)``."""
    seq, batch, dim = x.shape
    return x.reshape(seq, batch, num_heads, dim // num_heads).permute(1, 2, 0, 3)


def merge_heads(x: Tensor) -> Tensor:
    """``(B, H, S, d)`` -> time-first ``(S, B, H * d)``."""
    batch, heads, seq, head_dim = x.shape
    return x.permute(2, 0, 1, 3).reshape(seq, batch, heads * head_dim)


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


def _attend(q: Tensor, k: Tensor, v: Tensor, bias: Tensor | None, dropout: float) -> Tensor:
    """``softmax(q k^T + bias) v`` with attention dropout; ``q`` is already scaled."""
    scores = torch.matmul(q, k.transpose(-1, -2))
    if bias is not None:
        scores = scores + bias
    probs = torch.softmax(scores.float(), dim=-1).to(q.dtype)
    if dropout > 0.0:
        probs = F.dropout(probs, p=dropout, training=True)
    return torch.matmul(probs, v)


def attention_dropout(attn: nn.Module) -> float:
    """The attention-probability dropout rate of ``attn`` while training, else 0."""
    if not attn.training:
        return 0.0
    return float(attn.dropout_module.p)


def self_attention(
    attn: nn.Module,
    x: Tensor,
    key_padding_mask: Tensor | None,
    position_bias: Tensor | None,
    num_prompts: int = 0,
    prompt_gate: Tensor | None = None,
    extra: list[ExtraKV] | None = None,
) -> tuple[Tensor, Tensor | None]:
    """Multi-head self-attention of one block (see the module docstring for the formula).

    Args:
        attn: s3prl ``MultiheadAttention`` (WavLM or wav2vec 2.0 flavour).
        x: time-first input ``(P + T, B, C)``; the first ``num_prompts`` rows are prompt tokens.
        key_padding_mask: ``(B, P + T)``, True at padded frames (never at prompts), or None.
        position_bias: WavLM bias ``(H, T, T)`` from an earlier layer, or None.
        num_prompts: ``P``; their keys/values form an extra group gated by ``prompt_gate``.
        prompt_gate: ``(H,)`` gate of the prompt group (required when ``P > 0``).
        extra: further gated key/value groups (prefix tuning).

    Returns:
        ``(out (P + T, B, C), position_bias)`` where the bias is passed on to the next layer.
    """
    num_heads = attn.num_heads
    seq = x.shape[0]
    length = seq - num_prompts
    q = split_heads(attn.q_proj(x) * attn.scaling, num_heads)
    k = split_heads(attn.k_proj(x), num_heads)
    v = split_heads(attn.v_proj(x), num_heads)
    groups = list(extra or [])
    if num_prompts > 0:
        if prompt_gate is None:
            raise ValueError("prompt tokens need a prompt gate")
        groups.append(ExtraKV(k[:, :, :num_prompts], v[:, :, :num_prompts], prompt_gate))
        k, v = k[:, :, num_prompts:], v[:, :, num_prompts:]

    if position_bias is None and getattr(attn, "has_relative_attention_bias", False):
        position_bias = relative_position_bias(attn, length)
    bias = None
    if position_bias is not None:
        bias = gated_position_bias(attn, x[num_prompts:], position_bias)  # (B|1, H, T, T)
        if num_prompts > 0:
            bias = F.pad(bias, (0, 0, num_prompts, 0))  # prompt queries: no position bias
    if key_padding_mask is not None:
        real_mask = key_padding_mask[:, num_prompts:]
        neg = torch.zeros(real_mask.shape, dtype=q.dtype, device=q.device)
        neg = neg.masked_fill(real_mask, float("-inf"))[:, None, None, :]
        bias = neg if bias is None else bias + neg

    dropout = attention_dropout(attn)
    out = _attend(q, k, v, bias, dropout)
    for group in groups:
        gated = _attend(q, group.keys, group.values, None, dropout)
        out = out + group.gate.view(1, -1, 1, 1) * gated
    return attn.out_proj(merge_heads(out)), position_bias
