#!/usr/bin/env python3
"""Speech Commands v2 (Warden 2018, arXiv 1804.03209) release -> labelled Kaldi directories.

Input layout (``speech_commands_v0.02.tar.gz`` unpacked; ROOT is that directory, or a
directory holding ``speech_commands_v0.02/``)::

    ROOT/<word>/<hash>_nohash_<n>.wav     16 kHz mono, at most 1 s; <hash> = 8 hex digits (the speaker)
    ROOT/validation_list.txt              relative paths <word>/<hash>_nohash_<n>.wav, one a line
    ROOT/testing_list.txt                 the same
    ROOT/_background_noise_/*.wav         six long noise recordings (README.md beside them)

105,829 utterances of the 35 words (:data:`spkpeft.data.speech_commands.WORDS`); train = every
utterance in neither list (``_background_noise_`` excluded).  Every word directory must be one of the 35 words; a
malformed file name, list line, or a file listed twice or in both lists is one error naming
the file (and line).

``--task 35``: label = word.  The task of AST (Gong et al. 2021; its ``egs/speechcommands``:
``--n_class 35``, train = every utterance but the two lists' and the background noise,
SpecAugment and mixup, no ``_silence_``/``_unknown_``) and of PETL-AST (Cappellazzo et al.
2023; ``dataset/google_speech_commands_v2.py``: the 35 words, the same split, no background
noise).  ``--task 12`` (Warden 2018, the TensorFlow ``speech_commands`` recipe): the ten words
yes, no, up, down, left, right, on, off, stop, go; the 25 others become ``_unknown_``,
subsampled per set to ``ceil(unknown_pct / 100 * n)`` utterances (``n`` = the set's
utterances of the ten words; TensorFlow's default 10 %); ``_silence_`` adds
``ceil(silence_pct / 100 * n)`` 1-s clips per set (default 10 %), each a random 1-s crop of a
random background-noise file times a gain uniform in [0, 1] (as TensorFlow scales its
silence), cut once with ``--seed`` and written as wav files (Kaldi directories here have no
``segments``).  Unlike TensorFlow, the sets crop disjoint parts of each noise file: train
its first 80 %, dev the next 10 %, test the last 10 %, so no test silence was heard in
training.

Output::

    DATA_OUT/{train,dev,test}/{wav.scp,utt2spk,spk2utt,utt2label}   replaced as a whole;
        utt = <word>/<hash>_nohash_<n> (speaker <hash>), silence _silence_/<set>_<nnnnn> (its own speaker)
    WAV_OUT/silence/<set>/<set>_<nnnnn>.wav      --task 12: the _silence_ clips
    WAV_OUT/background/noise/<name>.wav          the training 80 % of every noise file: a MUSAN-style
                                                 directory for data.augment.musan_dir: WAV_OUT/background
                                                 (spkpeft.data.augment draws additive "noise" from noise/)
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from spkpeft.bin._cli import run_main  # noqa: E402
from spkpeft.data.speech_commands import COMMANDS, FILE, LISTS, NOISE_DIR, WORDS  # noqa: E402
from spkpeft.errors import SpkpeftError, file_error  # noqa: E402
from spkpeft.textfile import read_text_lines  # noqa: E402
from spkpeft.io.atomic import remove_stale_temps  # noqa: E402
from spkpeft.io.audio import SAMPLE_RATE, read_audio, write_audio  # noqa: E402
from spkpeft.io.corpora import write_corpus  # noqa: E402

UNKNOWN, SILENCE = "_unknown_", "_silence_"
SETS = ("train", "dev", "test")
#: share of each background-noise file each set crops its silence from (train, dev, test)
NOISE_SPLIT = {"train": (0.0, 0.8), "dev": (0.8, 0.9), "test": (0.9, 1.0)}
RELEASE_DIRS = ("", "speech_commands_v0.02")

Split = dict[str, dict[str, str]]   # set -> {utt: path}


def find_release(root: Path) -> Path:
    """The directory holding ``validation_list.txt``."""
    for sub in RELEASE_DIRS:
        candidate = root / sub if sub else root
        if (candidate / LISTS["dev"]).is_file():
            return candidate
    raise SpkpeftError(f"{root}: no {LISTS['dev']} (expected the Speech Commands v2 layout: "
                       f"<word>/<hash>_nohash_<n>.wav, {LISTS['dev']}, {LISTS['test']}, {NOISE_DIR}/)")


def scan_words(release: Path) -> dict[str, Path]:
    """``{"<word>/<file>": path}`` of every utterance; unknown word directories and bad names are errors."""
    found: dict[str, Path] = {}
    for entry in sorted(release.iterdir()):
        if not entry.is_dir() or entry.name.startswith((".", "_")):
            continue
        if entry.name not in WORDS:
            raise file_error(entry, "not one of the 35 Speech Commands v2 words")
        for wav in sorted(entry.iterdir()):
            if wav.name.startswith("."):
                continue
            if not FILE.match(wav.name):
                raise file_error(wav, "file name is not <hash>_nohash_<n>.wav (<hash>: 8 hex digits)")
            found[f"{entry.name}/{wav.name}"] = wav
    if not found:
        raise file_error(release, "no <word>/<hash>_nohash_<n>.wav file")
    return found


def read_list(path: Path, files: Mapping[str, Path]) -> dict[str, int]:
    """``{relative path: line}`` of a validation/testing list, each a known utterance, none twice."""
    if not path.is_file():
        raise file_error(path, "file does not exist")
    listed: dict[str, int] = {}
    for number, line in enumerate(read_text_lines(path, "list"), 1):
        rel = line.strip()
        if not rel:
            continue
        parts = rel.split("/")
        if len(parts) != 2 or parts[0] not in WORDS or not FILE.match(parts[1]):
            raise file_error(path, f"expected <word>/<hash>_nohash_<n>.wav, got {rel!r}", number)
        if rel not in files:
            raise file_error(path, f"'{rel}' not found in {path.parent}", number)
        if rel in listed:
            raise file_error(path, f"'{rel}' is listed twice", number)
        listed[rel] = number
    return listed


def split_files(release: Path, files: Mapping[str, Path]) -> dict[str, list[str]]:
    """Relative paths per set: the lists' for dev and test, every other file for train."""
    dev = read_list(release / LISTS["dev"], files)
    test = read_list(release / LISTS["test"], files)
    for rel, number in test.items():
        if rel in dev:
            raise file_error(release / LISTS["test"], f"'{rel}' is also in {LISTS['dev']}", number)
    return {"train": [rel for rel in files if rel not in dev and rel not in test], "dev": list(dev), "test": list(test)}


def utt_of(rel: str) -> str:
    """``<word>/<hash>_nohash_<n>`` of a relative path."""
    return rel[: -len(".wav")]


def label_of(word: str, task: str) -> str:
    """The word (35-class task), or the word / ``_unknown_`` (12-class task)."""
    return word if task == "35" or word in COMMANDS else UNKNOWN


def read_noise(release: Path) -> dict[str, np.ndarray]:
    """The background-noise recordings (16 kHz mono), by file name without .wav."""
    directory = release / NOISE_DIR
    if not directory.is_dir():
        raise file_error(directory, "directory does not exist (the background noise of the release)")
    noise = {p.stem: read_audio(p, SAMPLE_RATE) for p in sorted(directory.glob("*.wav"))}
    if not noise:
        raise file_error(directory, "no .wav file")
    return noise


def noise_region(x: np.ndarray, name: str) -> tuple[int, int]:
    """Sample range ``[a, b)`` of one set's share (:data:`NOISE_SPLIT`) of a noise signal."""
    lo, hi = NOISE_SPLIT[name]
    return int(lo * len(x)), int(hi * len(x))


def write_background(noise: Mapping[str, np.ndarray], release: Path, wav_out: Path) -> None:
    """``WAV_OUT/background/noise/<name>.wav``: the training share of every noise file."""
    out = wav_out / "background" / "noise"
    remove_stale_temps(out)
    for name, x in noise.items():
        a, b = noise_region(x, "train")
        if b - a < SAMPLE_RATE:
            raise file_error(release / NOISE_DIR / f"{name}.wav",
                             f"too short: its training share ({NOISE_SPLIT['train']}) is under 1 s")
        write_audio(out / f"{name}.wav", x[a:b])


def silence_plan(noise: Mapping[str, np.ndarray], name: str, count: int, seed: int,
                 release: Path) -> list[tuple[str, int, float]]:
    """``(noise file, first sample, gain)`` of the ``count`` 1-s ``_silence_`` clips of set ``name``:
    a file drawn uniformly, a start uniform in that set's share of it, a gain uniform in [0, 1]."""
    rng = np.random.default_rng([seed, SETS.index(name)])
    names = sorted(noise)
    plan = []
    for _ in range(count):
        key = names[int(rng.integers(len(names)))]
        a, b = noise_region(noise[key], name)
        if b - a < SAMPLE_RATE:
            raise file_error(release / NOISE_DIR / f"{key}.wav",
                             f"too short: its {name} share {NOISE_SPLIT[name]} is under 1 s")
        plan.append((key, a + int(rng.integers(b - a - SAMPLE_RATE + 1)), float(rng.uniform(0.0, 1.0))))
    return plan


def silence_clips(noise: Mapping[str, np.ndarray], name: str, count: int, seed: int,
                  release: Path, wav_out: Path) -> dict[str, str]:
    """Write the clips of :func:`silence_plan` to ``WAV_OUT/silence/<set>/``; ``{utt: path}``."""
    out = wav_out / "silence" / name
    remove_stale_temps(out)
    clips = {}
    for i, (key, start, gain) in enumerate(silence_plan(noise, name, count, seed, release)):
        path = out / f"{name}_{i:05d}.wav"
        write_audio(path, noise[key][start:start + SAMPLE_RATE] * gain)
        clips[f"{SILENCE}/{name}_{i:05d}"] = str(path)
    return clips


def subsample_unknown(rels: Sequence[str], task: str, pct: float, seed: int, name: str) -> list[str]:
    """12-class task: the command words' utterances plus ``ceil(pct/100 n)`` random ``_unknown_`` ones."""
    if task == "35":
        return list(rels)
    known = [r for r in rels if r.split("/")[0] in COMMANDS]
    unknown = [r for r in rels if r.split("/")[0] not in COMMANDS]
    keep = min(len(unknown), math.ceil(pct / 100.0 * len(known)))
    rng = np.random.default_rng([seed, SETS.index(name), 1])
    chosen = set(rng.choice(len(unknown), size=keep, replace=False).tolist()) if keep else set()
    return known + [r for i, r in enumerate(unknown) if i in chosen]


def prepare(root: Path, wav_out: Path, data_out: Path, task: str = "35", silence_pct: float = 10.0,
            unknown_pct: float = 10.0, seed: int = 0) -> str:
    """Write ``DATA_OUT/{train,dev,test}`` (and the wavs under ``WAV_OUT``); returns a summary."""
    if task not in ("35", "12"):
        raise SpkpeftError(f"--task must be 35 or 12, got '{task}'")
    for name, pct in (("--silence-pct", silence_pct), ("--unknown-pct", unknown_pct)):
        if not 0.0 <= pct <= 1000.0:
            raise SpkpeftError(f"{name} must be in [0, 1000], got {pct}")
    release = find_release(root)
    files = scan_words(release)
    sets = split_files(release, files)
    noise = read_noise(release)
    wav_out = wav_out.resolve()
    write_background(noise, release, wav_out)
    dirs = {}
    for name in SETS:
        rels = subsample_unknown(sets[name], task, unknown_pct, seed, name)
        wav = {utt_of(r): str(files[r].resolve()) for r in rels}
        utt2spk = {utt_of(r): r.split("/")[1].split("_nohash_")[0] for r in rels}
        utt2label = {utt_of(r): label_of(r.split("/")[0], task) for r in rels}
        if task == "12":
            n_known = sum(label != UNKNOWN for label in utt2label.values())
            silence = silence_clips(noise, name, math.ceil(silence_pct / 100.0 * n_known), seed, release, wav_out)
            wav.update(silence)
            utt2spk.update({u: u for u in silence})
            utt2label.update({u: SILENCE for u in silence})
        if not wav:
            raise file_error(release, f"the {name} set is empty")
        dirs[name] = (wav, utt2spk, utt2label)
    write_corpus(data_out, dirs, {})
    counts = ", ".join(f"{name} {len(dirs[name][0])} utts / {len(set(dirs[name][2].values()))} classes"
                       for name in SETS)
    return f"{data_out}: {task}-class task: {counts} (noise for augmentation: {wav_out / 'background'})"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Speech Commands v2 release -> labelled Kaldi directories.")
    parser.add_argument("root", type=Path, help="the release (<word>/..., validation_list.txt, testing_list.txt)")
    parser.add_argument("wav_out", type=Path, help="where the _silence_ clips and the background noise go")
    parser.add_argument("data_out", type=Path, help="corpus directory; DATA_OUT/{train,dev,test}")
    parser.add_argument("--task", default="35", choices=("35", "12"), help="35 words, or 10 words + _unknown_ + _silence_")
    parser.add_argument("--silence-pct", type=float, default=10.0, help="12: _silence_ clips, %% of the ten words' count")
    parser.add_argument("--unknown-pct", type=float, default=10.0, help="12: _unknown_ kept, %% of the ten words' count")
    parser.add_argument("--seed", type=int, default=0, help="12: seed of the silence crops and the unknown subsample")
    args = parser.parse_args(argv)
    print(prepare(args.root, args.wav_out, args.data_out, task=args.task, silence_pct=args.silence_pct,
                  unknown_pct=args.unknown_pct, seed=args.seed))
    return 0


if __name__ == "__main__":
    run_main(main)
