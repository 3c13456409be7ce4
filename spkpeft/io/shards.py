"""Sharded data directories: a Kaldi data directory packed into WebDataset-style tar shards.

Large corpora (VoxCeleb2: 1.1 million files) train faster from a few large files read
sequentially than from one small file per utterance.  A shard directory ``DIR`` (written by
``python -m spkpeft.bin.make_shards``) holds:

- ``DIR/shards/shard-NNNNNN.tar``: POSIX tar files (pax format: ustar headers, extended
  only for names over 100 bytes) of about ``utts_per_shard``
  utterances each; per utterance two consecutive members, ``<utt-id>.json`` (its labels:
  ``{"utt", "spk"}`` plus ``"label"``, ``"attack"``, ``"condition"`` when the data directory
  has ``utt2label``, ``utt2attack``, ``utt2condition``) then ``<utt-id>.<ext>`` (the audio
  file's bytes, ``ext`` = ``wav`` or ``flac``).  The key is everything before the member's
  last ``.``, so utterance ids may hold ``/`` (VoxCeleb's ``spk/session/utt``) and dots;
  members are never extracted to disk;
- ``DIR/shard2utt``: ``<shard-name> <utt-id> <utt-id> ...``, one line per shard, the
  utterances of each shard in member order (the packing plan; utterances are assigned to
  shards in a random order drawn from ``seed``, so a shard mixes speakers and classes);
- ``DIR/shards.json``: ``{"format", "data_dir", "fingerprint", "num_utts", "num_shards",
  "utts_per_shard", "seed", "audio"}``; ``fingerprint`` is the SHA-256 of the data
  directory's text files (``wav.scp``, ``utt2spk`` and the optional per-utterance files, in
  that order), so training refuses shards of another version of the data directory (the
  audio files themselves are not hashed);
- ``DIR/shards.list``: one shard path a line, relative to ``DIR`` (absolute paths are
  accepted too), written last: the shard directory is complete once it exists.

Every file is written atomically (:mod:`spkpeft.io.atomic`), a shard too: a shard appears
under its final name only when complete, so an interrupted packing resumes with the shards
still missing.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import soundfile as sf

from spkpeft.errors import SpkpeftError, file_error
from spkpeft.io.atomic import atomic_open, buffered, remove_stale_temps, write_json_atomic, write_text_atomic
from spkpeft.io.audio import SAMPLE_RATE, audio_info, read_audio
from spkpeft.io.datadir import OPTIONAL_PER_UTT, DataDir, read_lines

FORMAT = "spkpeft-shards-1"
SHARD_SUBDIR = "shards"
LIST_FILE = "shards.list"
META_FILE = "shards.json"
PLAN_FILE = "shard2utt"
AUDIO_EXTS = ("wav", "flac")
LABEL_FILES = {"label": "utt2label", "attack": "utt2attack", "condition": "utt2condition"}


def shard_name(index: int) -> str:
    """``shard-NNNNNN.tar`` (six digits, zero-padded)."""
    return f"shard-{index:06d}.tar"


def fingerprint(data: DataDir) -> str:
    """SHA-256 of ``wav.scp``, ``utt2spk`` and the present optional per-utterance files."""
    digest = hashlib.sha256()
    for name in ("wav.scp", "utt2spk", *OPTIONAL_PER_UTT):
        path = data.path / name
        if path.is_file():
            digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def utterance_labels(data: DataDir, utt: str) -> dict[str, str]:
    """The ``.json`` member of ``utt``: ``{"utt", "spk"[, "label", "attack", "condition"]}``."""
    meta = {"utt": utt, "spk": data.utt2spk[utt]}
    for key, name in LABEL_FILES.items():
        table = getattr(data, name)
        if table is not None:
            meta[key] = table[utt]
    return meta


def plan_shards(utts: list[str], utts_per_shard: int, seed: int) -> list[list[str]]:
    """``ceil(n / utts_per_shard)`` shards of near-equal size (differing by at most one) of the
    utterances in a random order drawn from ``seed``."""
    if utts_per_shard < 1:
        raise SpkpeftError(f"utterances per shard must be >= 1, got {utts_per_shard}")
    if not utts:
        raise SpkpeftError("no utterances to pack")
    order = np.random.default_rng([seed, 11]).permutation(len(utts))
    count = -(-len(utts) // utts_per_shard)
    return [[utts[i] for i in part] for part in np.array_split(order, count)]


def check_key(utt: str) -> None:
    """Utterance ids become member names: no empty, absolute or ``..`` path component."""
    parts = utt.split("/")
    if utt.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\0" in utt:
        raise SpkpeftError(f"utterance id '{utt}' cannot be a tar member name (empty, absolute or '..' component)")


def _add_member(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(payload))


def write_shard(path: Path, records: Iterable[tuple[str, dict, bytes, str]]) -> None:
    """Write the shard ``path`` atomically from ``(utt, labels, audio bytes, ext)`` records."""
    with atomic_open(path, "wb") as handle:
        with tarfile.open(fileobj=handle, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for utt, labels, audio, ext in records:
                _add_member(tar, f"{utt}.json", json.dumps(labels, sort_keys=True).encode())
                _add_member(tar, f"{utt}.{ext}", audio)


def read_shard(path: Path, keep: Callable[[str], bool] = lambda _utt: True) -> Iterator[tuple[str, dict, bytes]]:
    """``(utt, labels, audio bytes)`` of the shard's utterances, in member order, sequentially.

    Utterances for which ``keep(utt)`` is false are skipped without reading their data.
    A missing, truncated or malformed shard raises a :class:`SpkpeftError` naming it.
    """
    try:
        with tarfile.open(path, mode="r:") as tar:
            labels: dict | None = None
            pending = None
            for member in tar:
                key, _, ext = member.name.rpartition(".")
                if ext == "json":
                    labels = json.loads(tar.extractfile(member).read()) if keep(key) else None
                    pending = key
                    continue
                if ext not in AUDIO_EXTS or not member.isfile():
                    raise file_error(path, f"unexpected member '{member.name}' (expected <utt>.json, <utt>.wav|flac)")
                if key != pending:
                    raise file_error(path, f"member '{member.name}' does not follow its '{key}.json'")
                if labels is not None:
                    audio = tar.extractfile(member).read()
                    if len(audio) != member.size:
                        raise file_error(path, f"not a readable shard (member '{member.name}' is truncated)")
                    yield key, labels, audio
    except FileNotFoundError:
        raise file_error(path, "shard file does not exist") from None
    except (tarfile.TarError, OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise file_error(path, f"not a readable shard ({type(err).__name__}: {err})") from None


@dataclass
class ShardSet:
    """A complete shard directory: its options and, per shard, the path and utterances."""

    root: Path
    meta: dict
    paths: list[Path]
    utts: list[list[str]]

    def check_matches(self, data: DataDir) -> None:
        """Raise unless the shards were packed from ``data`` as it is now (same text files)."""
        if self.meta.get("fingerprint") != fingerprint(data):
            raise file_error(self.root / META_FILE, f"the shards were packed from another version of {data.path} "
                             f"(its wav.scp / utt2spk / utt2label differ); pack them again with "
                             f"python -m spkpeft.bin.make_shards --data-dir {data.path} --out {self.root}")


def read_meta(root: Path) -> dict:
    """``DIR/shards.json`` (an error naming it when missing or malformed)."""
    path = root / META_FILE
    if not path.is_file():
        raise file_error(path, "missing: not a shard directory (python -m spkpeft.bin.make_shards writes one)")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise file_error(path, f"not valid JSON ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise file_error(path, f"not a shard directory description (expected \"format\": \"{FORMAT}\")")
    return meta


def read_plan(root: Path) -> "dict[str, list[str]]":
    """``DIR/shard2utt``: shard name -> its utterances in member order."""
    path = root / PLAN_FILE
    plan: dict[str, list[str]] = {}
    for number, fields in read_lines(path):
        if len(fields) < 2:
            raise file_error(path, "expected '<shard-name> <utt-id> ...'", number)
        if fields[0] in plan:
            raise file_error(path, f"duplicate shard '{fields[0]}'", number)
        plan[fields[0]] = fields[1:]
    return plan


def read_shard_set(root: str | Path) -> ShardSet:
    """Read and check a complete shard directory (not the tar files themselves)."""
    root = Path(root)
    if not root.is_dir():
        raise SpkpeftError(f"{root}: shard directory does not exist")
    meta = read_meta(root)
    plan = read_plan(root)
    list_path = root / LIST_FILE
    if not list_path.is_file():
        raise file_error(list_path, "missing: the packing did not finish; run make_shards again to complete it")
    paths, utts = [], []
    for number, fields in read_lines(list_path):
        path = Path(" ".join(fields))
        full = path if path.is_absolute() else root / path
        if path.name not in plan:
            raise file_error(list_path, f"shard '{path.name}' is not in {PLAN_FILE}", number)
        if not full.is_file():
            raise file_error(list_path, f"shard file {full} does not exist", number)
        paths.append(full)
        utts.append(plan[path.name])
    if len(paths) != len(plan):
        raise file_error(list_path, f"lists {len(paths)} shards, {PLAN_FILE} plans {len(plan)}")
    return ShardSet(root, meta, paths, utts)


def write_plan(root: Path, meta: dict, plan: list[list[str]]) -> None:
    """``shard2utt`` and ``shards.json`` (before any shard is written)."""
    write_text_atomic(root / PLAN_FILE, (f"{shard_name(i)} {' '.join(us)}" for i, us in enumerate(plan)))
    write_json_atomic(root / META_FILE, meta)


def write_list(root: Path, count: int) -> None:
    """``shards.list`` (last: marks the directory complete)."""
    write_text_atomic(root / LIST_FILE, (f"{SHARD_SUBDIR}/{shard_name(i)}" for i in range(count)))


def audio_member(path: str, audio: str) -> tuple[bytes, str]:
    """``(bytes, ext)`` of the audio member: the file as it is (``audio="copy"``: a ``.wav`` or
    ``.flac`` file), or decoded and re-encoded as 16-bit ``wav`` / ``flac``."""
    if audio == "copy":
        ext = Path(path).suffix.lower().lstrip(".")
        if ext not in AUDIO_EXTS:
            raise file_error(path, f"cannot copy a .{ext} file into a shard (use --audio flac or wav to re-encode)")
        audio_info(path)  # a missing file is named as such
        return Path(path).read_bytes(), ext
    samples = read_audio(path)
    fmt = {"wav": "WAV", "flac": "FLAC"}[audio]
    return buffered(lambda handle: sf.write(handle, samples, SAMPLE_RATE, subtype="PCM_16", format=fmt)), audio


def pack_shard(data: DataDir, utts: list[str], path: Path, audio: str) -> None:
    """Write one shard of ``data``'s utterances ``utts`` (errors name ``wav.scp`` and the line)."""
    line_of = {utt: number for number, utt in enumerate(data.wav, 1)}

    def records() -> Iterator[tuple[str, dict, bytes, str]]:
        for utt in utts:
            try:
                payload, ext = audio_member(data.wav[utt], audio)
            except SpkpeftError as err:
                raise file_error(data.path / "wav.scp", f"utterance '{utt}': {err}", line_of[utt]) from None
            yield utt, utterance_labels(data, utt), payload, ext

    write_shard(path, records())


def pack_options(data: DataDir, utts_per_shard: int, seed: int, audio: str, count: int) -> dict:
    """The ``shards.json`` of packing ``data`` with these options into ``count`` shards."""
    return {"format": FORMAT, "data_dir": str(data.path), "fingerprint": fingerprint(data),
            "num_utts": len(data.wav), "num_shards": count, "utts_per_shard": utts_per_shard,
            "seed": seed, "audio": audio}


def pack_data_dir(data: DataDir, out: str | Path, utts_per_shard: int = 1000, nj: int = 1, seed: int = 0,
                  audio: str = "copy", log: Callable[[str], None] = lambda _msg: None) -> ShardSet:
    """Pack ``data`` into the shard directory ``out`` (see the module docstring), ``nj`` shards at a time.

    Resumes: shards already complete are kept.  A directory planned for other data or other
    options is refused (an error naming its ``shards.json``), never mixed.
    """
    if audio not in ("copy", *AUDIO_EXTS):
        raise SpkpeftError(f"audio must be copy, wav or flac, got {audio!r}")
    for utt in data.wav:
        check_key(utt)
    root = Path(out)
    plan = plan_shards(list(data.wav), utts_per_shard, seed)
    meta = pack_options(data, utts_per_shard, seed, audio, len(plan))
    if (root / META_FILE).is_file():
        old = read_meta(root)
        changed = [k for k in meta if old.get(k) != meta[k] and k != "data_dir"]
        if changed:
            raise file_error(root / META_FILE, f"holds shards of other data or options ('{changed[0]}' differs); "
                             f"remove {root} or choose another --out")
    else:
        (root / LIST_FILE).unlink(missing_ok=True)
        write_plan(root, meta, plan)
    shard_dir = root / SHARD_SUBDIR
    shard_dir.mkdir(parents=True, exist_ok=True)
    for stale in remove_stale_temps(shard_dir):
        log(f"removed {stale}, left by an interrupted packing")
    todo = [i for i in range(len(plan)) if not (shard_dir / shard_name(i)).is_file()]
    log(f"{root}: {len(plan)} shards of about {utts_per_shard} utterances, {len(plan) - len(todo)} already complete")
    with ThreadPoolExecutor(max_workers=max(1, nj)) as pool:
        for _ in pool.map(lambda i: pack_shard(data, plan[i], shard_dir / shard_name(i), audio), todo):
            pass
    write_list(root, len(plan))
    return read_shard_set(root)
