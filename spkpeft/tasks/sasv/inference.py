"""What the SASV task computes per utterance: the speaker embedding, the CM embedding and the CM score.

:class:`SasvOutputs` is one stage-4 module ``forward(wavs, wav_lens) -> (B, D_sv + D_cm + 1)``
over a trained speaker-verification model and a trained countermeasure model (built from their
experiments or exported packages): ``[e_sv, e_cm, s_cm]`` with ``e_sv`` the SV model's
embedding (stage 4 of ``sv``), ``e_cm`` the CM model's embedding before its 2-class layer (the
input of SASV 2022 Baseline 2) and ``s_cm`` its bona fide score (stage 4 of ``cm``:
:func:`spkpeft.tasks.cm.task.bonafide_scores`).  Long utterances are chunked and averaged by
:func:`spkpeft.engine.extract.embed_utterances` like stage 4 (the CM score of the mean of chunk
logits = the mean of chunk scores, the score being linear in the logits).

With ``share=True`` both models must have the same frozen upstream
(:func:`spkpeft.nn.shared_upstream.why_not_shared`) and it runs once per batch
(:class:`~spkpeft.nn.shared_upstream.SharedUpstream`): the same numbers as two separate
passes (the same modules on the same hidden states; tested bit for bit), about half the
upstream cost.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from spkpeft.nn.model import Encoder
from spkpeft.nn.shared_upstream import SharedUpstream, why_not_shared
from spkpeft.tasks.cm.task import bonafide_scores


class SasvOutputs(nn.Module):
    """``(B, D_sv + D_cm + 1)``: SV embedding, CM embedding and CM score (module docstring)."""

    def __init__(self, sv: Encoder, cm: Encoder, share: bool = False) -> None:
        super().__init__()
        self.sv, self.cm = sv, cm
        self.shared = SharedUpstream([sv, cm]) if share else None

    @property
    def dims(self) -> tuple[int, int]:
        """``(D_sv, D_cm)``."""
        return self.sv.head.embed_dim, self.cm.head.embed_dim

    def forward(self, wavs: Tensor, wav_lens: Tensor) -> Tensor:
        if self.shared is not None:
            e_sv, e_cm = self.shared(wavs, wav_lens)
        else:
            e_sv, e_cm = self.sv.embed(wavs, wav_lens), self.cm.embed(wavs, wav_lens)
        score = bonafide_scores(self.cm.classifier(e_cm).float())
        return torch.cat([e_sv.float(), e_cm.float(), score[:, None]], dim=1)


def can_share(sv: Encoder, cm: Encoder) -> str | None:
    """None when the two models can share one upstream forward, else why not."""
    return why_not_shared(sv, cm)


class SplitOutputs(NamedTuple):
    """The rows of :class:`SasvOutputs` split into their parts."""

    sv: np.ndarray        # (N, D_sv)
    cm_embedding: np.ndarray  # (N, D_cm)
    cm_score: np.ndarray  # (N,)


def split_outputs(rows: np.ndarray, dims: tuple[int, int]) -> SplitOutputs:
    d_sv, d_cm = dims
    if rows.ndim != 2 or rows.shape[1] != d_sv + d_cm + 1:
        raise ValueError(f"SASV outputs have {rows.shape[-1]} columns, expected {d_sv} + {d_cm} + 1")
    return SplitOutputs(rows[:, :d_sv], rows[:, d_sv:d_sv + d_cm], rows[:, -1])
