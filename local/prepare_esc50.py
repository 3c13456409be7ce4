#!/usr/bin/env python3
"""ESC-50 (Piczak, ACM MM 2015) release -> 16 kHz wavs -> one labelled Kaldi corpus per fold.

Input layout (the GitHub release ``ESC-50-master``; ROOT is that directory, or a directory
holding ``ESC-50-master/`` or ``ESC-50/``)::

    ROOT/audio/{FOLD}-{CLIP_ID}-{TAKE}-{TARGET}.wav   44.1 kHz mono, 5 s, e.g. 1-100032-A-0.wav
    ROOT/meta/esc50.csv                               header filename,fold,target,category,esc10,src_file,take
                                                      e.g. 1-100032-A-0.wav,1,0,dog,True,100032,A

2,000 clips, 50 classes (``target`` 0-49, ``category`` its name) of 40 clips, 5 folds of 400.
The csv's ``fold``, ``target``, ``src_file`` and ``take`` must agree with the file name, and
a target has one category; clips of one source recording (``src_file``) share a fold, so the
folds are the official cross-validation split.  Every problem is one error naming the csv
line (or the file).

Output::

    WAV_OUT/<filename>                       16 kHz mono PCM_16 (spkpeft.io.resample: scipy
                                             resample_poly, 160/441; parallel, resumable)
    DATA_OUT/fold{k}/test                    the clips of fold k
    DATA_OUT/fold{k}/dev                     --dev-fold previous (default): fold k-1 (fold 5 for k = 1)
    DATA_OUT/fold{k}/train                   the other three folds (--dev-fold none: all four
                                             other folds and no dev; the cls task then holds out
                                             task.val_fraction of every class of train)
    each with wav.scp, utt2spk, spk2utt, utt2label: utt = file name without .wav (its own
    speaker), label = category; DATA_OUT is replaced as a whole.

The validation fold follows the PETL-AST code (Cappellazzo et al., arXiv 2312.03694,
github.com/umbertocappellazzo/PETL_AST ``main.py``: for the test folds 5, 1, 2, 3, 4 it
trains on [1,2,3], [2,3,4], [3,4,5], [4,5,1], [5,1,2] and validates on 4, 5, 1, 2, 3, i.e.
on the fold before the test fold).  The validation fold only reports accuracy there: the
code keeps ``best_params = model.state_dict()`` of the best validation epoch, but that is a
live view of the model's tensors (not a copy), and it then tests ``model`` itself, so the
reported accuracy is the last epoch's (``extract.checkpoint: last`` in
``conf/cls/ast_*_paper.yaml``; our configs test the best validation epoch).
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from spkpeft.bin._cli import run_main  # noqa: E402
from spkpeft.errors import SpkpeftError, file_error  # noqa: E402
from spkpeft.io.corpora import csv_rows, write_corpus  # noqa: E402
from spkpeft.io.resample import ConvertJob, convert_files  # noqa: E402

HEADER = ["filename", "fold", "target", "category", "esc10", "src_file", "take"]
FOLDS = (1, 2, 3, 4, 5)
N_CLASSES = 50
NAME = re.compile(r"^(?P<fold>[0-9]+)-(?P<clip>[0-9]+)-(?P<take>[A-Z])-(?P<target>[0-9]+)\.wav$")
RELEASE_DIRS = ("", "ESC-50-master", "ESC-50")
DEV_FOLD_CHOICES = ("previous", "none")


@dataclass(frozen=True)
class Clip:
    """One row of ``meta/esc50.csv``."""

    utt: str        # file name without .wav
    fold: int
    category: str
    src: Path       # ROOT/audio/<filename>


def find_release(root: Path) -> Path:
    """The directory holding ``meta/esc50.csv`` and ``audio/``."""
    for sub in RELEASE_DIRS:
        candidate = root / sub if sub else root
        if (candidate / "meta" / "esc50.csv").is_file():
            return candidate
    raise SpkpeftError(f"{root}: no meta/esc50.csv (expected the ESC-50 release layout: "
                       "audio/{FOLD}-{CLIP_ID}-{TAKE}-{TARGET}.wav and meta/esc50.csv)")


def parse_row(row: list[str], path: Path, number: int, audio: Path) -> tuple[Clip, int]:
    """``(clip, target)`` of one csv row, cross-checked against its file name."""
    if len(row) != len(HEADER):
        raise file_error(path, f"expected {len(HEADER)} fields ({','.join(HEADER)}), got {len(row)}: "
                         f"{','.join(row)!r}", number)
    filename, fold, target, category, esc10, src_file, take = (field.strip() for field in row)
    match = NAME.match(filename)
    if not match:
        raise file_error(path, f"file name '{filename}' is not {{FOLD}}-{{CLIP_ID}}-{{TAKE}}-{{TARGET}}.wav", number)
    if not fold.isdigit() or int(fold) not in FOLDS:
        raise file_error(path, f"fold must be 1 to 5, got '{fold}'", number)
    if not target.isdigit() or not 0 <= int(target) < N_CLASSES:
        raise file_error(path, f"target must be 0 to {N_CLASSES - 1}, got '{target}'", number)
    for name, value, expected in (("fold", fold, match["fold"]), ("target", target, match["target"]),
                                  ("src_file", src_file, match["clip"]), ("take", take, match["take"])):
        if value.lstrip("0") != expected.lstrip("0"):
            raise file_error(path, f"{name} '{value}' disagrees with the file name '{filename}' ({expected})", number)
    if not category or any(c.isspace() for c in category):
        raise file_error(path, f"category '{category}' is empty or contains whitespace", number)
    if esc10 not in ("True", "False"):
        raise file_error(path, f"esc10 must be True or False, got '{esc10}'", number)
    src = audio / filename
    if not src.is_file():
        raise file_error(path, f"'{filename}' not found in {audio}", number)
    return Clip(filename[:-4], int(fold), category, src), int(target)


def read_meta(release: Path) -> list[Clip]:
    """Every clip of ``meta/esc50.csv``; one category per target, unique file names, every fold present."""
    path = release / "meta" / "esc50.csv"
    clips: list[Clip] = []
    category_of: dict[int, str] = {}
    seen: set[str] = set()
    for number, row in csv_rows(path, HEADER):
        clip, target = parse_row(row, path, number, release / "audio")
        if clip.utt in seen:
            raise file_error(path, f"'{clip.utt}.wav' is listed twice", number)
        known = category_of.setdefault(target, clip.category)
        if known != clip.category:
            raise file_error(path, f"target {target} is '{clip.category}' here but '{known}' earlier", number)
        seen.add(clip.utt)
        clips.append(clip)
    missing = [k for k in FOLDS if not any(c.fold == k for c in clips)]
    if missing:
        raise file_error(path, f"no clip of fold {missing[0]} (5-fold cross-validation needs every fold)")
    return clips


def dev_fold_of(test_fold: int) -> int:
    """The validation fold of PETL-AST for a test fold: the fold before it (5 for fold 1)."""
    return FOLDS[(FOLDS.index(test_fold) - 1) % len(FOLDS)]


def fold_sets(test_fold: int, dev_fold: str) -> dict[str, list[int]]:
    """Folds of each set of one cross-validation split (``train``, ``test``[, ``dev``])."""
    others = [k for k in FOLDS if k != test_fold]
    if dev_fold == "none":
        return {"train": others, "test": [test_fold]}
    dev = dev_fold_of(test_fold)
    return {"train": [k for k in others if k != dev], "dev": [dev], "test": [test_fold]}


def data_dir(clips: Sequence[Clip], folds: Sequence[int], wav_out: Path):
    """``(wav, utt2spk, utt2label)`` of the clips of ``folds``."""
    chosen = [c for c in clips if c.fold in folds]
    return ({c.utt: str(wav_out / f"{c.utt}.wav") for c in chosen}, {c.utt: c.utt for c in chosen},
            {c.utt: c.category for c in chosen})


def prepare(root: Path, wav_out: Path, data_out: Path, nj: int = 1, dev_fold: str = "previous") -> str:
    """Convert the audio and write ``DATA_OUT/fold{k}/{train,dev,test}``; returns a summary."""
    if dev_fold not in DEV_FOLD_CHOICES:
        raise SpkpeftError(f"--dev-fold must be one of {', '.join(DEV_FOLD_CHOICES)}, got '{dev_fold}'")
    release = find_release(root)
    clips = read_meta(release)
    wav_out = wav_out.resolve()
    converted = convert_files([ConvertJob(c.src, wav_out / f"{c.utt}.wav") for c in clips], nj=nj)
    dirs = {f"fold{k}/{name}": data_dir(clips, folds, wav_out)
            for k in FOLDS for name, folds in fold_sets(k, dev_fold).items()}
    write_corpus(data_out, dirs, {})
    n_classes = len({c.category for c in clips})
    per_fold = ", ".join(f"{k}: {sum(c.fold == k for c in clips)}" for k in FOLDS)
    return (f"{data_out}: {len(clips)} clips, {n_classes} classes, folds {per_fold}; dev fold {dev_fold}; "
            f"converted {converted}, {len(clips) - converted} already done (16 kHz wavs in {wav_out})")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="ESC-50 release -> 16 kHz wavs -> Kaldi directories per fold.")
    parser.add_argument("root", type=Path, help="the ESC-50 release (audio/, meta/esc50.csv)")
    parser.add_argument("wav_out", type=Path, help="where the 16 kHz wavs go")
    parser.add_argument("data_out", type=Path, help="corpus directory; DATA_OUT/fold{1..5}/{train,dev,test}")
    parser.add_argument("--nj", type=int, default=1, help="conversions in parallel")
    parser.add_argument("--dev-fold", default="previous", choices=DEV_FOLD_CHOICES,
                        help="previous: validate on the fold before the test fold (PETL-AST); "
                             "none: train on all four other folds")
    args = parser.parse_args(argv)
    if args.nj < 1:
        parser.error("--nj must be at least 1")
    print(prepare(args.root, args.wav_out, args.data_out, nj=args.nj, dev_fold=args.dev_fold))
    return 0


if __name__ == "__main__":
    run_main(main)
