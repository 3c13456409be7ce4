"""Per-epoch validation on held-out training data (never on the test trials).

- ``val_loss``: the training loss on the held-out utterances of training
  speakers (first ``data.val_max_seconds`` of each);
- ``val_eer_pct``: EER of cosine scores over all pairs of the held-out
  speakers' utterances (a fixed random subset of at most ``MAX_VAL_TRIALS``).
  When utterance ids have the VoxCeleb form ``spk/session/utt``, pairs from
  one session are left out, as in the official trial lists: same-session
  pairs share the channel and would make the validation EER optimistic.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from spkpeft.data.crops import load_utterance
from spkpeft.tasks.sv.data import TrainSplit
from spkpeft.engine.inference import embed_waveforms
from spkpeft.eval.metrics import compute_eer

MAX_VAL_TRIALS = 20000


def session_of(utt: str) -> str | None:
    """``spk/session`` of a VoxCeleb-style id ``spk/session/utt``; None for other ids."""
    parts = utt.split("/")
    return "/".join(parts[:2]) if len(parts) == 3 else None


def validation_pairs(utts: list[str], speakers: list[str], seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index pairs ``i < j`` of the utterances and their target labels (cross-session, subsampled if many)."""
    n = len(speakers)
    i, j = np.triu_indices(n, k=1)
    sessions = [session_of(u) for u in utts]
    if all(sessions):
        sess = np.asarray(sessions)
        keep = sess[i] != sess[j]
        i, j = i[keep], j[keep]
    if i.size > MAX_VAL_TRIALS:
        keep = np.sort(np.random.default_rng(seed).choice(i.size, size=MAX_VAL_TRIALS, replace=False))
        i, j = i[keep], j[keep]
    spk = np.asarray(speakers)
    return i, j, spk[i] == spk[j]


@torch.no_grad()
def validate(trainee: nn.Module, split: TrainSplit, task_cfg, device: torch.device) -> dict[str, float]:
    """``{"val_loss", "val_eer_pct"}`` (NaN where the split holds no such data)."""
    was_training = trainee.training
    trainee.eval()
    result = {"val_loss": float("nan"), "val_eer_pct": float("nan")}
    if split.val_loss_utts:
        wavs = [load_utterance(p, task_cfg.val_max_seconds) for _, p, _ in split.val_loss_utts]
        emb = torch.from_numpy(embed_waveforms(trainee.model, wavs, device)).to(device)
        labels = torch.tensor([label for _, _, label in split.val_loss_utts], device=device)
        loss, _ = trainee.loss(emb, labels)
        result["val_loss"] = float(loss)
    if split.val_eer_utts:
        wavs = [load_utterance(p, task_cfg.val_max_seconds) for _, p, _ in split.val_eer_utts]
        emb = embed_waveforms(trainee.model, wavs, device)
        emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        i, j, labels = validation_pairs([u for u, _, _ in split.val_eer_utts], [s for _, _, s in split.val_eer_utts])
        if labels.any() and not labels.all():
            result["val_eer_pct"] = 100.0 * compute_eer(np.einsum("ij,ij->i", emb[i], emb[j]), labels)
    trainee.train(was_training)
    return result
