"""Audio edge cases through the one audio reader (spkpeft.io.audio), each with its defined outcome:
sample formats, lengths, values, channels, rates, and memory bounded by chunking on long files."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import python_module
from spkpeft.engine.extract import ExtractConfig, embed_utterances, extract_data_dir
from spkpeft.errors import SpkpeftError
from spkpeft.io.audio import read_audio
from spkpeft.io.datadir import check_audio, read_data_dir, write_data_dir

SR = 16000


class MeanModel(torch.nn.Module):
    """A stand-in model: the mean and mean square of the real samples (finite for finite input)."""

    def forward(self, wavs: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
        mask = torch.arange(wavs.shape[1])[None, :] < lens[:, None]
        x = wavs * mask
        n = lens[:, None].float()
        return torch.cat([x.sum(1, keepdim=True) / n, (x * x).sum(1, keepdim=True) / n], dim=1)


def data_dir(tmp_path: Path, files: dict[str, Path]) -> Path:
    out = tmp_path / "data"
    write_data_dir(out, {u: str(p) for u, p in files.items()}, {u: u for u in files})
    return out


@pytest.mark.parametrize("subtype, tolerance", [("PCM_U8", 1 / 128), ("PCM_16", 1 / 2**15), ("PCM_24", 1 / 2**23),
                                                ("PCM_32", 1 / 2**31), ("FLOAT", 0), ("DOUBLE", 1e-7)])
def test_every_sample_format_reads_as_float32_in_full_scale(tmp_path, subtype, tolerance):
    x = np.linspace(-0.9, 0.9, 1601)
    path = tmp_path / f"{subtype}.wav"
    sf.write(path, x, SR, subtype=subtype)
    y = read_audio(path)
    assert y.dtype == np.float32 and y.shape == x.shape
    assert np.abs(y - x).max() <= tolerance + 1e-7
    check_audio(read_data_dir(data_dir(tmp_path, {"u": path})))  # stage 2 accepts it


def test_float_samples_beyond_full_scale_are_passed_on_unclipped(tmp_path):
    path = tmp_path / "loud.wav"
    sf.write(path, np.array([0.0, 2.0, -3.0]), SR, subtype="FLOAT")
    assert read_audio(path).tolist() == [0.0, 2.0, -3.0]


@pytest.mark.parametrize("value, what", [(np.nan, "nan"), (np.inf, "inf"), (-np.inf, "-inf")])
def test_nan_and_inf_samples_are_refused_naming_file_and_sample(tmp_path, value, what):
    x = np.full(1000, 0.1)
    x[517] = value
    path = tmp_path / "bad.wav"
    sf.write(path, x, SR, subtype="FLOAT")
    with pytest.raises(SpkpeftError, match=rf"^{path}: sample 517 is {what} \(NaN or infinite samples are refused\)"):
        read_audio(path)
    good = tmp_path / "good.wav"
    sf.write(good, np.zeros(1000), SR, subtype="FLOAT")
    data = data_dir(tmp_path, {"a": good, "b": path})
    with pytest.raises(SpkpeftError, match=rf"wav.scp:2: utterance 'b' \({path}\): sample 517 is {what}"):
        check_audio(read_data_dir(data))  # stage 2 decodes float files
    with pytest.raises(SpkpeftError, match=rf"^{path}: sample 517"):  # extraction: no NaN embedding
        extract_data_dir(MeanModel(), data, tmp_path / "emb", ExtractConfig(), torch.device("cpu"), {"c": 1})
    assert not (tmp_path / "emb" / "xvector.scp").exists()


def test_stage2_names_the_nan_file_in_one_line_through_the_cli(tmp_path):
    path = tmp_path / "nan.wav"
    sf.write(path, np.array([0.0, np.nan, 0.0] * 200), SR, subtype="FLOAT")
    res = python_module("spkpeft.bin.validate_data_dir", "--task", "sv", str(data_dir(tmp_path, {"u": path})))
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines()[-1].endswith(f"wav.scp:1: utterance 'u' ({path}): sample 1 is nan "
                                                        "(NaN or infinite samples are refused)")


def test_zero_length_file_is_refused_everywhere(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros(0), SR)
    with pytest.raises(SpkpeftError, match=rf"^{path}: audio file holds no samples"):
        read_audio(path)
    with pytest.raises(SpkpeftError, match=r"wav.scp:1: utterance 'u' .*holds no samples"):
        check_audio(read_data_dir(data_dir(tmp_path, {"u": path})))


def test_shorter_than_a_frame_and_all_zero_files_give_finite_outputs(tmp_path):
    """1 and 100 samples (under one 25 ms frame): read as they are, zero-padded to one frame by
    the model's batching with their true length; all-zero audio: valid, finite outputs."""
    files = {}
    for name, x in {"one": np.array([0.25]), "short": np.full(100, 0.25), "zeros": np.zeros(SR)}.items():
        files[name] = tmp_path / f"{name}.wav"
        sf.write(files[name], x, SR, subtype="FLOAT")
    assert read_audio(files["one"]).tolist() == [0.25]
    data = data_dir(tmp_path, files)
    check_audio(read_data_dir(data))
    extract_data_dir(MeanModel(), data, tmp_path / "emb", ExtractConfig(), torch.device("cpu"), {"c": 1})
    import kaldiio
    emb = dict(kaldiio.load_scp_sequential(str(tmp_path / "emb" / "xvector.scp")))
    assert np.allclose(emb["one"], [0.25, 0.0625]) and np.allclose(emb["short"], [0.25, 0.0625])
    assert np.array_equal(emb["zeros"], [0.0, 0.0])


def test_a_real_model_gives_finite_embeddings_for_tiny_and_silent_files():
    from spkpeft.tasks.base import get_task
    from spkpeft.tasks.config import load_config
    from test_train import SMALL
    from conftest import REPO

    cfg = load_config(REPO / "conf" / "mini.yaml", SMALL)
    model = get_task(cfg).inference_model(cfg, None).eval()
    wavs = [np.array([0.25], np.float32), np.full(100, 0.1, np.float32), np.zeros(SR, np.float32)]
    emb = embed_utterances(model, wavs, ExtractConfig(), torch.device("cpu"))
    assert emb.shape[0] == 3 and np.isfinite(emb).all()


def test_stereo_is_refused_and_other_rates_are_refused_or_resampled(tmp_path):
    stereo, rate8k = tmp_path / "stereo.wav", tmp_path / "8k.wav"
    sf.write(stereo, np.zeros((800, 2)), SR)
    sf.write(rate8k, np.sin(np.arange(8000) / 10), 8000)
    with pytest.raises(SpkpeftError, match=rf"^{stereo}: expected mono audio, found 2 channels"):
        read_audio(stereo)
    with pytest.raises(SpkpeftError, match=r"wav.scp:1: utterance 'a' .*expected mono audio, found 2 channels"):
        check_audio(read_data_dir(data_dir(tmp_path / "s", {"a": stereo})))
    with pytest.raises(SpkpeftError, match=r"wav.scp:1: utterance 'b' .*expected 16000 Hz, found 8000 Hz"):
        check_audio(read_data_dir(data_dir(tmp_path / "r", {"b": rate8k})))  # stages 2-4: refused
    from spkpeft.inference.inputs import to_waveform
    assert to_waveform(rate8k).shape == (16000,)  # the inference API: resampled to 16 kHz


def write_long_wav(path: Path, seconds: int) -> None:
    """A 16-bit WAV of ``seconds`` of noise, written one second at a time."""
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", SR, 1, subtype="PCM_16") as handle:
        for _ in range(seconds):
            handle.write(rng.uniform(-0.5, 0.5, SR).astype(np.float32))


def test_long_file_extraction_memory_is_bounded_by_the_chunks(tmp_path):
    """Ten minutes (38 MB as float32) extracted in 5 s chunks, 20 s of audio per batch: the
    traced NumPy memory peaks at a few batches' worth, not the file's (the hour-long number
    is in docs/benchmarks.md).  The embedding equals the one of the whole waveform read at once."""
    path = tmp_path / "long.wav"
    write_long_wav(path, 600)
    data = data_dir(tmp_path, {"long": path})
    cfg = ExtractConfig(chunk_seconds=5.0, batch_seconds=20.0)
    tracemalloc.start()
    try:
        extract_data_dir(MeanModel(), data, tmp_path / "emb", cfg, torch.device("cpu"), {"c": 1})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    whole = 600 * SR * 4
    assert peak < 8e6 < whole / 4, f"peak {peak / 1e6:.1f} MB"
    import kaldiio
    (_, emb), = kaldiio.load_scp_sequential(str(tmp_path / "emb" / "xvector.scp"))
    assert np.array_equal(emb, embed_utterances(MeanModel(), [read_audio(path)], cfg, torch.device("cpu"))[0])
