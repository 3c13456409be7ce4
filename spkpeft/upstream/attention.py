"""Multi-head attention with extra keys/values, shared by the upstream families.

Every family computes its projections ``q = W_q x * d^-1/2``, ``k = W_k x``, ``v = W_v x``
itself (so that wrappers such as LoRA around ``W_q`` are called) and then calls
:func:`attend_with_extras`, which adds what prompt and prefix tuning need.  For heads ``h``,
queries ``i`` and keys ``j`` (``bias`` holds position biases and ``-inf`` at padded keys)::

    A_h = softmax_j( q_hi k_hj^T + bias_hij ) v_hj

Extra keys/values ``(e_p, u_p)`` (:class:`~spkpeft.upstream.base.ExtraKV`) join in one of two ways:

* **joint** (VPT, Jia et al. 2022; prefix tuning, Li & Liang 2021): one softmax over
  ``[extra keys; keys]``, the extra keys never masked and without position bias;
* **gated** (zero-initialised gated attention, LLaMA-Adapter, Zhang et al. 2023): a separate
  softmax over the extra keys scaled by a per-head gate ``g_h`` (0 at init)::

      A_h = softmax_j( q_hi k_hj^T + bias_hij ) v_hj + g_h softmax_p( q_hi e_hp^T ) u_hp

Prompt tokens are the first ``P`` rows of the input: queries, keys and values like the
frames; with a gate their keys leave the frames' softmax and form a gated group.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from spkpeft.upstream.base import ExtraKV


def split_heads(x: Tensor, num_heads: int) -> Tensor:
    """Time-first ``(S, B, C)`` -> ``(B, H, S, C / H)``."""
    seq, batch, dim = x.shape
    return x.reshape(seq, batch, num_heads, dim // num_heads).permute(1, 2, 0, 3)


def merge_heads(x: Tensor) -> Tensor:
    """``(B, H, S, d)`` -> time-first ``(S, B, H * d)``."""
    batch, heads, seq, head_dim = x.shape
    return x.permute(2, 0, 1, 3).reshape(seq, batch, heads * head_dim)


def key_padding_bias(key_padding_mask: Tensor, num_prompt_keys: int, dtype: torch.dtype) -> Tensor:
    """Additive attention bias ``(B, 1, 1, P + T)`` from ``key_padding_mask (B, T)`` (True at
    padded frames): 0 at the ``P`` prompt keys and the valid frames, ``-inf`` at padded frames."""
    mask = F.pad(key_padding_mask, (num_prompt_keys, 0), value=False)
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(mask, float("-inf"))[:, None, None, :]


def attend(q: Tensor, k: Tensor, v: Tensor, bias: Tensor | None, dropout: float) -> Tensor:
    """``softmax(q k^T + bias) v`` (softmax in float32) with attention dropout; ``q`` is already scaled."""
    scores = torch.matmul(q, k.transpose(-1, -2))
    if bias is not None:
        scores = scores + bias
    probs = torch.softmax(scores.float(), dim=-1).to(q.dtype)
    if dropout > 0.0:
        probs = F.dropout(probs, p=dropout, training=True)
    return torch.matmul(probs, v)


def attend_with_extras(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    bias: Tensor | None,
    num_prompts: int = 0,
    prompt_gate: Tensor | None = None,
    extra: list[ExtraKV] | None = None,
    dropout: float = 0.0,
) -> Tensor:
    """Attention of ``(B, H, P + T, d)`` queries/keys/values with prompts and extra groups.

    ``bias`` ``(B|1, H|1, P + T, K)``: ``K`` covers the prompt keys only when they join the
    frames' softmax (``prompt_gate`` None); joint extra groups are prepended to the keys and
    the bias padded with zeros for them.  Returns ``(B, H, P + T, d)``.
    """
    batch = q.shape[0]
    groups = list(extra or [])
    if num_prompts > 0 and prompt_gate is not None:  # gated prompts: their keys leave the frames' softmax
        groups.append(ExtraKV(k[:, :, :num_prompts], v[:, :, :num_prompts], prompt_gate))
        k, v = k[:, :, num_prompts:], v[:, :, num_prompts:]
    joint = [g for g in groups if g.gate is None]
    if joint:
        k = torch.cat([g.keys.expand(batch, -1, -1, -1) for g in joint] + [k], dim=2)
        v = torch.cat([g.values.expand(batch, -1, -1, -1) for g in joint] + [v], dim=2)
        if bias is not None:
            bias = F.pad(bias, (sum(g.keys.shape[2] for g in joint), 0))
    out = attend(q, k, v, bias, dropout)
    for group in groups:
        if group.gate is not None:
            out = out + group.gate.view(1, -1, 1, 1) * attend(q, group.keys, group.values, None, dropout)
    return out
