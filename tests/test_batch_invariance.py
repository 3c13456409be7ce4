"""An utterance's embedding does not depend on the batch it is embedded in.

GroupNorm upstreams (``tiny_wavlm``: s3prl ``extractor_mode: default``, like wav2vec 2.0 /
HuBERT / WavLM Base) normalise the first CNN layer over time; LayerNorm upstreams
(``tiny_wav2vec2``, like the large models) per frame.  Both must give the same embedding
alone and inside padded batches of mixed lengths, and stage 4 the same embeddings
whatever ``extract.batch_seconds`` is.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from spkpeft.tasks.config import load_config
from spkpeft.io.datadir import write_data_dir
from spkpeft.engine.inference import embed_waveforms
from spkpeft.engine.extract import ExtractConfig, extract_data_dir
from spkpeft.nn.model import build_model
from spkpeft.tasks.sv.scoring import load_embeddings
from spkpeft.upstream.s3prl import frontend
from conftest import REPO

pytestmark = pytest.mark.usefixtures("isolated_model_cache")

ARCHS = ["tiny_wavlm", "tiny_wav2vec2"]  # GroupNorm CNN, LayerNorm CNN
LENGTHS = (3300, 5000, 7777, 12000, 16000, 9100)


def speaker_model(arch: str):
    """The mini config's model (SV adapters, small ECAPA) on ``random:<arch>``, its
    zero-initialised parts moved so that every module takes part, in eval mode."""
    torch.manual_seed(0)
    model = build_model(load_config(REPO / "conf" / "mini.yaml", {"upstream.name": f"random:{arch}"}))
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn(p.shape))
    return model.eval()


def utterances(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(0.3 * rng.standard_normal(n)).astype(np.float32) for n in LENGTHS]


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.mark.parametrize("arch", ARCHS)
def test_embedding_alone_equals_embedding_in_padded_batches(arch):
    model = speaker_model(arch)
    wavs = utterances()
    cpu = torch.device("cpu")
    alone = np.stack([embed_waveforms(model, [w], cpu)[0] for w in wavs])
    one_batch = embed_waveforms(model, wavs, cpu, max_batch_samples=10**9)  # all six, padded to 1 s
    pairs = embed_waveforms(model, wavs, cpu, max_batch_samples=2 * 16000)  # other groupings
    for batched in (one_batch, pairs):
        assert cosines(alone, batched).min() >= 0.99999
        np.testing.assert_allclose(batched, alone, atol=1e-4, rtol=0)


@pytest.mark.parametrize("arch", ARCHS)
def test_frames_are_those_of_the_utterance_alone(arch):
    """Lengths follow the CNN formula (s3prl's WavLM/HuBERT chunk rule gave one frame more)."""
    up = speaker_model(arch).upstream
    wavs = utterances()
    padded = torch.zeros(len(wavs), max(LENGTHS))
    for i, w in enumerate(wavs):
        padded[i, : len(w)] = torch.from_numpy(w)
    with torch.no_grad():
        _, lengths = up(padded, torch.tensor(LENGTHS))
        for i, w in enumerate(wavs):
            hidden, alone = up(torch.from_numpy(w)[None], torch.tensor([len(w)]))
            assert int(lengths[i]) == int(alone[0]) == hidden[0].shape[1]
    cnn = up.model.feature_extractor
    assert frontend.cnn_output_lengths(cnn, torch.tensor([400, 719, 720])).tolist() == [
        int(frontend.cnn_output_lengths(cnn, torch.tensor([n]))) for n in (400, 719, 720)
    ]


def test_masked_group_norm_equals_group_norm_of_the_valid_frames():
    torch.manual_seed(0)
    norm = torch.nn.GroupNorm(4, 8)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 2.0)
        norm.bias.uniform_(-1.0, 1.0)
    x = torch.randn(3, 8, 20)
    lengths = torch.tensor([20, 13, 1])
    out = frontend.masked_group_norm(norm, x, lengths)
    for b, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(out[b, :, :n], norm(x[b:b + 1, :, :n])[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("arch", ARCHS)
def test_stage4_embeddings_do_not_depend_on_batch_seconds(arch, tmp_path):
    model = speaker_model(arch)
    wav = {}
    for i, w in enumerate(utterances(seed=1)):
        path = tmp_path / "wav" / f"u{i}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, w, 16000, subtype="FLOAT")
        wav[f"u{i}"] = str(path)
    write_data_dir(tmp_path / "data", wav, {u: "spk" for u in wav})
    source = {"checkpoint": "test", "size": 0, "mtime_ns": 0}
    results = []
    for batch_seconds in (0.2, 1.5, 120.0):  # one utterance per batch, pairs and threes, all at once
        out = tmp_path / f"emb_{batch_seconds}"
        cfg = ExtractConfig(batch_seconds=batch_seconds, chunk_seconds=20.0)
        extract_data_dir(model, tmp_path / "data", out, cfg, torch.device("cpu"), source)
        results.append(load_embeddings([out / "xvector.scp"]))
    utts = sorted(wav)
    reference = np.stack([results[0][u] for u in utts])
    for other in results[1:]:
        emb = np.stack([other[u] for u in utts])
        assert cosines(reference, emb).min() >= 0.99999
        np.testing.assert_allclose(emb, reference, atol=1e-4, rtol=0)
