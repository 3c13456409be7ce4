"""Validate Kaldi data directories and trial lists (stage 2).

Usage::

    python -m spkpeft.bin.validate_data_dir [--task sv|cls] [--sr 16000] [--nj N] [--no-audio] PATH...

Each PATH is a data directory (holding ``wav.scp``) or a corpus directory
(``data/<corpus>``: its data directories plus ``trials/*``).  Checks: sorted
(``LC_ALL=C``) files with unique ids, ``utt2spk``/``spk2utt``/``wav.scp``
agreeing, every audio file readable, mono, at the expected sample rate and not
empty, and every trial utterance present in an evaluation data directory (any
data directory other than ``train``) with trials sorted and unique.  The first
field of a trial may also be a *speaker* id of a data directory named
``enroll`` (an enrollment id, as in CN-Celeb: scoring averages the embeddings
of that speaker's utterances).  The first problem found is reported as one
line naming the file and line; exit status 1.

A speaker with a single utterance in a training directory (``train``) is
allowed -- it trains, but cannot give a validation utterance -- and reported
as one warning line on stderr naming ``spk2utt`` and the line of the first
such speaker; the exit status stays 0.  (Evaluation directories often hold
one utterance per speaker, e.g. enrollment ids; nothing is reported there.)

``--task cls``: every data directory must have ``utt2label`` (checked like the other
files: sorted, unique, exactly the utterances of ``wav.scp``), and every label of an
evaluation directory must occur in ``train``; the speaker warning does not apply.
``--task cm``: labels are ``bonafide`` or ``spoof``, and with ``utt2attack`` the attack
is ``-`` exactly for the bona fide utterances.  The optional ``utt2attack`` and
``utt2condition`` (``<utt-id> <condition-id>``, ASVspoof 2021) are checked like
``utt2label`` with any task: sorted, unique, exactly the utterances of ``wav.scp``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from spkpeft.io.audio import SAMPLE_RATE
from spkpeft.bin._cli import run_main
from spkpeft.io.datadir import DataDir, c_sort_key, check_audio, find_data_dirs, read_data_dir
from spkpeft.errors import SpkpeftError, file_error
from spkpeft.io.trials import read_trials

TRAIN_DIR_NAMES = ("train",)
ENROLL_DIR_NAME = "enroll"


def validate_trials(path: Path, known_utts: set[str], enroll_ids: frozenset[str] | set[str] = frozenset()) -> int:
    """Check a trials file: sorted, unique pairs, every utterance in ``known_utts``; returns its size.

    The first field may also be one of ``enroll_ids`` (speakers of an ``enroll`` directory).
    """
    utt1, utt2, _ = read_trials(path)
    previous = None
    for number, (a, b) in enumerate(zip(utt1, utt2), 1):
        if a not in known_utts and a not in enroll_ids:
            suffix = f" nor a speaker of {ENROLL_DIR_NAME}/" if enroll_ids else ""
            raise file_error(path, f"utterance '{a}' is in no evaluation data directory{suffix}", number)
        if b not in known_utts:
            raise file_error(path, f"utterance '{b}' is in no evaluation data directory", number)
        line_key = c_sort_key(f"{a} {b}")
        if previous is not None and line_key < previous:
            raise file_error(path, f"not sorted (LC_ALL=C): '{a} {b}'", number)
        previous = line_key
    return len(utt1)


def summary_line(data: DataDir) -> str:
    if data.utt2label is not None:
        return f"{data.path}: {len(data.wav)} utterances, {len(set(data.utt2label.values()))} classes: OK"
    return f"{data.path}: {len(data.wav)} utterances, {len(data.spk2utt)} speakers: OK"


def check_labels(dirs: list[DataDir]) -> None:
    """``--task cls``: every directory has labels; evaluation labels occur in ``train``."""
    for data in dirs:
        if data.utt2label is None:
            raise SpkpeftError(f"{data.path / 'utt2label'}: missing (task cls needs '<utt-id> <label>' lines)")
    known = {label for data in dirs if data.path.name in TRAIN_DIR_NAMES for label in data.utt2label.values()}
    if not known:
        return
    for data in dirs:
        for number, (utt, label) in enumerate(data.utt2label.items(), 1):
            if label not in known:
                raise file_error(data.path / "utt2label", f"label '{label}' of '{utt}' does not occur in train", number)


def check_cm_labels(data: DataDir) -> None:
    """``--task cm``: ``bonafide`` / ``spoof`` labels; attack ``-`` for exactly the bona fide."""
    if data.utt2label is None:
        raise SpkpeftError(f"{data.path / 'utt2label'}: missing (task cm needs '<utt-id> bonafide|spoof' lines)")
    for number, (utt, label) in enumerate(data.utt2label.items(), 1):
        if label not in ("bonafide", "spoof"):
            raise file_error(data.path / "utt2label", f"label '{label}' of '{utt}' must be bonafide or spoof", number)
        if data.utt2attack is not None and (data.utt2attack[utt] == "-") != (label == "bonafide"):
            raise file_error(data.path / "utt2attack", f"attack '{data.utt2attack[utt]}' of '{utt}' does not fit its "
                             f"label '{label}' ('-' for bona fide only)", number)


def validate_corpus_dir(corpus: Path, sample_rate: int, nj: int, audio: bool, task: str = "sv") -> list[str]:
    """Validate every data directory and trials file of ``corpus``; returns report lines."""
    report = []
    dirs = find_data_dirs(corpus)
    if not dirs:
        raise SpkpeftError(f"{corpus}: no data directory (subdirectory with wav.scp) found")
    eval_utts: set[str] = set()
    enroll_ids: set[str] = set()
    read = []
    for path in dirs:
        data = validate_one_dir(path, sample_rate, nj, audio, task)
        read.append(data)
        report.append(summary_line(data))
        if path.name not in TRAIN_DIR_NAMES:
            eval_utts.update(data.wav)
        if path.name == ENROLL_DIR_NAME:
            enroll_ids.update(data.spk2utt)
    trials_dir = corpus / "trials"
    if trials_dir.is_dir():
        for trials in sorted(p for p in trials_dir.iterdir() if p.is_file()):
            n = validate_trials(trials, eval_utts, enroll_ids)
            report.append(f"{trials}: {n} trials: OK")
    if task == "cls":
        check_labels(read)
    return report


def single_utterance_warning(data: DataDir) -> str | None:
    """The warning for speakers with one utterance in a training directory (None when there are none)."""
    if data.path.name not in TRAIN_DIR_NAMES:
        return None
    singles = [(number, spk) for number, (spk, utts) in enumerate(data.spk2utt.items(), 1) if len(utts) == 1]
    if not singles:
        return None
    number, spk = singles[0]
    others = f" (and {len(singles) - 1} more speaker(s))" if len(singles) > 1 else ""
    return (f"{data.path / 'spk2utt'}:{number}: speaker '{spk}' has a single utterance{others}: "
            "allowed, it trains but gives no validation utterance")


def validate_one_dir(path: Path, sample_rate: int, nj: int, audio: bool, task: str = "sv") -> DataDir:
    data = read_data_dir(path)
    if task == "cls":
        check_labels([data])
    if task == "cm":
        check_cm_labels(data)
    if audio:
        check_audio(data, sample_rate=sample_rate, nj=nj)
    warning = single_utterance_warning(data) if task == "sv" else None
    if warning:
        print(f"validate_data_dir: warning: {warning}", file=sys.stderr)
    return data


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", type=Path, help="data or corpus directories")
    parser.add_argument("--sr", type=int, default=SAMPLE_RATE, help="expected sample rate")
    parser.add_argument("--nj", type=int, default=1, help="parallel audio header checks")
    parser.add_argument("--no-audio", action="store_true", help="skip the audio checks")
    parser.add_argument("--task", choices=("sv", "cls", "cm"), default="sv",
                        help="cls: utt2label required; cm: bonafide|spoof labels, consistent utt2attack")
    args = parser.parse_args(argv)
    for path in args.paths:
        if (path / "wav.scp").is_file():
            lines = [summary_line(validate_one_dir(path, args.sr, args.nj, not args.no_audio, args.task))]
        elif path.is_dir():
            lines = validate_corpus_dir(path, args.sr, args.nj, not args.no_audio, args.task)
        else:
            raise SpkpeftError(f"{path}: not a directory")
        print("\n".join(lines), file=sys.stdout)
    return 0


if __name__ == "__main__":
    run_main(main)
