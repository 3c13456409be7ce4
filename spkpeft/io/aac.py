"""Decoding compressed audio (VoxCeleb2's AAC in ``.m4a``) to 16 kHz mono PCM without a system ffmpeg.

PyAV (``av`` on PyPI) ships FFmpeg's libraries in its wheels: the file is demuxed and decoded
by libavformat / libavcodec, then converted by libswresample to signed 16-bit mono at
16 kHz, the conversion ``ffmpeg -i IN -ac 1 -ar 16000 OUT.wav`` applies (down-mix of the
channels, swresample's default filter; source: the PyAV documentation of
``av.AudioResampler``, https://pyav.basswood-io.com/docs/stable/api/audio.html).  The samples
are written as a 16-bit PCM WAV file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from spkpeft.errors import SpkpeftError

TARGET_RATE = 16000


def decode_mono(path: str | Path, sample_rate: int = TARGET_RATE) -> np.ndarray:
    """The first audio stream of ``path`` as ``int16`` mono samples at ``sample_rate``; an error
    naming the file when it cannot be read or holds no audio."""
    import av

    path = Path(path)
    chunks: list[np.ndarray] = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise SpkpeftError(f"{path}: no audio stream")
            resampler = av.AudioResampler(format="s16", layout="mono", rate=sample_rate)
            for frame in container.decode(audio=0):
                chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(frame)]
            chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]  # flush
    except SpkpeftError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as err:
        raise SpkpeftError(f"{path}: cannot decode ({type(err).__name__}: {' '.join(str(err).split())})") from None
    if not chunks or not sum(c.size for c in chunks):
        raise SpkpeftError(f"{path}: no audio samples")
    return np.concatenate(chunks).astype(np.int16, copy=False)


def decode_to_wav(src: str | Path, dest: str | Path, sample_rate: int = TARGET_RATE) -> int:
    """Decode ``src`` (:func:`decode_mono`) into the 16-bit PCM WAV ``dest``; returns the samples written."""
    samples = decode_mono(src, sample_rate)
    sf.write(str(dest), samples, sample_rate, subtype="PCM_16", format="WAV")
    return int(samples.size)
