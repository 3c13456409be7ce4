#!/usr/bin/env python3
"""VoxCeleb2 dev (m4a) -> 16 kHz mono wav -> a Kaldi training directory.

Input layout (the official ``vox2_dev_aac`` release)::

    ROOT/dev/aac/<spk>/<session>/<utt>.m4a     e.g. dev/aac/id00012/21Uxsk56VDQ/00001.m4a
    (or ROOT/aac/<spk>/<session>/<utt>.m4a)

Output::

    WAV_OUT/<spk>/<session>/<utt>.wav   16 kHz mono 16-bit PCM
    DATA_OUT/train/{wav.scp,utt2spk,spk2utt}   utt "spk/session/utt", spk "spk" (replaced as a whole)

The conversion is parallel (``--nj`` at a time) and resumable: a file is converted into
``WAV_OUT/<spk>/<session>/.<utt>.tmp.wav`` and renamed to ``<utt>.wav`` only when the
conversion succeeded, so an existing ``<utt>.wav`` is finished and skipped, and a leftover
temporary file is redone.

The AAC is decoded in-process by PyAV, FFmpeg's libraries from the ``av`` wheel
(:func:`spkpeft.io.aac.decode_to_wav`: down-mix to mono and resampling to 16 kHz by
libswresample, as ``ffmpeg -ac 1 -ar 16000`` does); no system ffmpeg is needed.
``--converter CMD`` (default: the environment variable ``SPKPEFT_M4A_CONVERTER``) runs an
external program instead: ``CMD IN TMP`` must write 16 kHz mono WAV to ``TMP`` (a path ending
in ``.wav``) and exit 0.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from spkpeft.bin._cli import run_main  # noqa: E402
from spkpeft.io.aac import decode_to_wav  # noqa: E402
from spkpeft.io.atomic import new_directory  # noqa: E402
from spkpeft.io.corpora import walk_speaker_sessions  # noqa: E402
from spkpeft.io.datadir import write_data_dir  # noqa: E402
from spkpeft.errors import SpkpeftError  # noqa: E402

CONVERTER_ENV = "SPKPEFT_M4A_CONVERTER"


@dataclass(frozen=True)
class Job:
    """One m4a file and the wav it becomes."""

    utt: str        # spk/session/utt
    src: Path       # .m4a
    dest: Path      # WAV_OUT/spk/session/utt.wav

    @property
    def tmp(self) -> Path:
        """In-progress name: hidden, ends in .wav (a converter may pick the format from the extension)."""
        return self.dest.with_name(f".{self.dest.stem}.tmp.wav")


def find_aac_dir(root: Path) -> Path:
    """``ROOT/dev/aac`` or ``ROOT/aac``."""
    for candidate in (root / "dev" / "aac", root / "aac"):
        if candidate.is_dir():
            return candidate
    raise SpkpeftError(f"{root}: no dev/aac/ or aac/ directory (expected ROOT/dev/aac/<spk>/<session>/<utt>.m4a)")


def scan_m4a(root: Path, wav_out: Path) -> list[Job]:
    """Every ``<spk>/<session>/<utt>.m4a`` under the aac directory, sorted by utterance id."""
    aac = find_aac_dir(root)
    jobs = [Job(utt, Path(path), wav_out.resolve() / f"{utt}.wav") for utt, path in walk_speaker_sessions(aac, ".m4a")]
    if not jobs:
        raise SpkpeftError(f"{aac}: no .m4a files under <spk>/<session>/")
    return sorted(jobs, key=lambda j: j.utt)


def converter_command(converter: str | None) -> list[str] | None:
    """The external converter's argv prefix (checked to be on PATH), or None: PyAV in-process."""
    if not converter:
        return None
    argv = shlex.split(converter)
    if not argv or shutil.which(argv[0]) is None:
        raise SpkpeftError(f"converter '{converter}': program not found")
    return argv


def convert_one(prefix: list[str] | None, job: Job) -> str | None:
    """Convert one file (temporary name, then rename); returns an error message or None."""
    job.dest.parent.mkdir(parents=True, exist_ok=True)
    job.tmp.unlink(missing_ok=True)
    if prefix is None:
        try:
            decode_to_wav(job.src, job.tmp)
        except SpkpeftError as err:
            job.tmp.unlink(missing_ok=True)
            return f"conversion failed: {err}"
        job.tmp.replace(job.dest)
        return None
    res = subprocess.run([*prefix, str(job.src), str(job.tmp)], stdin=subprocess.DEVNULL,
                         capture_output=True, text=True)
    if res.returncode != 0 or not job.tmp.is_file():
        job.tmp.unlink(missing_ok=True)
        detail = (res.stderr.strip().splitlines() or [f"exit status {res.returncode}"])[-1]
        return f"{job.src}: conversion failed: {detail}"
    job.tmp.replace(job.dest)
    return None


def convert_all(jobs: Sequence[Job], prefix: list[str] | None, nj: int) -> int:
    """Convert the jobs whose wav does not exist yet, ``nj`` at a time; returns how many were converted."""
    todo = [job for job in jobs if not job.dest.is_file()]
    step = max(1000, len(todo) // 20)
    errors = []
    with ThreadPoolExecutor(max_workers=max(1, nj)) as pool:
        for done, error in enumerate(pool.map(lambda job: convert_one(prefix, job), todo), 1):
            if error:
                errors.append(error)
            if done % step == 0:
                print(f"converted {done} of {len(todo)} files", file=sys.stderr, flush=True)
    if errors:
        raise SpkpeftError(f"{len(errors)} of {len(todo)} conversions failed (rerun to retry them); "
                           f"first: {errors[0]}")
    return len(todo)


def write_train_dir(jobs: Sequence[Job], data_out: Path) -> None:
    """``DATA_OUT/train`` from the converted wavs, replaced as a whole."""
    dest = data_out / "train"
    with new_directory(dest) as tmp:
        write_data_dir(tmp, {j.utt: str(j.dest) for j in jobs}, {j.utt: j.utt.split("/", 1)[0] for j in jobs})


def prepare(root: Path, wav_out: Path, data_out: Path, nj: int = 1, converter: str | None = None) -> str:
    """Convert and write the training directory; returns a one-line summary."""
    prefix = converter_command(converter)
    jobs = scan_m4a(root, wav_out)
    converted = convert_all(jobs, prefix, nj)
    write_train_dir(jobs, data_out)
    n_spk = len({j.utt.split("/", 1)[0] for j in jobs})
    return (f"{data_out / 'train'}: {len(jobs)} utts / {n_spk} spks; "
            f"converted {converted}, {len(jobs) - converted} already done (wavs in {wav_out})")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="VoxCeleb2 dev (m4a) -> 16 kHz wav -> Kaldi training directory.")
    parser.add_argument("root", type=Path, help="VoxCeleb2 root holding dev/aac/ (or aac/)")
    parser.add_argument("wav_out", type=Path, help="where the 16 kHz wavs go (<spk>/<session>/<utt>.wav)")
    parser.add_argument("data_out", type=Path, help="corpus directory; DATA_OUT/train is written")
    parser.add_argument("--nj", type=int, default=1, help="conversions run in parallel")
    parser.add_argument("--converter", default=os.environ.get(CONVERTER_ENV) or None,
                        help=f"command run as 'CMD IN.m4a OUT.wav' instead of PyAV (default: ${CONVERTER_ENV})")
    args = parser.parse_args(argv)
    if args.nj < 1:
        parser.error("--nj must be at least 1")
    print(prepare(args.root, args.wav_out, args.data_out, nj=args.nj, converter=args.converter))
    return 0


if __name__ == "__main__":
    run_main(main)
