"""Embedding extraction: chunking, batching by length, resumable shards, completeness."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from spkpeft.io.datadir import read_data_dir
from spkpeft.engine.inference import embed_waveforms
from spkpeft.errors import SpkpeftError
from spkpeft.engine.extract import ExtractConfig, chunk, embed_utterances, extract_data_dir
from spkpeft.tasks.sv.scoring import load_embeddings
from conftest import write_tone
from spkpeft.io.datadir import write_data_dir


class MeanModel(nn.Module):
    """A stand-in model whose embedding is [mean, mean^2, length] of the valid samples."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, wavs, lens):
        self.calls.append(tuple(wavs.shape))
        mask = torch.arange(wavs.shape[1])[None] < lens[:, None]
        mean = (wavs * mask).sum(1) / lens
        return torch.stack([mean, mean**2, lens.float()], dim=1)


def test_embed_waveforms_masks_padding_and_bounds_batches():
    rng = np.random.default_rng(0)
    wavs = [rng.normal(size=n).astype(np.float32) for n in (50, 300, 120, 301, 10)]
    model = MeanModel()
    emb = embed_waveforms(model, wavs, torch.device("cpu"), max_batch_samples=620)
    for w, e in zip(wavs, emb):
        assert e[0] == pytest.approx(w.mean(), abs=1e-6) and e[2] == len(w)
    assert all(b * t <= 620 for b, t in model.calls)


def test_long_utterances_are_chunked_and_length_weighted():
    wav = np.concatenate([np.ones(100), 3 * np.ones(150)]).astype(np.float32)
    cfg = ExtractConfig(chunk_seconds=125 / 16000)
    assert [len(c) for c in chunk(wav, 125)] == [125, 125]
    (emb,) = embed_utterances(MeanModel(), [wav], cfg, torch.device("cpu"))
    # chunks: mean (100*1 + 25*3)/125 = 1.4 and 3.0, equal lengths -> 2.2 == whole-utterance mean
    assert emb[0] == pytest.approx(2.2, abs=1e-6)
    assert emb[2] == pytest.approx(125)


def make_dir(tmp_path, n=7):
    wav = {f"u{i}": str(write_tone(tmp_path / "a" / f"u{i}.wav", seconds=0.01 * (i + 1))) for i in range(n)}
    write_data_dir(tmp_path / "d", wav, {u: "s" for u in wav})
    return tmp_path / "d"


def test_extraction_is_resumable_and_complete(tmp_path):
    data = make_dir(tmp_path)
    cfg = ExtractConfig(shard_size=3)
    source = {"checkpoint": "x", "size": 1, "mtime_ns": 1}
    out = tmp_path / "emb"
    assert extract_data_dir(MeanModel(), data, out, cfg, torch.device("cpu"), source) == 7
    first = load_embeddings([out / "xvector.scp"])
    assert sorted(first) == read_data_dir(data).utts

    (out / "parts" / "part_00001.scp").unlink()          # as if killed while writing shard 1
    assert extract_data_dir(MeanModel(), data, out, cfg, torch.device("cpu"), source) == 3
    again = load_embeddings([out / "xvector.scp"])
    assert all(np.array_equal(first[u], again[u]) for u in first)

    other = {**source, "mtime_ns": 2}                     # a new checkpoint: everything is redone
    assert extract_data_dir(MeanModel(), data, out, cfg, torch.device("cpu"), other) == 7


def test_extraction_detects_a_stale_shard(tmp_path):
    data = make_dir(tmp_path)
    cfg = ExtractConfig(shard_size=3)
    source = {"checkpoint": "x", "size": 1, "mtime_ns": 1}
    out = tmp_path / "emb"
    extract_data_dir(MeanModel(), data, out, cfg, torch.device("cpu"), source)
    scp = out / "parts" / "part_00000.scp"
    scp.write_text("".join(scp.read_text().splitlines(keepends=True)[:-1]))
    (out / "xvector.scp").unlink()
    with pytest.raises(SpkpeftError, match="do not cover"):
        extract_data_dir(MeanModel(), data, out, cfg, torch.device("cpu"), source)
    assert not (out / "xvector.scp").exists()
