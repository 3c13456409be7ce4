"""Kaldi data directories: reading, writing and validation.

A data directory holds three text files, each sorted by its first field in
byte order (``LC_ALL=C sort``), with unique keys:

- ``wav.scp``: ``<utt-id> <path>`` -- the path is the rest of the line, so it
  may contain spaces; pipes (``cmd |``) are not supported;
- ``utt2spk``: ``<utt-id> <spk-id>``;
- ``spk2utt``: ``<spk-id> <utt-id> <utt-id> ...``, derived from ``utt2spk``;
- optional ``utt2label``: ``<utt-id> <label>`` (classification: a class name; spoofing
  countermeasures: ``bonafide`` | ``spoof``), for exactly the utterances of ``wav.scp``;
- optional ``utt2attack`` (spoofing countermeasures): ``<utt-id> <attack-id>``, ``-`` for
  bona fide, for exactly the utterances of ``wav.scp``;
- optional ``utt2condition`` (spoofing countermeasures, ASVspoof 2021 LA/DF):
  ``<utt-id> <condition-id>`` (the codec / transmission condition, e.g. ``LA-C3``, for bona
  fide and spoofed utterances alike), for exactly the utterances of ``wav.scp``.
  A directory without speakers gives each utterance its own (``utt2spk``: ``u u``).

A corpus directory (``data/<corpus>``) holds data directories (``train``,
``test``, ...) and ``trials/<name>`` files with lines
``<utt1> <utt2> target|nontarget`` (see :mod:`spkpeft.io.trials`).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping

from spkpeft.errors import SpkpeftError, file_error
from spkpeft.textfile import read_text_lines
from spkpeft.io.atomic import write_text_atomic
from spkpeft.io.audio import FLOAT_SUBTYPES, SAMPLE_RATE, AudioFile, audio_info


def c_sort_key(text: str) -> bytes:
    """Sort key that reproduces ``LC_ALL=C sort`` (byte order of UTF-8)."""
    return text.encode("utf-8")


def _lines(path: Path) -> list[str]:
    """The lines of a text file (:func:`spkpeft.textfile.read_text_lines`); a missing file is named."""
    if not path.is_file():
        raise file_error(path, "file does not exist")
    return read_text_lines(path)


def read_lines(path: str | Path) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line_number, fields)`` of a whitespace-separated text file (1-based, blank lines
    skipped; UTF-8 with an optional BOM, ``\\n`` or ``\\r\\n`` line ends: :mod:`spkpeft.textfile`)."""
    for number, line in enumerate(_lines(Path(path)), 1):
        fields = line.split()
        if fields:
            yield number, fields


def read_key_value(path: str | Path, *, rest_of_line: bool = False) -> "OrderedDict[str, str]":
    """Read a two-column Kaldi map, checking unique keys in ``LC_ALL=C`` order.

    With ``rest_of_line`` the value is everything after the first field (paths
    with spaces in ``wav.scp``); otherwise exactly two fields are required.
    """
    path = Path(path)
    table: OrderedDict[str, str] = OrderedDict()
    previous: str | None = None
    for number, line in enumerate(_lines(path), 1):
        if not line.strip():
            raise file_error(path, "empty line", number)
        if rest_of_line:
            parts = line.strip().split(maxsplit=1)
            if len(parts) != 2:
                raise file_error(path, f"expected '<key> <value>', got {line!r}", number)
        else:
            parts = line.split()
            if len(parts) != 2:
                raise file_error(path, f"expected 2 fields, got {len(parts)}: {line!r}", number)
        key, value = parts
        if key in table:
            raise file_error(path, f"duplicate key '{key}'", number)
        if previous is not None and c_sort_key(key) < c_sort_key(previous):
            raise file_error(path, f"not sorted (LC_ALL=C): '{key}' after '{previous}'", number)
        table[key] = value
        previous = key
    if not table:
        raise file_error(path, "file is empty")
    return table


def utt2spk_to_spk2utt(utt2spk: Mapping[str, str]) -> "OrderedDict[str, list[str]]":
    """Invert ``utt2spk``: speakers in byte order, each with its utterances in byte order."""
    spk2utt: dict[str, list[str]] = {}
    for utt, spk in utt2spk.items():
        spk2utt.setdefault(spk, []).append(utt)
    return OrderedDict(
        (spk, sorted(spk2utt[spk], key=c_sort_key)) for spk in sorted(spk2utt, key=c_sort_key)
    )


@dataclass
class DataDir:
    """An in-memory Kaldi data directory."""

    path: Path
    wav: "OrderedDict[str, str]"
    utt2spk: "OrderedDict[str, str]"
    utt2label: "OrderedDict[str, str] | None" = None
    utt2attack: "OrderedDict[str, str] | None" = None
    utt2condition: "OrderedDict[str, str] | None" = None

    @property
    def spk2utt(self) -> "OrderedDict[str, list[str]]":
        return utt2spk_to_spk2utt(self.utt2spk)

    @property
    def utts(self) -> list[str]:
        return list(self.wav)


def utf8(text: str) -> bool:
    """Whether ``text`` can be written as UTF-8 (not so: names decoded with surrogate escapes)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def write_data_dir(out: str | Path, wav: Mapping[str, str], utt2spk: Mapping[str, str],
                   utt2label: Mapping[str, str] | None = None, utt2attack: Mapping[str, str] | None = None,
                   utt2condition: Mapping[str, str] | None = None) -> None:
    """Write ``wav.scp``, ``utt2spk``, ``spk2utt`` (and the optional ``utt2label``, ``utt2attack``,
    ``utt2condition``) sorted in ``LC_ALL=C`` order."""
    out = Path(out)
    optional = (("utt2label", utt2label), ("utt2attack", utt2attack), ("utt2condition", utt2condition))
    if set(wav) != set(utt2spk) or any(t is not None and set(t) != set(wav) for _, t in optional):
        raise SpkpeftError(f"{out}: wav.scp, utt2spk, utt2label, utt2attack and utt2condition must list "
                           "the same utterances")
    for utt, path in wav.items():
        if not utf8(path):  # a file name in another encoding, read by os.scandir as surrogates
            raise SpkpeftError(f"{os.fsencode(path)!r}: the file name is not UTF-8 (as wav.scp must be); "
                               "rename it (e.g. convmv -f latin1 -t utf8 -r --notest DIR)")
        if not path or path != path.strip() or "\n" in path or "\r" in path:
            raise SpkpeftError(f"{path!r}: a path that starts or ends with whitespace or holds a line break "
                               "cannot be written in wav.scp (spaces inside are fine); rename it")
        if not utt or any(c.isspace() for c in utt) or not utf8(utt):
            raise SpkpeftError(f"{out}: utterance id {utt!r} is empty, contains whitespace or is not UTF-8")
        spk = utt2spk[utt]
        if not spk or any(c.isspace() for c in spk) or not utf8(spk):
            raise SpkpeftError(f"{out}: speaker id {spk!r} of '{utt}' is empty, contains whitespace or is not UTF-8")
    utts = sorted(wav, key=c_sort_key)
    write_text_atomic(out / "wav.scp", (f"{u} {wav[u]}" for u in utts))
    write_text_atomic(out / "utt2spk", (f"{u} {utt2spk[u]}" for u in utts))
    spk2utt = utt2spk_to_spk2utt(utt2spk)
    write_text_atomic(out / "spk2utt", (f"{s} {' '.join(us)}" for s, us in spk2utt.items()))
    for name, table in optional:
        if table is None:
            continue
        for utt, value in table.items():
            if not value or any(c.isspace() for c in value) or not utf8(value):
                raise SpkpeftError(f"{out}: {name} value {value!r} of '{utt}' is empty or contains whitespace")
        write_text_atomic(out / name, (f"{u} {table[u]}" for u in utts))


def _check_spk2utt(path: Path, utt2spk: Mapping[str, str]) -> None:
    expected = utt2spk_to_spk2utt(utt2spk)
    seen: list[str] = []
    for number, fields in read_lines(path):
        spk, utts = fields[0], fields[1:]
        if spk not in expected:
            raise file_error(path, f"speaker '{spk}' is not in utt2spk", number)
        if utts != expected[spk]:
            raise file_error(path, f"utterances of '{spk}' disagree with utt2spk (or are not sorted)", number)
        if seen and c_sort_key(spk) <= c_sort_key(seen[-1]):
            raise file_error(path, f"not sorted (LC_ALL=C) or duplicate: '{spk}' after '{seen[-1]}'", number)
        seen.append(spk)
    missing = set(expected) - set(seen)
    if missing:
        raise file_error(path, f"speaker '{sorted(missing, key=c_sort_key)[0]}' of utt2spk is missing")


def read_data_dir(path: str | Path) -> DataDir:
    """Read and check the text files of a data directory (not the audio)."""
    path = Path(path)
    if not path.is_dir():
        raise SpkpeftError(f"{path}: data directory does not exist")
    wav = read_key_value(path / "wav.scp", rest_of_line=True)
    utt2spk = read_key_value(path / "utt2spk")
    for number, (utt, target) in enumerate(wav.items(), 1):
        if target.rstrip().endswith("|"):
            raise file_error(path / "wav.scp", "pipe commands are not supported; give a file path", number)
        if utt not in utt2spk:
            raise file_error(path / "wav.scp", f"utterance '{utt}' is missing from utt2spk", number)
    for number, utt in enumerate(utt2spk, 1):
        if utt not in wav:
            raise file_error(path / "utt2spk", f"utterance '{utt}' is missing from wav.scp", number)
    _check_spk2utt(path / "spk2utt", utt2spk)
    optional = {name: read_per_utt(path / name, wav) if (path / name).is_file() else None
                for name in OPTIONAL_PER_UTT}
    return DataDir(path=path, wav=wav, utt2spk=utt2spk, **optional)


#: the optional per-utterance files of a data directory (also the :class:`DataDir` fields)
OPTIONAL_PER_UTT = ("utt2label", "utt2attack", "utt2condition")


def read_per_utt(path: Path, wav: Mapping[str, str]) -> "OrderedDict[str, str]":
    """A per-utterance file (``utt2label``, ``utt2attack``, ``utt2condition``): ``<utt> <value>``
    lines, sorted, unique, exactly the utterances of ``wav.scp`` (errors name file and line)."""
    labels = read_key_value(path)
    for number, utt in enumerate(labels, 1):
        if utt not in wav:
            raise file_error(path, f"utterance '{utt}' is missing from wav.scp", number)
    missing = [u for u in wav if u not in labels]
    if missing:
        raise file_error(path, f"utterance '{missing[0]}' of wav.scp is missing")
    return labels


def resolve_audio_path(data: DataDir, utt: str) -> Path:
    """Audio path of ``utt``; relative paths are relative to the current directory (Kaldi convention)."""
    return Path(data.wav[utt])


#: utterances per task of :func:`check_audio`'s thread pool
AUDIO_CHECK_CHUNK = 256


def check_audio(data: DataDir, sample_rate: int = SAMPLE_RATE, nj: int = 1) -> None:
    """Every file of ``wav.scp`` exists, has a readable header, is mono at ``sample_rate`` and not
    empty; a float file (the only kind that can) holds no NaN or infinite sample."""
    scp = data.path / "wav.scp"
    line_of = {utt: number for number, utt in enumerate(data.wav, 1)}

    def check(utt: str) -> None:
        try:
            info = audio_info(resolve_audio_path(data, utt))
        except SpkpeftError as err:
            raise file_error(scp, f"utterance '{utt}': {err}", line_of[utt]) from None
        problem = None
        if info.channels != 1:
            problem = f"expected mono audio, found {info.channels} channels"
        elif info.samplerate != sample_rate:
            problem = f"expected {sample_rate} Hz, found {info.samplerate} Hz"
        elif info.frames == 0:
            problem = "audio file holds no samples"
        elif info.subtype in FLOAT_SUBTYPES:  # only float samples can be NaN or infinite: decode them
            path = resolve_audio_path(data, utt)
            try:
                AudioFile(path, expected_sr=sample_rate).read()
            except SpkpeftError as err:
                problem = str(err).removeprefix(f"{path}: ")
        if problem:
            raise file_error(scp, f"utterance '{utt}' ({data.wav[utt]}): {problem}", line_of[utt])

    def check_chunk(utts: list[str]) -> None:
        for utt in utts:
            check(utt)

    # Chunks, not one task per file: a future per utterance costs ~2 kB until the map ends
    # (240 MB for 100,000 files).  Chunks are checked in order and each stops at its first
    # problem, so the error reported is still the first one in wav.scp order.
    utts = list(data.wav)
    chunks = [utts[start:start + AUDIO_CHECK_CHUNK] for start in range(0, len(utts), AUDIO_CHECK_CHUNK)]
    with ThreadPoolExecutor(max_workers=max(1, nj)) as pool:
        for _ in pool.map(check_chunk, chunks):
            pass


def find_data_dirs(corpus_dir: str | Path) -> list[Path]:
    """Data directories (subdirectories holding ``wav.scp``) of a corpus directory, sorted."""
    corpus_dir = Path(corpus_dir)
    return sorted(p for p in corpus_dir.iterdir() if (p / "wav.scp").is_file())
