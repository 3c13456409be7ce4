"""Whole-utterance model outputs (stage 4: embeddings, class posteriors) to Kaldi ark/scp.

Long utterances are cut into ``chunk_seconds`` pieces; the embedding of an
utterance is the length-weighted mean of its chunks' embeddings.  A piece is read
from its file only when its batch is run (:class:`AudioPiece`), so memory holds one
batch of ``batch_seconds`` of audio, however long the recordings (an hour-long file:
docs/benchmarks.md).  Utterances are processed in shards of ``shard_size`` (in
``wav.scp`` order); each shard is written as ``parts/part_NNNNN.{ark,scp}``, each
file through the atomic writer and the ``.scp`` last, so an interrupted run (killed,
or stopped by a full disk) resumes at the first shard without an ``.scp``.
``xvector.scp`` (all shards) is written at the end, after checking that every
utterance got exactly one embedding.
"""

from __future__ import annotations

import io
import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import kaldiio
import numpy as np
import torch
from torch import nn

from spkpeft.io.audio import SAMPLE_RATE, AudioFile
from spkpeft.io.atomic import write_bytes_atomic, write_text_atomic
from spkpeft.io.datadir import read_data_dir
from spkpeft.engine.inference import embed_waveforms
from spkpeft.errors import SpkpeftError


@dataclass
class ExtractConfig:
    """``extract:`` section of a config."""

    checkpoint: str = "best"      # best | last | avg | a path
    chunk_seconds: float = 20.0
    batch_seconds: float = 120.0  # padded audio per batch
    shard_size: int = 2000

    def __post_init__(self) -> None:
        validate_extract_config(self)


def validate_extract_config(cfg: ExtractConfig) -> None:
    """Range checks; errors name the key."""
    for key in ("chunk_seconds", "batch_seconds"):
        if getattr(cfg, key) <= 0:
            raise SpkpeftError(f"extract.{key} must be > 0")
    if cfg.shard_size < 1:
        raise SpkpeftError("extract.shard_size must be >= 1")
    if not cfg.checkpoint:
        raise SpkpeftError("extract.checkpoint must be best, last, avg or a path")


def chunk_bounds(n: int, chunk_samples: int) -> list[tuple[int, int]]:
    """``(start, length)`` of ``ceil(n / chunk_samples)`` (at least 1) near-equal contiguous
    pieces of ``n`` samples: the first ``n % k`` of the ``k`` pieces are one sample longer
    (the pieces of ``np.array_split``)."""
    k = max(1, math.ceil(n / chunk_samples))
    size, extra = divmod(n, k)
    bounds, start = [], 0
    for i in range(k):
        length = size + (i < extra)
        bounds.append((start, length))
        start += length
    return bounds


def chunk(wav: np.ndarray, chunk_samples: int) -> list[np.ndarray]:
    """Split into ``ceil(len / chunk_samples)`` near-equal contiguous pieces (:func:`chunk_bounds`)."""
    return [wav[start:start + length] for start, length in chunk_bounds(wav.shape[0], chunk_samples)]


class AudioPiece:
    """Samples ``[start, start + length)`` of an audio file, decoded when used (``np.asarray``)."""

    def __init__(self, audio: AudioFile, start: int, length: int) -> None:
        self.audio, self.start, self.shape = audio, start, (length,)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        samples = self.audio.read(self.start, self.shape[0])
        return samples if dtype is None else samples.astype(dtype)


def pieces_of(wav: np.ndarray | AudioFile, chunk_samples: int) -> list[np.ndarray | AudioPiece]:
    """The chunks of a waveform (views) or of an audio file (read when used)."""
    if isinstance(wav, AudioFile):
        return [AudioPiece(wav, start, length) for start, length in chunk_bounds(wav.frames, chunk_samples)]
    return chunk(wav, chunk_samples)


def embed_utterances(model: nn.Module, wavs: Sequence[np.ndarray | AudioFile], cfg: ExtractConfig,
                     device: torch.device, progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Embeddings of whole utterances (waveforms, or files read chunk by chunk): length-weighted
    mean over chunks (``progress``: see :func:`~spkpeft.engine.inference.embed_waveforms`; it
    counts chunks)."""
    pieces, owner = [], []
    for i, wav in enumerate(wavs):
        for piece in pieces_of(wav, int(cfg.chunk_seconds * SAMPLE_RATE)):
            pieces.append(piece)
            owner.append(i)
    emb = embed_waveforms(model, pieces, device, int(cfg.batch_seconds * SAMPLE_RATE), progress)
    weights = np.array([p.shape[0] for p in pieces], dtype=np.float64)
    out = np.zeros((len(wavs), emb.shape[1]))
    total = np.zeros(len(wavs))
    np.add.at(out, owner, emb * weights[:, None])
    np.add.at(total, owner, weights)
    return (out / total[:, None]).astype(np.float32)


def write_ark_scp(ark: Path, scp: Path, utts: Sequence[str], vectors: np.ndarray) -> None:
    """Kaldi ``ark`` of one vector per utterance and its ``scp`` (``<utt> <ark>:<offset>``), both
    through the atomic writer, the ``scp`` last (an older ``scp`` is removed first): an ``scp``
    always indexes a finished ``ark``."""
    scp.unlink(missing_ok=True)
    data = io.BytesIO()
    offsets = []
    for utt, vec in zip(utts, vectors):
        start = data.tell()
        kaldiio.save_ark(data, {utt: vec})
        offsets.append(start + len(utt.encode("utf-8")) + 1)  # after "<utt> "
    content = data.getvalue()
    write_bytes_atomic(ark, lambda handle: handle.write(content))
    write_text_atomic(scp, (f"{utt} {ark}:{offset}" for utt, offset in zip(utts, offsets)))


def _write_shard(out_dir: Path, index: int, utts: list[str], emb: np.ndarray) -> None:
    ark = out_dir / "parts" / f"part_{index:05d}.ark"
    write_ark_scp(ark, ark.with_suffix(".scp"), utts, emb)


def extract_data_dir(model: nn.Module, data_dir: str | Path, out_dir: str | Path, cfg: ExtractConfig,
                     device: torch.device, source: dict, progress=None, name: str = "xvector") -> int:
    """Run ``model`` on every utterance of ``data_dir`` into ``out_dir/<name>.scp`` (embeddings:
    ``xvector``; class posteriors: ``posteriors``); returns how many utterances were processed.

    ``source`` identifies the model (checkpoint path, size, mtime); shards made
    from another source are discarded.
    """
    data = read_data_dir(data_dir)
    out_dir = Path(out_dir)
    stamp = out_dir / "source.json"
    if stamp.is_file() and json.loads(stamp.read_text()) != source:
        shutil.rmtree(out_dir)
    (out_dir / "parts").mkdir(parents=True, exist_ok=True)
    if not stamp.is_file():
        write_text_atomic(stamp, [json.dumps(source, sort_keys=True)])
    utts = data.utts
    n_shards = math.ceil(len(utts) / cfg.shard_size)
    done = 0
    for index in range(n_shards):
        shard = utts[index * cfg.shard_size:(index + 1) * cfg.shard_size]
        if (out_dir / "parts" / f"part_{index:05d}.scp").is_file():
            continue
        wavs = [AudioFile(data.wav[u]) for u in shard]  # headers only: chunks are read per batch
        _write_shard(out_dir, index, shard, embed_utterances(model, wavs, cfg, device))
        done += len(shard)
        if progress:
            progress(index + 1, n_shards)
    _combine(out_dir, n_shards, utts, data_dir, name)
    return done


def _combine(out_dir: Path, n_shards: int, utts: list[str], data_dir, name: str) -> None:
    lines = []
    for index in range(n_shards):
        lines += (out_dir / "parts" / f"part_{index:05d}.scp").read_text().splitlines()
    got = [line.split(maxsplit=1)[0] for line in lines]
    if got != utts:
        missing = sorted(set(utts) - set(got))
        raise SpkpeftError(f"{out_dir}: embeddings do not cover {data_dir} exactly "
                           f"({len(got)} embeddings for {len(utts)} utterances; first missing: "
                           f"{missing[0] if missing else 'none'})")
    write_text_atomic(out_dir / f"{name}.scp", lines)
