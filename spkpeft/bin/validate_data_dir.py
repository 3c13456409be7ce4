"""Validate Kaldi data directories and trial lists (stage 2).

Usage::

    python -m spkpeft.bin.validate_data_dir [--task sv|cls|cm] [--sr 16000] [--nj N] [--no-audio] PATH...

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

The task (``--task``, default ``sv``) adds its own checks (:mod:`spkpeft.tasks.base`, stage 2):
of a corpus directory, the files its later stages need (``sv``: ``test/wav.scp`` and
``trials/``; ``cls``: ``test/wav.scp``); of each data directory, its labels (``cls``:
``utt2label`` present, checked like the other files: sorted, unique, exactly the utterances of
``wav.scp``; ``cm``: labels ``bonafide`` or ``spoof``, and with ``utt2attack`` the attack ``-``
exactly for the bona fide); across the directories (``cls``: every evaluation label occurs in
``train``); and warnings that leave the exit status 0 (``sv``: a speaker with a single
utterance in ``train`` is allowed -- it trains, but cannot give a validation utterance -- and
reported as one line on stderr naming ``spk2utt`` and the line of the first such speaker).
The optional ``utt2attack`` and ``utt2condition`` (``<utt-id> <condition-id>``, ASVspoof 2021)
are checked like ``utt2label`` with any task: sorted, unique, exactly the utterances of
``wav.scp``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from spkpeft.bin._cli import run_main
from spkpeft.errors import SpkpeftError, file_error
from spkpeft.io.audio import SAMPLE_RATE
from spkpeft.io.datadir import DataDir, c_sort_key, check_audio, find_data_dirs, read_data_dir
from spkpeft.io.trials import read_trials
from spkpeft.tasks.base import TRAIN_DIR, Task, TaskConfig
from spkpeft.tasks.registered import task_named, task_names

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


def validate_corpus_dir(corpus: Path, sample_rate: int, nj: int, audio: bool, task: Task) -> list[str]:
    """Validate every data directory and trials file of ``corpus`` and the task's needs; returns
    report lines."""
    report = []
    task.check_corpus(corpus)
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
        if path.name != TRAIN_DIR:
            eval_utts.update(data.wav)
        if path.name == ENROLL_DIR_NAME:
            enroll_ids.update(data.spk2utt)
    trials_dir = corpus / "trials"
    if trials_dir.is_dir():
        for trials in sorted(p for p in trials_dir.iterdir() if p.is_file()):
            n = validate_trials(trials, eval_utts, enroll_ids)
            report.append(f"{trials}: {n} trials: OK")
    task.check_data_dirs(read)
    return report


def validate_one_dir(path: Path, sample_rate: int, nj: int, audio: bool, task: Task) -> DataDir:
    data = read_data_dir(path)
    task.check_data_dir(data)
    if audio:
        check_audio(data, sample_rate=sample_rate, nj=nj)
    warning = task.data_dir_warning(data)
    if warning:
        print(f"validate_data_dir: warning: {warning}", file=sys.stderr)
    return data


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", type=Path, help="data or corpus directories")
    parser.add_argument("--sr", type=int, default=SAMPLE_RATE, help="expected sample rate")
    parser.add_argument("--nj", type=int, default=1, help="parallel audio header checks")
    parser.add_argument("--no-audio", action="store_true", help="skip the audio checks")
    parser.add_argument("--task", choices=task_names(), default=TaskConfig().type,
                        help="the task's checks (cls: utt2label required; cm: bonafide|spoof labels, consistent "
                             "utt2attack; default %(default)s)")
    args = parser.parse_args(argv)
    task = task_named(args.task)
    for path in args.paths:
        if (path / "wav.scp").is_file():
            lines = [summary_line(validate_one_dir(path, args.sr, args.nj, not args.no_audio, task))]
        elif path.is_dir():
            lines = validate_corpus_dir(path, args.sr, args.nj, not args.no_audio, task)
        else:
            task.check_corpus(path)
            raise SpkpeftError(f"{path}: not a directory")
        print("\n".join(lines), file=sys.stdout)
    return 0


if __name__ == "__main__":
    run_main(main)
