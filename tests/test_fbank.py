"""The fbank front end (``upstream.type: fbank``): Kaldi parity, padding invariance, refusals."""

from __future__ import annotations

import math

import pytest
import torch
import torchaudio

from spkpeft.errors import SpkpeftError
from spkpeft.nn.model import build_model
from spkpeft.tasks.config import config_from_dict
from spkpeft.upstream.fbank import FbankConfig, FbankUpstream, filterbank


def waveform(seconds: float, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * 16000)) / 16000
    return 0.3 * torch.sin(2 * math.pi * 310 * t) + 0.05 * torch.randn(t.shape, generator=g)


@pytest.mark.parametrize("seconds", [0.025, 0.3, 1.37])
def test_mel_features_equal_torchaudio_kaldi_fbank(seconds):
    x = waveform(seconds)
    up = FbankUpstream(FbankConfig(mean_norm=False))
    [feats], lengths = up(x[None], torch.tensor([x.numel()]))
    ref = torchaudio.compliance.kaldi.fbank(x[None] * 32768, num_mel_bins=80, dither=0.0,
                                            energy_floor=0.0, sample_frequency=16000)
    assert feats.shape == (1, ref.shape[0], 80) and int(lengths) == ref.shape[0]
    torch.testing.assert_close(feats[0] + 2 * math.log(32768), ref, atol=2e-3, rtol=1e-4)


def test_linear_filters_are_equally_spaced_and_cover_the_band():
    banks = filterbank(20, 512, "linear")
    peaks = banks.argmax(1).float()
    steps = peaks[1:] - peaks[:-1]
    assert steps.max() - steps.min() <= 1
    assert (banks.sum(0)[1:-1] > 0).all()  # every bin but DC and Nyquist lies under a filter


def test_mean_norm_and_padding_do_not_change_valid_frames():
    up = FbankUpstream(FbankConfig(num_bins=40))
    a, b = waveform(0.8, 1), waveform(0.45, 2)
    batch = torch.zeros(2, a.numel())
    batch[0], batch[1, :b.numel()] = a, b
    [feats], lengths = up(batch, torch.tensor([a.numel(), b.numel()]))
    for row, x in enumerate((a, b)):
        [alone], n = up(x[None], torch.tensor([x.numel()]))
        assert int(lengths[row]) == int(n) == 1 + (x.numel() - 400) // 160
        torch.testing.assert_close(feats[row, :int(n)], alone[0], atol=1e-5, rtol=1e-5)
        assert alone[0].mean(0).abs().max() < 1e-4


def small_config(method: str, head: str = "ecapa") -> dict:
    return {"upstream": {"type": "fbank", "num_bins": 24},
            "peft": {"method": method},
            "head": {"type": head} if head != "ecapa" else {"type": "ecapa", "channels": 32, "embed_dim": 16, "res2_scale": 4,
                                                             "attention_channels": 8, "se_channels": 8}}


def test_ecapa_on_fbank_has_no_upstream_parameters():
    model = build_model(config_from_dict(small_config("frozen")))
    counts = model.param_counts()
    assert counts["upstream"] == counts["peft"] == 0 and counts["head"] > 0
    assert counts["aggregation"] == 1  # softmax weight of the one hidden state: the identity
    out = model.eval()(waveform(0.5)[None], torch.tensor([8000]))
    assert out.shape == (1, 16)


@pytest.mark.parametrize("method", ["lora", "adapter", "prompt"])
def test_block_methods_refuse_the_fbank_front_end(method):
    with pytest.raises(SpkpeftError, match=f"'{method}' adapts transformer blocks.*use peft.method: frozen"):
        build_model(config_from_dict(small_config(method)))


def test_fbank_config_errors():
    with pytest.raises(SpkpeftError, match="num_layers"):
        config_from_dict({"upstream": {"type": "fbank", "num_layers": 3}})
    with pytest.raises(SpkpeftError, match="scale"):
        config_from_dict({"upstream": {"type": "fbank", "scale": "bark"}})
