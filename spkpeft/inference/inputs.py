"""Audio given to a trained model: a file path, a NumPy array or a torch tensor -> 16 kHz mono float32.

* a path (``str`` / ``pathlib.Path``): read with :func:`spkpeft.io.audio.load_audio` (missing,
  unreadable, empty or multi-channel files are errors naming the file) at the file's own rate;
* an array or tensor: 1-D samples, or ``(1, S)`` / ``(S, 1)``; anything with more than one
  channel is refused (pass several waveforms as a list); its rate is ``sample_rate``
  (default 16 kHz).

Audio at another rate is **resampled** to 16 kHz (:func:`spkpeft.io.audio.resample`,
torchaudio's windowed-sinc interpolation) rather than refused: a user's 8 kHz telephone or
44.1 kHz recording is embedded without a conversion step.  (The recipe's stages 3-4 keep
refusing non-16 kHz data directories: a corpus is converted once, on purpose.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Union

import numpy as np
import torch

from spkpeft.errors import SpkpeftError
from spkpeft.io.audio import SAMPLE_RATE, load_audio, resample

Audio = Union[str, Path, np.ndarray, torch.Tensor]


def is_single(audio: Any) -> bool:
    """Whether ``audio`` is one waveform (a path, array or tensor) rather than a list of them."""
    return isinstance(audio, (str, Path, np.ndarray, torch.Tensor))


def describe(audio: Audio) -> str:
    """A short name of an input for error messages."""
    return str(audio) if isinstance(audio, (str, Path)) else f"<{type(audio).__name__} of shape {tuple(audio.shape)}>"


def to_waveform(audio: Audio, sample_rate: int | None = None) -> np.ndarray:
    """``audio`` as 16 kHz mono float32 samples (see the module docstring)."""
    if isinstance(audio, (str, Path)):
        if sample_rate is not None:
            raise SpkpeftError(f"{audio}: sample_rate applies to arrays; a file's rate is read from its header")
        samples, rate = load_audio(audio)
        return resample(samples, rate)
    if isinstance(audio, torch.Tensor):
        audio = audio.detach().cpu().float().numpy()
    if not isinstance(audio, np.ndarray):
        raise SpkpeftError(f"expected a file path, a NumPy array or a torch tensor, got {type(audio).__name__}")
    samples = np.asarray(audio, dtype=np.float32)
    if samples.ndim == 2 and 1 in samples.shape:
        samples = samples.reshape(-1)
    if samples.ndim != 1:
        raise SpkpeftError(f"{describe(audio)}: expected mono audio (1-D samples), got shape {samples.shape}; "
                           f"stereo is refused (mix or pick a channel), several waveforms go in a list")
    if samples.size == 0:
        raise SpkpeftError(f"{describe(audio)}: holds no samples")
    if not np.isfinite(samples).all():
        raise SpkpeftError(f"{describe(audio)}: holds non-finite samples")
    rate = SAMPLE_RATE if sample_rate is None else int(sample_rate)
    if rate <= 0:
        raise SpkpeftError(f"sample_rate must be > 0, got {sample_rate}")
    return resample(samples, rate)
