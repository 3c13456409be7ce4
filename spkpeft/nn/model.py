"""The model of every task: upstream (+ PEFT method) -> layer aggregation -> head (-> classifier).

``output = classifier(head(aggregation(upstream(wavs, wav_lens)), lengths))``: the head's
``(B, E)`` embeddings when the task adds no classifier (speaker verification), the logits
``(B, K)`` of a linear classification layer when it does (utterance classification).

Parameter groups (:meth:`Encoder.param_counts`):

* ``upstream``: parameters of the bare upstream (without anything a PEFT method added);
* ``peft``: trainable upstream-side parameters, i.e. PEFT-added modules (LoRA factors,
  adapters including the SV framework's per-layer output adapters, prompts, prefixes)
  and unfrozen upstream weights (full fine-tuning, BitFit);
* ``aggregation`` and ``head``: their trainable parameters (the classifier counts as head);
* ``total``: every parameter of the model (bare upstream + PEFT-added + aggregation + head).
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

from spkpeft.errors import SpkpeftError
from spkpeft.nn.aggregation import build_aggregation
from spkpeft.nn.heads import build_head
from spkpeft.peft import apply_peft, merge_peft, unmerge_peft
from spkpeft.upstream import UpstreamBase, build_upstream


def count(params) -> int:
    """Total number of elements of ``params`` (each tensor counted once)."""
    seen: dict[int, int] = {}
    for p in params:
        seen[id(p)] = p.numel()
    return sum(seen.values())


class Encoder(nn.Module):
    """Waveforms ``(B, S)`` + lengths ``(B,)`` -> embeddings ``(B, E)`` or logits ``(B, K)``."""

    def __init__(self, upstream: UpstreamBase, aggregation: nn.Module, head: nn.Module,
                 classifier: nn.Module | None = None) -> None:
        super().__init__()
        self.upstream = upstream
        self.aggregation = aggregation
        self.head = head
        self.classifier = classifier
        self.upstream_frozen = False  # True: the upstream runs without gradients (a two-phase schedule's first phase)

    @property
    def output_dim(self) -> int:
        """Size of one output vector: the classes with a classifier, else the embedding size."""
        return self.classifier.out_features if self.classifier is not None else self.head.embed_dim

    def embed(self, wavs: Tensor, wav_lens: Tensor) -> Tensor:
        """The head's embeddings ``(B, E)`` (before any classifier)."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.upstream_frozen):
            hidden, lengths = self.upstream(wavs, wav_lens)
        return self.head(self.aggregation(hidden, lengths), lengths)

    def forward(self, wavs: Tensor, wav_lens: Tensor) -> Tensor:
        out = self.embed(wavs, wav_lens)
        return self.classifier(out) if self.classifier is not None else out

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """Trainable parameters by owner: ``peft`` (inside the upstream module) and ``head``
        (aggregation, head, classifier); learning rates follow these groups."""
        upstream = [p for p in self.upstream.parameters() if p.requires_grad]
        own = {id(p) for p in upstream}
        rest = [p for p in self.parameters() if p.requires_grad and id(p) not in own]
        return {"peft": upstream, "head": rest}

    # ------------------------------------------------------------------ parameter groups
    def param_counts(self) -> dict[str, int]:
        """``{"upstream", "peft", "aggregation", "head", "total"}`` (see the module docstring)."""
        trainable = lambda m: [p for p in m.parameters() if p.requires_grad]  # noqa: E731
        return {
            "upstream": self.upstream.num_base_params(),
            "peft": count(trainable(self.upstream)),
            "aggregation": count(trainable(self.aggregation)),
            "head": count(trainable(self.head)) + (count(trainable(self.classifier)) if self.classifier is not None else 0),
            "total": count(self.parameters()),
        }

    def trainable_state_dict(self) -> dict[str, Tensor]:
        """What training changes, as detached copies: every trainable parameter (PEFT,
        aggregation, head) plus the persistent buffers of the modules that own trainable
        parameters and of the aggregation and head (BatchNorm running statistics: without
        them an embedding computed in eval mode would be wrong)."""
        state = {name: p.detach().clone() for name, p in self.named_parameters() if p.requires_grad}
        state.update({name: b.detach().clone() for name, b in self._trained_buffers()})
        return state

    def _trained_buffers(self):
        for prefix, module in self.named_modules():
            owns_trainable = any(p.requires_grad for p in module.parameters(recurse=False))
            if not (owns_trainable or prefix.split(".")[0] in ("aggregation", "head", "classifier")):
                continue
            for name, buf in module.named_buffers(recurse=False):
                if name not in module._non_persistent_buffers_set:
                    yield (f"{prefix}.{name}" if prefix else name), buf

    def load_trainable_state_dict(self, state: dict[str, Tensor]) -> None:
        """Load a :meth:`trainable_state_dict`; keys and shapes must match exactly."""
        targets = {name: p for name, p in self.named_parameters() if p.requires_grad}
        targets.update(dict(self._trained_buffers()))
        missing = sorted(set(targets) - set(state))
        unexpected = sorted(set(state) - set(targets))
        if missing or unexpected:
            raise SpkpeftError(
                "trainable state dict does not match the model"
                + (f"; missing: {', '.join(missing[:5])}" if missing else "")
                + (f"; unexpected: {', '.join(unexpected[:5])}" if unexpected else "")
            )
        with torch.no_grad():
            for name, target in targets.items():
                if tuple(state[name].shape) != tuple(target.shape):
                    raise SpkpeftError(
                        f"trainable state dict entry '{name}' has shape {tuple(state[name].shape)}, "
                        f"expected {tuple(target.shape)}"
                    )
                target.copy_(state[name])

    def merge(self, unload: bool = False) -> int:
        """Fold mergeable PEFT updates (LoRA, Spectral-LoRA) into the weights for inference
        (``unload``: also replace the wrappers by plain ``nn.Linear``; see :func:`merge_peft`)."""
        return merge_peft(self.upstream, unload)

    def unmerge(self) -> int:
        """Undo :meth:`merge`."""
        return unmerge_peft(self.upstream)


def build_model(cfg, num_classes: int | None = None) -> Encoder:
    """Load the upstream, apply the PEFT method, add the aggregation and the head, and with
    ``num_classes`` a linear classification layer (``cfg``: the sections ``upstream``,
    ``peft``, ``aggregation``, ``head``)."""
    upstream = build_upstream(cfg.upstream)
    apply_peft(upstream, cfg.peft)
    aggregation = build_aggregation(cfg.aggregation, upstream.num_hidden, upstream.hidden_dim)
    head = build_head(cfg.head, aggregation.output_dim)
    classifier = nn.Linear(head.embed_dim, num_classes) if num_classes is not None else None
    return Encoder(upstream, aggregation, head, classifier)
