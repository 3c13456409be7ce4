"""Audio input/output through soundfile (16 kHz mono float32 throughout)."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import soundfile as sf

from spkpeft.errors import file_error
from spkpeft.io.atomic import write_bytes_atomic

SAMPLE_RATE = 16000


class AudioInfo(NamedTuple):
    """What a header says: samples per channel, sample rate (Hz), channels."""

    frames: int
    samplerate: int
    channels: int


def audio_info(path: str | Path) -> AudioInfo:
    """Header of an audio file; raises a :class:`SpkpeftError` naming the file if unreadable.

    Opens the file with ``soundfile.SoundFile`` and reads nothing but the header (half the
    CPU time of ``soundfile.info``, which also formats a description of the file).
    """
    path = Path(path)
    if not path.is_file():
        raise file_error(path, "audio file does not exist")
    try:
        with sf.SoundFile(str(path)) as handle:
            return AudioInfo(handle.frames, handle.samplerate, handle.channels)
    except Exception as err:  # soundfile raises RuntimeError / LibsndfileError
        raise file_error(path, f"cannot read audio header ({err})") from None


def read_audio(path: str | Path, expected_sr: int = SAMPLE_RATE) -> np.ndarray:
    """Read a mono file as float32 in [-1, 1].

    Errors (one line naming the file): missing, unreadable, empty, more than
    one channel, or a sample rate other than ``expected_sr``.
    """
    info = audio_info(path)
    if info.channels != 1:
        raise file_error(path, f"expected mono audio, found {info.channels} channels")
    if info.samplerate != expected_sr:
        raise file_error(path, f"expected sample rate {expected_sr} Hz, found {info.samplerate} Hz")
    try:
        data, _ = sf.read(str(path), dtype="float32", always_2d=False)
    except Exception as err:
        raise file_error(path, f"cannot decode audio ({err})") from None
    if data.size == 0:
        raise file_error(path, "audio file holds no samples")
    return data


def write_audio(path: str | Path, samples: np.ndarray, sr: int = SAMPLE_RATE) -> None:
    """Write 16-bit PCM WAV through the atomic writer (:mod:`spkpeft.io.atomic`)."""
    data = np.asarray(samples, dtype=np.float32)
    write_bytes_atomic(path, lambda handle: sf.write(handle, data, sr, subtype="PCM_16", format="WAV"))
