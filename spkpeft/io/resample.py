"""Converting audio files to 16 kHz mono 16-bit WAV once, in parallel and resumably.

Resampling is polyphase filtering (``scipy.signal.resample_poly``, its default Kaiser
window with beta 5): a signal of ``N`` samples at ``sr_in`` Hz becomes ``ceil(N up / down)``
samples at ``sr_out``, where ``up / down = sr_out / sr_in`` in lowest terms (44.1 kHz -> 16 kHz:
``up = 160``, ``down = 441``, so a 5-s ESC-50 clip of 220,500 samples gives 80,000).  The
output is clipped to ``[-1, 1]`` (the filter can overshoot) and written as PCM_16 through
:func:`spkpeft.io.audio.write_audio`: a temporary ``.<name>.tmp<pid>`` file, fsynced and
renamed, so a file under its final name is always complete.

Resuming: a destination that exists with the expected header (``sr_out``, mono, the length
above for the source's header) is finished and skipped; anything else is converted again,
and the temporary files a killed run left are deleted first.
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from spkpeft.errors import file_error
from spkpeft.io.atomic import remove_stale_temps
from spkpeft.io.audio import SAMPLE_RATE, AudioInfo, audio_info, write_audio


@dataclass(frozen=True)
class ConvertJob:
    """One source file and the 16 kHz WAV it becomes."""

    src: Path
    dest: Path


def rate_ratio(sr_in: int, sr_out: int = SAMPLE_RATE) -> tuple[int, int]:
    """``(up, down)``: ``sr_out / sr_in`` in lowest terms."""
    frac = Fraction(sr_out, sr_in)
    return frac.numerator, frac.denominator


def resampled_length(frames: int, sr_in: int, sr_out: int = SAMPLE_RATE) -> int:
    """``ceil(frames * up / down)``: the length :func:`resample` returns."""
    up, down = rate_ratio(sr_in, sr_out)
    return -(-frames * up // down)


def resample(x: np.ndarray, sr_in: int, sr_out: int = SAMPLE_RATE) -> np.ndarray:
    """Polyphase resampling of a mono signal from ``sr_in`` to ``sr_out`` (float64 in, float64 out)."""
    up, down = rate_ratio(sr_in, sr_out)
    if up == down:
        return np.asarray(x, dtype=np.float64).copy()
    return resample_poly(np.asarray(x, dtype=np.float64), up, down)


def _source_info(src: Path) -> AudioInfo:
    info = audio_info(src)
    if info.channels != 1:
        raise file_error(src, f"expected mono audio, found {info.channels} channels")
    if info.frames == 0:
        raise file_error(src, "audio file holds no samples")
    return info


def is_done(job: ConvertJob, sr_out: int = SAMPLE_RATE) -> bool:
    """True when ``job.dest`` is a finished conversion of ``job.src`` (header check, see the module)."""
    if not job.dest.is_file():
        return False
    src = _source_info(job.src)
    try:
        dest = sf.info(str(job.dest))
    except Exception:  # a truncated or foreign file: convert again
        return False
    return (dest.samplerate == sr_out and dest.channels == 1
            and dest.frames == resampled_length(src.frames, src.samplerate, sr_out))


def convert_file(job: ConvertJob, sr_out: int = SAMPLE_RATE) -> None:
    """Read ``job.src`` (mono, any rate soundfile reads), resample to ``sr_out``, write ``job.dest`` atomically."""
    info = _source_info(job.src)
    try:
        x, _ = sf.read(str(job.src), dtype="float64", always_2d=False)
    except Exception as err:
        raise file_error(job.src, f"cannot decode audio ({err})") from None
    y = np.clip(resample(x, info.samplerate, sr_out), -1.0, 1.0)
    write_audio(job.dest, y.astype(np.float32), sr_out)


def convert_files(jobs: Sequence[ConvertJob], nj: int = 1, sr_out: int = SAMPLE_RATE) -> int:
    """Convert every job not finished yet, ``nj`` at a time; returns how many were converted.

    Stale temporary files in the destination directories are removed first; a failure
    stops with the first failing file named (finished files stay, so a rerun resumes).
    """
    for directory in sorted({job.dest.parent for job in jobs}):
        remove_stale_temps(directory)
    todo = [job for job in jobs if not is_done(job, sr_out)]
    step = max(500, len(todo) // 20)
    pool = ThreadPoolExecutor(max_workers=max(1, nj))
    try:
        for done, _ in enumerate(pool.map(lambda job: convert_file(job, sr_out), todo), 1):
            if done % step == 0:
                print(f"converted {done} of {len(todo)} files", file=sys.stderr, flush=True)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return len(todo)

