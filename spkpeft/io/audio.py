"""Audio input/output through soundfile (16 kHz mono float32 throughout): the one audio reader.

What a file may be, and what each stage does with it:

* **sample formats**: 8-bit (unsigned, WAV), 16-, 24- and 32-bit PCM and 32/64-bit float,
  in any container libsndfile reads (WAV, FLAC, ...); PCM is scaled to [-1, 1) (full scale
  ``2**(bits - 1)``), float samples are passed on as stored (not clipped);
* **sample rate**: stages 2-4 read 16 kHz only and refuse any other rate, naming the file
  (corpus preparation converts once: ``spkpeft.io.resample``); the inference API
  (``spkpeft.load(...).embed(path)``) resamples to 16 kHz (:func:`resample`);
* **channels**: mono only; a file with more channels is refused (mixing or picking a
  channel is the user's decision: ``sox in.wav out.wav remix 1``);
* **length**: a file without samples is refused; one shorter than a frame (fewer than
  400 samples, 25 ms) is read as it is, and the model sees it zero-padded to one frame
  (:data:`spkpeft.engine.inference.MIN_SAMPLES`), its length saying how much is real;
  training repeats a short utterance to fill its crop; a long one is read in windows
  (:meth:`AudioFile.read`), so extraction holds one batch of chunks, not the recording;
* **values**: all-zero (digital silence) files are valid; a NaN or infinite sample (only
  float files can hold one) is an error naming the file and the sample, when the samples
  are read and at stage 2, which decodes the float files of ``wav.scp`` to check them.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import NamedTuple

import numpy as np
import soundfile as sf

from spkpeft.errors import file_error
from spkpeft.io.atomic import buffered, write_bytes_atomic

SAMPLE_RATE = 16000


#: soundfile subtypes that hold floating-point samples (the only ones that can hold NaN / Inf)
FLOAT_SUBTYPES = ("FLOAT", "DOUBLE")


class AudioInfo(NamedTuple):
    """What a header says: samples per channel, sample rate (Hz), channels, sample format."""

    frames: int
    samplerate: int
    channels: int
    subtype: str = ""


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
            return AudioInfo(handle.frames, handle.samplerate, handle.channels, handle.subtype)
    except Exception as err:  # soundfile raises RuntimeError / LibsndfileError
        raise file_error(path, f"cannot read audio header ({err})") from None


def load_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Read a mono file at its own sample rate -> ``(float32 samples in [-1, 1], rate)``.

    Errors (one line naming the file): missing, unreadable, empty, more than one channel.
    """
    audio = AudioFile(path, expected_sr=None)
    return audio.read(), audio.samplerate


def read_audio(path: str | Path, expected_sr: int = SAMPLE_RATE) -> np.ndarray:
    """Read a mono file as float32 in [-1, 1].

    Errors (one line naming the file): missing, unreadable, empty, more than
    one channel, or a sample rate other than ``expected_sr``.
    """
    return AudioFile(path, expected_sr=expected_sr).read()


class AudioFile:
    """A mono audio file (a path, or its bytes held in memory) whose header has been checked;
    :meth:`read` decodes all of it or a window (``soundfile`` seeks: WAV exactly, FLAC from
    the frame holding ``start``), so a training crop need not decode the whole utterance.

    Errors name ``origin`` (default: the path): missing, unreadable header, more than one
    channel, a sample rate other than ``expected_sr`` (any rate when None), no samples,
    a non-finite sample among those read.
    """

    def __init__(self, source: str | Path | bytes, origin: str | Path | None = None,
                 expected_sr: int | None = SAMPLE_RATE) -> None:
        self.source = source if isinstance(source, bytes) else str(source)
        self.origin = origin if origin is not None else source
        if isinstance(source, bytes):
            try:
                info = sf.info(io.BytesIO(source))
            except Exception as err:  # soundfile raises RuntimeError / LibsndfileError
                raise file_error(self.origin, f"cannot read audio header ({err})") from None
            info = AudioInfo(info.frames, info.samplerate, info.channels, info.subtype)
        else:
            info = audio_info(source)
        if info.channels != 1:
            raise file_error(self.origin, f"expected mono audio, found {info.channels} channels")
        if expected_sr is not None and info.samplerate != expected_sr:
            raise file_error(self.origin, f"expected sample rate {expected_sr} Hz, found {info.samplerate} Hz")
        if info.frames == 0:
            raise file_error(self.origin, "audio file holds no samples")
        self.frames = int(info.frames)
        self.samplerate = int(info.samplerate)
        self.subtype = info.subtype

    def read(self, start: int = 0, frames: int = -1) -> np.ndarray:
        """``frames`` samples from ``start`` (all from ``start`` with ``-1``) as float32; fewer
        than asked (a header that overstates the length) or none at all is an error."""
        handle = io.BytesIO(self.source) if isinstance(self.source, bytes) else self.source
        try:
            data, _ = sf.read(handle, start=start, frames=frames, dtype="float32", always_2d=False)
        except Exception as err:
            raise file_error(self.origin, f"cannot decode audio ({err})") from None
        if data.size == 0:
            raise file_error(self.origin, "audio file holds no samples")
        if frames >= 0 and data.shape[0] != frames:
            raise file_error(self.origin, f"holds fewer samples than its header says ({self.frames})")
        check_finite(data, self.origin, start)
        return data


def check_finite(samples: np.ndarray, origin, start: int = 0) -> None:
    """An error naming ``origin`` and the first NaN / infinite sample (counted from 0), if any."""
    if not np.isfinite(samples).all():
        index = int(np.flatnonzero(~np.isfinite(samples))[0])
        raise file_error(origin, f"sample {start + index} is {samples[index]} (NaN or infinite samples are refused)")


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


def write_audio(path: str | Path, samples: np.ndarray, sr: int = SAMPLE_RATE, fmt: str = "WAV") -> None:
    """Write 16-bit PCM (``fmt``: WAV or FLAC) through the atomic writer (:mod:`spkpeft.io.atomic`).

    The file is encoded in memory first: soundfile writing to a Python file object ignores
    the errors of its writes (they happen in a C callback), which would leave a truncated file
    on a full disk."""
    data = np.asarray(samples, dtype=np.float32)
    encoded = buffered(lambda handle: sf.write(handle, data, sr, subtype="PCM_16", format=fmt))
    write_bytes_atomic(path, lambda handle: handle.write(encoded))
