"""Embedding computation shared by validation and extraction."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn


#: padded batches are at least this long (25 ms at 16 kHz: the receptive field of the s3prl
#: CNN encoders and one fbank frame), so that a shorter waveform gets its one frame as it
#: would padded beside a longer one; its length still says how many samples are real
MIN_SAMPLES = 400


def pad_batch(wavs: Sequence[np.ndarray], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-pad waveforms to the longest (at least :data:`MIN_SAMPLES`) -> ``(wavs (B, S), lengths (B,))``."""
    longest = max(MIN_SAMPLES, *(w.shape[0] for w in wavs))
    batch = np.zeros((len(wavs), longest), dtype=np.float32)
    for i, w in enumerate(wavs):
        batch[i, : w.shape[0]] = w
    lens = torch.tensor([w.shape[0] for w in wavs], dtype=torch.long)
    return torch.from_numpy(batch).to(device), lens.to(device)


@torch.no_grad()
def embed_waveforms(model: nn.Module, wavs: Sequence[np.ndarray], device: torch.device,
                    max_batch_samples: int = 16000 * 60,
                    progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Embeddings ``(N, E)`` of variable-length waveforms, batched by length.

    Waveforms are sorted by length and grouped so that a padded batch holds at
    most ``max_batch_samples`` samples (at least one waveform per batch);
    ``progress(n)`` is called after each batch with its number of waveforms.
    """
    order = sorted(range(len(wavs)), key=lambda i: wavs[i].shape[0])
    padded = lambda i: max(MIN_SAMPLES, wavs[i].shape[0])  # noqa: E731
    out: list[np.ndarray | None] = [None] * len(wavs)
    batch: list[int] = []

    def flush() -> None:
        x, lens = pad_batch([wavs[i] for i in batch], device)
        emb = model(x, lens).float().cpu().numpy()
        for i, e in zip(batch, emb):
            out[i] = e
        if progress is not None:
            progress(len(batch))
        batch.clear()

    for i in order:
        if batch and (len(batch) + 1) * padded(i) > max_batch_samples:
            flush()
        batch.append(i)
    if batch:
        flush()
    return np.stack(out)  # type: ignore[arg-type]
