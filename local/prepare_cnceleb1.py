#!/usr/bin/env python3
"""CN-Celeb1 root -> Kaldi data directories and trial lists.

Input layout (the released CN-Celeb1 / the CN-Celeb1 part of CN-Celeb_v2,
``CN-Celeb_flac/``; ROOT may be that directory or its parent)::

    ROOT/data/idNNNNN/<genre>-<session>-<nnn>.flac   every speaker's utterances (.wav also accepted)
    ROOT/dev/dev.lst                                 optional: the development (training) speakers, one a line
    ROOT/eval/enroll/idNNNNN-enroll.flac             one enrollment file per evaluation speaker
    ROOT/eval/test/idNNNNN-<genre>-<session>-<nnn>.flac
    ROOT/eval/lists/enroll.lst   "<enroll_id> enroll/<file>"      e.g. "id00800-enroll enroll/id00800-enroll.flac"
    ROOT/eval/lists/test.lst     "test/<file>" (or "<id> test/<file>"); optional, else the files of trials.lst
    ROOT/eval/lists/trials.lst   "<enroll_id> test/<file> 1|0"

Paths in the lists are relative to ``ROOT/eval``; a listed ``.wav`` may be a
``.flac`` on disk and vice versa (the two releases differ only in that).
CN-Celeb audio is 16 kHz mono: ``wav.scp`` points at the files as they are
(soundfile reads FLAC), nothing is converted.

Output (``OUT`` is replaced as a whole)::

    OUT/train/   utt "idNNNNN/<genre>-<session>-<nnn>" (path under data/, no extension), spk "idNNNNN"
    OUT/enroll/  utt = enrollment file name without extension, spk = enrollment id ("idNNNNN-enroll")
    OUT/test/    utt "idNNNNN-<genre>-<session>-<nnn>" (file name without extension), spk "idNNNNN"
    OUT/trials/cnc_eval            "<enroll_id> <test_utt> target|nontarget", sorted (LC_ALL=C)
    OUT/trials/cnc_eval_<genre>    with --per-genre: the trials whose test utterance is of that genre

The first field of a CN-Celeb trial is an enrollment id (a *speaker* of
``OUT/enroll``): scoring averages the embeddings of its utterances.  Training
speakers are those of ``dev/dev.lst`` (else every directory under ``data/``)
minus every evaluation speaker (the ``idNNNNN`` prefix of the enrollment ids and
test utterances), so ``data/`` may hold the evaluation speakers too.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Mapping, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from spkpeft.bin._cli import run_main  # noqa: E402
from spkpeft.io.corpora import (  # noqa: E402
    LABELS, Trial, add_trial, find_audio, has_both_labels, sorted_trials, strip_audio_ext, write_corpus,
)
from spkpeft.io.datadir import read_lines  # noqa: E402
from spkpeft.errors import SpkpeftError, file_error  # noqa: E402

TRIALS_NAME = "cnc_eval"
AUDIO_EXTS = (".flac", ".wav")


def find_root(root: Path) -> Path:
    """The directory holding ``data/`` and ``eval/`` (``root`` itself, or its CN-Celeb_flac / CN-Celeb child)."""
    for candidate in (root, root / "CN-Celeb_flac", root / "CN-Celeb"):
        if (candidate / "eval" / "lists").is_dir():
            return candidate
    raise SpkpeftError(f"{root}: no eval/lists/ directory (expected the CN-Celeb1 layout: data/, eval/enroll, "
                       "eval/test, eval/lists/{enroll.lst,test.lst,trials.lst})")


def speaker_prefix(name: str) -> str:
    """``idNNNNN`` of ``idNNNNN-...``."""
    return name.split("-", 1)[0]


def genre_of(test_utt: str) -> str:
    """The genre of a test utterance ``idNNNNN-<genre>-<session>-<nnn>``."""
    parts = test_utt.split("-")
    if len(parts) < 4 or not parts[1]:
        raise SpkpeftError(f"test utterance '{test_utt}' has no genre (expected idNNNNN-<genre>-<session>-<nnn>)")
    return parts[1]


def resolve_listed(eval_dir: Path, rel: str, path: Path, number: int) -> Path:
    """Absolute path of a file named in a list (relative to ``eval/``); error naming list:line if missing."""
    found = find_audio(eval_dir / rel)
    if found is None:
        raise file_error(path, f"'{rel}' not found under {eval_dir}", number)
    return found.resolve()


def read_enroll_list(path: Path, eval_dir: Path) -> tuple[dict[str, str], dict[str, str]]:
    """``enroll.lst`` -> (wav, utt2spk) of the enroll directory; utt = file stem, spk = enrollment id."""
    wav: dict[str, str] = {}
    utt2spk: dict[str, str] = {}
    for number, fields in read_lines(path):
        if len(fields) not in (1, 2):
            raise file_error(path, f"expected '<enroll_id> enroll/<file>', got {' '.join(fields)!r}", number)
        rel = fields[-1]
        utt = strip_audio_ext(Path(rel).name)
        enroll_id = fields[0] if len(fields) == 2 else utt
        if utt in wav:
            raise file_error(path, f"enrollment file '{rel}' listed twice", number)
        wav[utt] = str(resolve_listed(eval_dir, rel, path, number))
        utt2spk[utt] = enroll_id
    if not wav:
        raise file_error(path, "enrollment list is empty")
    return wav, utt2spk


def read_test_list(path: Path, eval_dir: Path) -> dict[str, str]:
    """``test.lst`` -> {test utt: absolute path}; utt = file stem."""
    wav: dict[str, str] = {}
    for number, fields in read_lines(path):
        if len(fields) not in (1, 2):
            raise file_error(path, f"expected 'test/<file>', got {' '.join(fields)!r}", number)
        rel = fields[-1]
        utt = strip_audio_ext(Path(rel).name)
        if utt in wav:
            raise file_error(path, f"test file '{rel}' listed twice", number)
        wav[utt] = str(resolve_listed(eval_dir, rel, path, number))
    if not wav:
        raise file_error(path, "test list is empty")
    return wav


def read_trials_list(path: Path, eval_dir: Path, enroll_ids: set[str],
                     test_wav: dict[str, str], test_listed: bool) -> list[Trial]:
    """``trials.lst`` -> sorted Kaldi trials; adds unlisted test files to ``test_wav`` when there is no test.lst."""
    trials: dict[tuple[str, str], str] = {}
    for number, fields in read_lines(path):
        if len(fields) != 3:
            raise file_error(path, f"expected '<enroll_id> test/<file> 1|0', got {' '.join(fields)!r}", number)
        enroll_id, rel, label = fields
        if label not in LABELS:
            raise file_error(path, f"label must be 1 or 0, found '{label}'", number)
        if enroll_id not in enroll_ids:
            raise file_error(path, f"unknown enrollment id '{enroll_id}' (not in enroll.lst)", number)
        utt = strip_audio_ext(Path(rel).name)
        if utt not in test_wav:
            if test_listed:
                raise file_error(path, f"test file '{rel}' is not in test.lst", number)
            test_wav[utt] = str(resolve_listed(eval_dir, rel, path, number))
        add_trial(trials, enroll_id, utt, LABELS[label], path, number)
    if not trials:
        raise file_error(path, "trial list is empty")
    return sorted_trials(trials)


def read_dev_list(path: Path) -> list[tuple[int, str]]:
    """``dev/dev.lst`` -> [(line, speaker)]."""
    rows = []
    for number, fields in read_lines(path):
        if len(fields) != 1:
            raise file_error(path, f"expected one speaker id a line, got {' '.join(fields)!r}", number)
        rows.append((number, fields[0]))
    return rows


def speaker_utterances(spk_dir: Path) -> dict[str, str]:
    """{``spk/<stem>``: absolute path} for the .flac/.wav files of one speaker directory."""
    wav: dict[str, str] = {}
    for entry in os.scandir(spk_dir):
        if entry.is_file() and entry.name.endswith(AUDIO_EXTS):
            utt = f"{spk_dir.name}/{strip_audio_ext(entry.name)}"
            if utt in wav:
                raise SpkpeftError(f"{entry.path}: utterance {utt} exists both as .wav and .flac")
            wav[utt] = os.path.abspath(entry.path)
    return wav


def train_speakers(root: Path, eval_spks: set[str]) -> list[str]:
    """Development speakers (``dev/dev.lst`` or every directory under ``data/``) minus the evaluation speakers."""
    data_dir = root / "data"
    dev_list = root / "dev" / "dev.lst"
    if dev_list.is_file():
        speakers = []
        for number, spk in read_dev_list(dev_list):
            if not (data_dir / spk).is_dir():
                raise file_error(dev_list, f"speaker '{spk}' has no directory {data_dir / spk}", number)
            speakers.append(spk)
    elif data_dir.is_dir():
        speakers = [e.name for e in os.scandir(data_dir) if e.is_dir()]
    else:
        return []
    return sorted(s for s in speakers if s not in eval_spks)


def scan_train(root: Path, speakers: Sequence[str]) -> dict[str, str]:
    """wav.scp map of the training speakers."""
    wav: dict[str, str] = {}
    for spk in speakers:
        wav.update(speaker_utterances(root / "data" / spk))
    return wav


def genre_trials(rows: Sequence[Trial]) -> dict[str, list[Trial]]:
    """``cnc_eval_<genre>`` -> the trials whose test utterance is of that genre (sorted as ``rows``)."""
    by_genre: dict[str, list[Trial]] = {}
    for row in rows:
        by_genre.setdefault(genre_of(row[1]), []).append(row)
    return {f"{TRIALS_NAME}_{genre}": part for genre, part in sorted(by_genre.items())}


def prepare(root: Path, out: Path, per_genre: bool = False) -> str:
    """Write the data directories and trials; returns a summary (one line, plus notes)."""
    root = find_root(root)
    eval_dir, lists = root / "eval", root / "eval" / "lists"
    enroll_wav, enroll_u2s = read_enroll_list(lists / "enroll.lst", eval_dir)
    test_listed = (lists / "test.lst").is_file()
    test_wav = read_test_list(lists / "test.lst", eval_dir) if test_listed else {}
    rows = read_trials_list(lists / "trials.lst", eval_dir, set(enroll_u2s.values()), test_wav, test_listed)
    trials: dict[str, list[Trial]] = {TRIALS_NAME: rows}
    notes = []
    if per_genre:
        for name, part in genre_trials(rows).items():
            if has_both_labels(part):
                trials[name] = part
            else:
                notes.append(f"NOTE: {name} skipped: it lacks target or nontarget trials")
    test_u2s = {u: speaker_prefix(u) for u in test_wav}
    eval_spks = set(test_u2s.values()) | {speaker_prefix(e) for e in enroll_u2s.values()}
    train_wav = scan_train(root, train_speakers(root, eval_spks))
    dirs: dict[str, tuple[Mapping[str, str], Mapping[str, str]]] = {
        "enroll": (enroll_wav, enroll_u2s), "test": (test_wav, test_u2s)}
    if train_wav:
        dirs["train"] = (train_wav, {u: u.split("/", 1)[0] for u in train_wav})
    else:
        notes.append(f"NOTE: no training speaker found under {root / 'data'}")
    write_corpus(out, dirs, trials)
    counts = ", ".join(f"{name} {len(w)} utts / {len(set(u.values()))} spks" for name, (w, u) in dirs.items())
    summary = f"{out}: {counts}, trials {', '.join(f'{n} ({len(r)})' for n, r in trials.items())}"
    return "\n".join([summary, *notes])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="CN-Celeb1 root -> Kaldi data directories and trials.")
    parser.add_argument("root", type=Path, help="CN-Celeb1 root (data/, eval/)")
    parser.add_argument("out", type=Path, help="output corpus directory, e.g. data/cnceleb1")
    parser.add_argument("--per-genre", action="store_true",
                        help=f"also write trials/{TRIALS_NAME}_<genre> (genre of the test utterance)")
    args = parser.parse_args(argv)
    print(prepare(args.root, args.out, per_genre=args.per_genre))
    return 0


if __name__ == "__main__":
    run_main(main)
