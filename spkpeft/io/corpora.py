"""Helpers shared by the corpus preparation scripts (``local/prepare_*.py``).

A prepared corpus directory (``data/<corpus>``) holds Kaldi data directories
(``train``, ``test``, optionally ``enroll``; see :mod:`spkpeft.io.datadir`) and
``trials/<name>`` files with lines ``<utt1> <utt2> target|nontarget`` sorted in
``LC_ALL=C`` order of the line text (see :mod:`spkpeft.io.trials`).  When the
corpus has an ``enroll`` directory, ``utt1`` may be one of its *speaker* ids (an
enrollment id: the scoring stage averages the embeddings of its utterances).

Preparation writes everything into a temporary sibling directory and renames
it into place (:func:`write_corpus`, :func:`spkpeft.io.atomic.new_directory`), so an
interrupted run (killed, or stopped by a full disk) never leaves a half-prepared corpus
that looks finished.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Iterator, Mapping, Sequence

from spkpeft.io.atomic import new_directory, write_text_atomic
from spkpeft.io.datadir import c_sort_key, write_data_dir
from spkpeft.errors import SpkpeftError, file_error
from spkpeft.textfile import read_text_lines

#: VoxCeleb-style numeric labels -> Kaldi labels.
LABELS = {"1": "target", "0": "nontarget"}
#: Kaldi trial labels.
KALDI_LABELS = ("target", "nontarget")

#: A trial row ``(utt1, utt2, "target"|"nontarget")``.
Trial = tuple[str, str, str]
#: ``(wav.scp map, utt2spk map)`` of one data directory.
DirContents = tuple[Mapping[str, str], Mapping[str, str]]


def walk_speaker_sessions(root: str | Path, suffix: str):
    """Yield ``(utt_id, absolute path)`` for every ``<spk>/<session>/<utt><suffix>`` under
    ``root`` (VoxCeleb layout; utt_id = ``spk/session/utt``; hidden files are skipped)."""
    for spk in os.scandir(root):
        if not spk.is_dir():
            continue
        for session in os.scandir(spk.path):
            if not session.is_dir():
                continue
            for utt in os.scandir(session.path):
                if utt.name.endswith(suffix) and not utt.name.startswith("."):
                    stem = utt.name[: -len(suffix)]
                    yield f"{spk.name}/{session.name}/{stem}", os.path.abspath(utt.path)


def add_trial(trials: dict[tuple[str, str], str], utt1: str, utt2: str, label: str,
              path: str | Path, number: int) -> None:
    """Record a trial; a repeated pair with the same label is dropped, with the other label it is an error."""
    previous = trials.setdefault((utt1, utt2), label)
    if previous != label:
        raise file_error(path, f"pair {utt1} {utt2} listed with both labels", number)


def sorted_trials(trials: Mapping[tuple[str, str], str]) -> list[Trial]:
    """Trial rows in ``LC_ALL=C`` order of the line text ``utt1 utt2``."""
    keys = sorted(trials, key=lambda k: c_sort_key(f"{k[0]} {k[1]}"))
    return [(a, b, trials[(a, b)]) for a, b in keys]


def has_both_labels(rows: Sequence[Trial]) -> bool:
    """True when ``rows`` hold at least one target and one nontarget trial (needed for EER/minDCF)."""
    labels = {label for _, _, label in rows}
    return labels == set(KALDI_LABELS)


def write_corpus(out: Path, dirs: Mapping[str, DirContents], trials: Mapping[str, Sequence[Trial]]) -> None:
    """Write data directories ``out/<name>`` (``(wav, utt2spk[, utt2label])``) and
    ``out/trials/<name>`` (none for labelled corpora), replacing ``out`` as a whole."""
    if not trials and not all(len(contents) == 3 for contents in dirs.values()):
        raise SpkpeftError(f"{out}: no trial list to write")
    with new_directory(out) as tmp:
        for name, contents in dirs.items():
            write_data_dir(tmp / name, *contents)
        for name, rows in trials.items():
            write_text_atomic(tmp / "trials" / name, (" ".join(row) for row in rows))


def strip_audio_ext(name: str) -> str:
    """``name`` without a trailing ``.wav`` or ``.flac``."""
    for ext in (".wav", ".flac"):
        if name.endswith(ext):
            return name[: -len(ext)]
    return name


def find_audio(path: Path) -> Path | None:
    """``path`` if it exists, else the same name with the other of ``.wav``/``.flac``; None if neither does."""
    if path.is_file():
        return path
    stem = strip_audio_ext(path.name)
    for ext in (".flac", ".wav"):
        other = path.with_name(stem + ext)
        if other.is_file():
            return other
    return None


def csv_rows(path: Path, header: Sequence[str]) -> Iterator[tuple[int, list[str]]]:
    """``(line number, fields)`` of every non-blank row of a comma-separated file whose first
    line must be exactly ``header`` (an error naming line 1 otherwise).  The text is read by
    :func:`spkpeft.textfile.read_text_lines` (UTF-8, optional BOM, ``\\n`` or ``\\r\\n``); a
    malformed row (an unterminated quote, an over-long field) is an error naming its line."""
    lines = read_text_lines(path, "csv")
    reader = csv.reader(line + "\n" for line in lines)
    try:
        first = next(reader, None)
        if first is None or [h.strip() for h in first] != list(header):
            raise file_error(path, f"expected the header '{','.join(header)}', got {','.join(first or [])!r}", 1)
        for row in reader:
            if "".join(row).strip():
                yield reader.line_num, row
    except csv.Error as err:
        raise file_error(path, f"malformed csv ({err})", reader.line_num) from None
