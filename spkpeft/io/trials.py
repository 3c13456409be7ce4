"""Kaldi trials and score files.

Formats (UTF-8 text, one record per line, fields separated by whitespace; every
line, blank ones included, must hold exactly three fields, so that line ``i``
of a file is its ``i``-th record):

* trials file: ``utt1 utt2 target|nontarget`` (Kaldi labels only, no 1/0).
* score file:  ``utt1 utt2 score`` with a finite floating-point score.

A pair is the ordered ``(utt1, utt2)``; ``(a, b)`` and ``(b, a)`` are different
pairs. A pair may appear only once per file. Every error raised here is a
:class:`~spkpeft.errors.SpkpeftError` whose message starts with ``path:line:``
(``path:`` for errors that concern a whole file).
"""

from __future__ import annotations

import itertools
import math
import operator
import re
from pathlib import Path
from typing import Sequence

import numpy as np

from spkpeft.errors import SpkpeftError, file_error
from spkpeft.io.atomic import write_text_atomic
from spkpeft.io.records import read_records

Pair = tuple[str, str]
Trials = tuple[list[str], list[str], np.ndarray]

_LABELS = {"target": True, "nontarget": False}


def _check_new_pair(seen: dict[Pair, int], pair: Pair, path: str | Path, number: int) -> None:
    """Record ``pair`` at line ``number``; error if it was already seen."""
    first = seen.setdefault(pair, number)
    if first != number:
        raise file_error(path, f"duplicate pair '{pair[0]} {pair[1]}' (first on line {first})", number)


def read_trials(path: str | Path) -> Trials:
    """Read a Kaldi trials file -> ``(utt1 list, utt2 list, labels)``.

    ``labels`` is a bool array, True for ``target``. Errors (naming path:line):
    unreadable or empty file, a line without exactly 3 fields, a label other
    than ``target``/``nontarget``, a duplicate pair.
    """
    utt1: list[str] = []
    utt2: list[str] = []
    labels: list[bool] = []
    seen: dict[Pair, int] = {}
    for number, (a, b, label) in read_records(path, "trials", 3, "utt1 utt2 label"):
        if label not in _LABELS:
            raise file_error(path, f"label must be 'target' or 'nontarget', found '{label}'", number)
        _check_new_pair(seen, (a, b), path, number)
        utt1.append(a)
        utt2.append(b)
        labels.append(_LABELS[label])
    return utt1, utt2, np.array(labels, dtype=np.bool_)


#: a score as C, Kaldi and Python write one: ``-1.5``, ``3``, ``.5``, ``2e-05`` (ASCII digits only;
#: Python's ``float`` would also take ``1_000`` and non-ASCII digits such as ``١٢``)
_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def parse_score(text: str, path: str | Path, number: int) -> float:
    """A finite decimal number (:data:`_NUMBER`), else an error naming path:line."""
    if not _NUMBER.fullmatch(text):
        try:
            float(text)
        except ValueError:
            raise file_error(path, f"score '{text}' is not a number", number) from None
        if text.strip().lstrip("+-").lower() in ("nan", "inf", "infinity"):
            raise file_error(path, f"score '{text}' is not finite", number)
        raise file_error(path, f"score '{text}' is not a number", number)
    value = float(text)
    if not math.isfinite(value):
        raise file_error(path, f"score '{text}' is not finite", number)
    return value


def read_scores(path: str | Path) -> dict[Pair, float]:
    """Read a score file -> ``{(utt1, utt2): score}`` in file order.

    The dict's ``i``-th entry comes from line ``i + 1`` (every line is a record).
    Errors (naming path:line): unreadable or empty file, a line without exactly
    3 fields, a score that is not a number or is NaN/inf, a duplicate pair.
    """
    scores: dict[Pair, float] = {}
    seen: dict[Pair, int] = {}
    for number, (a, b, text) in read_records(path, "score", 3, "utt1 utt2 score"):
        value = parse_score(text, path, number)
        _check_new_pair(seen, (a, b), path, number)
        scores[(a, b)] = value
    return scores


def align_scores(trials: Trials, scores: dict[Pair, float],
                 trials_path: str | Path, scores_path: str | Path) -> np.ndarray:
    """Scores in trial order (float64 array), as read by :func:`read_trials` / :func:`read_scores`.

    Errors: a scored pair that is not a trial names ``scores_path`` and its line;
    a trial without a score names ``trials_path`` and the line of the first one.
    """
    utt1, utt2, _ = trials
    wanted = set(zip(utt1, utt2))
    for number, pair in enumerate(scores, start=1):
        if pair not in wanted:
            raise file_error(scores_path, f"pair '{pair[0]} {pair[1]}' is not in the trials file {trials_path}",
                             number)
    out = np.empty(len(utt1), dtype=np.float64)
    for index, pair in enumerate(zip(utt1, utt2)):
        value = scores.get(pair)
        if value is None:
            raise file_error(trials_path, f"trial '{pair[0]} {pair[1]}' has no score in {scores_path}", index + 1)
        out[index] = value
    return out


def load_scored_trials(trials_path: str | Path, scores_path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read and join a trials file and a score file -> ``(scores float64, labels bool)``."""
    trials = read_trials(trials_path)
    return align_scores(trials, read_scores(scores_path), trials_path, scores_path), trials[2]


def _format_scores(scores: np.ndarray) -> list[str]:
    """Shortest text that reads back to exactly the same value in the array's float type.

    float64 -> ``repr`` (up to 17 significant digits); float32/float16 -> numpy's
    shortest round-trip string for that type. Distinct values stay distinct and
    ordered after reading back as float64, so ties and metrics are preserved.
    """
    if scores.dtype == np.float64:
        return list(map(repr, scores.tolist()))
    return [str(v) for v in scores]


def write_scores(path: str | Path, utt1: Sequence[str], utt2: Sequence[str],
                 scores: Sequence[float] | np.ndarray) -> None:
    """Write ``utt1 utt2 score`` lines sorted by ``(utt1, utt2)``, atomically.

    Order: Python string order of the pair, i.e. byte order of the UTF-8 text,
    the same as ``LC_ALL=C sort``. Scores use a lossless format (see
    :func:`_format_scores`). The file is written by the atomic writer
    (:mod:`spkpeft.io.atomic`).
    """
    values = np.asarray(scores)
    if not np.issubdtype(values.dtype, np.floating):
        values = values.astype(np.float64)
    if not (len(utt1) == len(utt2) == values.size) or values.ndim != 1:
        raise file_error(path, f"write_scores needs 1-D inputs of equal lengths, got "
                               f"{len(utt1)}, {len(utt2)} and {values.size}")
    if not np.isfinite(values).all():
        raise file_error(path, "refusing to write non-finite scores")
    for utt in dict.fromkeys(itertools.chain(utt1, utt2)):  # each distinct id once, in order
        if utt.split() != [utt]:
            raise file_error(path, f"utterance id {utt!r} is empty or contains whitespace")
    pairs = list(zip(utt1, utt2))
    order = sorted(range(len(pairs)), key=pairs.__getitem__)  # C-level key: no Python call per trial
    ordered = [pairs[i] for i in order]
    if any(map(operator.eq, ordered, ordered[1:])):  # sorted: a duplicate sits next to its twin
        raise file_error(path, "refusing to write duplicate (utt1, utt2) pairs")
    texts = _format_scores(values)
    write_text_atomic(path, (f"{a} {b} {texts[i]}" for (a, b), i in zip(ordered, order)))


def write_trials(path: str | Path, utt1: Sequence[str], utt2: Sequence[str], labels: Sequence[bool] | np.ndarray) -> None:
    """Write ``utt1 utt2 target|nontarget`` lines sorted by ``(utt1, utt2)`` (``LC_ALL=C`` order), atomically."""
    flags = np.asarray(labels, dtype=np.bool_)
    if not (len(utt1) == len(utt2) == flags.size):
        raise file_error(path, f"write_trials needs inputs of equal lengths, got {len(utt1)}, {len(utt2)} and {flags.size}")
    if len(set(zip(utt1, utt2))) != len(utt1):
        raise file_error(path, "refusing to write duplicate (utt1, utt2) pairs")
    order = sorted(range(len(utt1)), key=lambda i: (utt1[i], utt2[i]))
    write_text_atomic(path, (f"{utt1[i]} {utt2[i]} {'target' if flags[i] else 'nontarget'}" for i in order))


#: score normalisations, in the order of the result tables
NORMS: tuple[str, ...] = ("none", "snorm", "asnorm")


def score_file_name(trials: str, norm: str = "none") -> str:
    """Score file of a trial list: ``<trials>.score`` raw, ``<trials>.<norm>.score`` normalised."""
    if norm not in NORMS:
        raise SpkpeftError(f"unknown score normalisation '{norm}' (expected one of {', '.join(NORMS)})")
    return f"{trials}.score" if norm == "none" else f"{trials}.{norm}.score"
