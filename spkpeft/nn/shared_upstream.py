"""One upstream forward for several task heads: models that share a frozen upstream.

Two trained models (e.g. the speaker-verification and the countermeasure model of a
spoof-aware system) that were both trained with the upstream frozen and untouched (PEFT
method ``frozen``, or a weightless front end such as ``fbank``) compute the same hidden states
from the same audio; only their layer aggregation and head differ.  :class:`SharedUpstream`
runs the upstream once per batch and every model's aggregation and head on its output::

    hidden, lengths = upstream(wavs, wav_lens)                        # once
    outputs_m = head_m(aggregation_m(hidden, lengths), lengths)       # for each model m

which is what each :meth:`spkpeft.nn.model.Encoder.embed` computes on its own, bit for bit
(the same modules on the same tensors), for about the cost of one upstream pass instead of
one per model (measured in ``docs/benchmarks.md``, ``bench/shared_upstream.py``).

:func:`why_not_shared` says why two models cannot share: an upstream changed by a PEFT method
(adapters, LoRA, prompts, ... modify the hidden states), trainable upstream weights (full
fine-tuning, BitFit), or upstreams that differ (class, configuration, parameter or buffer names,
shapes or values, non-persistent buffers included: another checkpoint, another front-end
configuration).  Multi-adapter serving (one
upstream, the adapters switched per model) is not done here.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from spkpeft.errors import SpkpeftError
from spkpeft.nn.model import Encoder

PEFT_PACKAGE = "spkpeft.peft"


def _untouched(encoder: Encoder) -> str | None:
    added = sorted({type(m).__name__ for m in encoder.upstream.modules() if type(m).__module__.startswith(PEFT_PACKAGE)})
    if added:
        return f"upstream carries PEFT modules ({', '.join(added)})"
    if any(p.requires_grad for p in encoder.upstream.parameters()):
        return "upstream has trainable weights"
    return None


def tensors(module: nn.Module) -> dict[str, Tensor]:
    """Every parameter and buffer of ``module``, non-persistent buffers included (a front end's
    filterbank is one)."""
    return {**dict(module.named_parameters()), **dict(module.named_buffers())}


def why_not_shared(a: Encoder, b: Encoder) -> str | None:
    """None when ``a`` and ``b`` compute the same hidden states (frozen, identical upstreams), else the reason."""
    for name, encoder in (("first", a), ("second", b)):
        reason = _untouched(encoder)
        if reason:
            return f"the {name} model's {reason}"
    if type(a.upstream) is not type(b.upstream):
        return f"the upstreams differ ({type(a.upstream).__name__} and {type(b.upstream).__name__})"
    if getattr(a.upstream, "cfg", None) != getattr(b.upstream, "cfg", None):
        return "the upstreams are configured differently (upstream section of the configs)"
    ta, tb = tensors(a.upstream), tensors(b.upstream)
    if list(ta) != list(tb):
        return "the upstreams hold different parameters"
    for key in ta:
        if ta[key].shape != tb[key].shape or not torch.equal(ta[key].cpu(), tb[key].cpu()):
            return f"the upstreams differ in '{key}'"
    return None


class SharedUpstream(nn.Module):
    """``forward(wavs, wav_lens) -> [embeddings of each encoder]`` from one upstream pass."""

    def __init__(self, encoders: Sequence[Encoder]) -> None:
        super().__init__()
        if len(encoders) < 2:
            raise SpkpeftError("a shared upstream serves at least two models")
        for other in encoders[1:]:
            reason = why_not_shared(encoders[0], other)
            if reason:
                raise SpkpeftError(f"the models cannot share one upstream forward: {reason}")
        self.upstream = encoders[0].upstream
        self.encoders = nn.ModuleList(encoders)

    def forward(self, wavs: Tensor, wav_lens: Tensor) -> list[Tensor]:
        hidden, lengths = self.upstream(wavs, wav_lens)
        return [e.head(e.aggregation(hidden, lengths), lengths) for e in self.encoders]
