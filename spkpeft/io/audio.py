"""Audio input/output through soundfile (16 kHz mono float32 throughout)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from spkpeft.errors import file_error
from spkpeft.io.atomic import write_bytes_atomic

SAMPLE_RATE = 16000


def audio_info(path: str | Path) -> sf._SoundFileInfo:
    """Header of an audio file; raises a :class:`SpkpeftError` naming the file if unreadable."""
    path = Path(path)
    if not path.is_file():
        raise file_error(path, "audio file does not exist")
    try:
        return sf.info(str(path))
    except Exception as err:  # soundfile raises RuntimeError / LibsndfileError
        raise file_error(path, f"cannot read audio header ({err})") from None


def load_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Read a mono file at its own sample rate -> ``(float32 samples in [-1, 1], rate)``.

    Errors (one line naming the file): missing, unreadable, empty, more than one channel.
    """
    info = audio_info(path)
    if info.channels != 1:
        raise file_error(path, f"expected mono audio, found {info.channels} channels")
    try:
        data, _ = sf.read(str(path), dtype="float32", always_2d=False)
    except Exception as err:
        raise file_error(path, f"cannot decode audio ({err})") from None
    if data.size == 0:
        raise file_error(path, "audio file holds no samples")
    return data, int(info.samplerate)


def read_audio(path: str | Path, expected_sr: int = SAMPLE_RATE) -> np.ndarray:
    """Read a mono file as float32 in [-1, 1].

    Errors (one line naming the file): missing, unreadable, empty, more than
    one channel, or a sample rate other than ``expected_sr``.
    """
    info = audio_info(path)
    if info.channels == 1 and info.samplerate != expected_sr:
        raise file_error(path, f"expected sample rate {expected_sr} Hz, found {info.samplerate} Hz")
    return load_audio(path)[0]


def resample(samples: np.ndarray, rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    """``samples`` at ``rate`` Hz resampled to ``target`` Hz (float32).

    torchaudio's band-limited sinc interpolation with a Hann window
    (``torchaudio.functional.resample`` defaults: 6 zero crossings, roll-off 0.99);
    unchanged when the rates are equal.
    """
    if rate == target:
        return np.asarray(samples, dtype=np.float32)
    import torch
    import torchaudio.functional as AF

    out = AF.resample(torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)), int(rate), int(target))
    return out.numpy()


def write_audio(path: str | Path, samples: np.ndarray, sr: int = SAMPLE_RATE) -> None:
    """Write 16-bit PCM WAV through the atomic writer (:mod:`spkpeft.io.atomic`)."""
    data = np.asarray(samples, dtype=np.float32)
    write_bytes_atomic(path, lambda handle: sf.write(handle, data, sr, subtype="PCM_16", format="WAV"))
