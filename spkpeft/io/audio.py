"""Audio input/output through soundfile (16 kHz mono float32 throughout)."""

from __future__ import annotations

import io
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


def read_audio(path: str | Path, expected_sr: int = SAMPLE_RATE) -> np.ndarray:
    """Read a mono file as float32 in [-1, 1].

    Errors (one line naming the file): missing, unreadable, empty, more than
    one channel, or a sample rate other than ``expected_sr``.
    """
    return _decode(str(path), path, audio_info(path), expected_sr)


def read_audio_bytes(data: bytes, origin: str, expected_sr: int = SAMPLE_RATE) -> np.ndarray:
    """:func:`read_audio` of an encoded file held in memory (e.g. a tar member); errors name ``origin``."""
    try:
        info = sf.info(io.BytesIO(data))
    except Exception as err:  # soundfile raises RuntimeError / LibsndfileError
        raise file_error(origin, f"cannot read audio header ({err})") from None
    return _decode(io.BytesIO(data), origin, info, expected_sr)


def _decode(source, origin, info, expected_sr: int) -> np.ndarray:
    """Check ``info`` (mono, ``expected_sr``) and decode ``source`` as float32; errors name ``origin``."""
    if info.channels != 1:
        raise file_error(origin, f"expected mono audio, found {info.channels} channels")
    if info.samplerate != expected_sr:
        raise file_error(origin, f"expected sample rate {expected_sr} Hz, found {info.samplerate} Hz")
    try:
        data, _ = sf.read(source, dtype="float32", always_2d=False)
    except Exception as err:
        raise file_error(origin, f"cannot decode audio ({err})") from None
    if data.size == 0:
        raise file_error(origin, "audio file holds no samples")
    return data


def write_audio(path: str | Path, samples: np.ndarray, sr: int = SAMPLE_RATE) -> None:
    """Write 16-bit PCM WAV through the atomic writer (:mod:`spkpeft.io.atomic`)."""
    data = np.asarray(samples, dtype=np.float32)
    write_bytes_atomic(path, lambda handle: sf.write(handle, data, sr, subtype="PCM_16", format="WAV"))
