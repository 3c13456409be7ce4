"""The AST's input: normalised Kaldi fbank of a fixed number of frames, and SpecAugment.

As the checkpoints expect (Gong et al., "AST: Audio Spectrogram Transformer", Interspeech
2021, arXiv 2104.01778; Hugging Face's ``ASTFeatureExtractor``), for a 16 kHz waveform
``x`` in [-1, 1]:

1. Kaldi fbank (:func:`spkpeft.upstream.fbank.kaldi_log_fbank`): 25 ms frames every 10 ms,
   complete frames only, DC removed, pre-emphasis 0.97, **Hanning** window, 512-point FFT,
   ``num_mel_bins`` (128) mel filters from 20 Hz to Nyquist, ``log(max(E, eps))``, no
   dither: ``torchaudio.compliance.kaldi.fbank(x, window_type="hanning", num_mel_bins=128)``;
2. padded with zeros or cut to ``max_length`` frames (1024 = 10.24 s for AudioSet);
3. normalised with the AudioSet statistics: ``(F - mean) / (2 std)``, ``mean = -4.2677393``,
   ``std = 4.5689974`` (the padding thus becomes ``-mean / (2 std)``, as in the reference).

Each utterance's frames are computed from its own samples only (frames reaching past
``wav_lens[b]`` are replaced by the padding), so an utterance gives the same input alone
and in a zero-padded batch.

SpecAugment (Park et al., Interspeech 2019), training only, as the AST / PETL-AST recipes
apply it (``torchaudio.transforms.FrequencyMasking`` / ``TimeMasking`` on the normalised
features): per utterance one band of ``w ~ floor(U[0, freq_mask))`` mel bins starting at
``floor(U[0, num_bins - w))`` and one of ``floor(U[0, time_mask))`` frames likewise are
set to 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from spkpeft.io.audio import SAMPLE_RATE
from spkpeft.upstream.fbank import filterbank, kaldi_log_fbank, povey_window

AUDIOSET_MEAN = -4.2677393
AUDIOSET_STD = 4.5689974
FRAME_SAMPLES = 400  # 25 ms at 16 kHz
HOP_SAMPLES = 160  # 10 ms
N_FFT = 512


def _non_negative(value: int) -> str | None:
    return None if value >= 0 else f"must be >= 0, got {value}"


@dataclass
class SpecAugmentConfig:
    """``upstream.specaugment``: maximum mask widths (0 = no mask); PETL-AST: 24 and 80."""

    freq_mask: int = field(default=0, metadata={"check": _non_negative})
    time_mask: int = field(default=0, metadata={"check": _non_negative})


class AstFeatures(nn.Module):
    """``forward(wavs (B, S), wav_lens (B,)) -> (features (B, max_length, num_bins), frames (B,))``."""

    def __init__(self, num_bins: int, max_length: int, mean: float = AUDIOSET_MEAN, std: float = AUDIOSET_STD) -> None:
        super().__init__()
        self.num_bins, self.max_length = num_bins, max_length
        self.mean, self.std = mean, std
        self.register_buffer("window", povey_window(FRAME_SAMPLES, power=1.0), persistent=False)
        self.register_buffer("banks", filterbank(num_bins, N_FFT, "mel", SAMPLE_RATE), persistent=False)

    def frame_counts(self, wav_lens: Tensor) -> Tensor:
        """Complete frames of each waveform, ``1 + (S - 400) // 160``, at least 1 (a shorter
        waveform is zero-padded to one frame, as in :mod:`spkpeft.upstream.fbank`)."""
        return torch.clamp((wav_lens - FRAME_SAMPLES) // HOP_SAMPLES + 1, min=1)

    def forward(self, wavs: Tensor, wav_lens: Tensor) -> tuple[Tensor, Tensor]:
        feats = kaldi_log_fbank(wavs, FRAME_SAMPLES, HOP_SAMPLES, self.window, self.banks)
        frames = torch.clamp(self.frame_counts(wav_lens.to(feats.device)), max=self.max_length)
        feats = feats[:, : self.max_length]
        if feats.shape[1] < self.max_length:
            feats = nn.functional.pad(feats, (0, 0, 0, self.max_length - feats.shape[1]))
        valid = torch.arange(self.max_length, device=feats.device)[None, :] < frames[:, None]
        feats = feats.masked_fill(~valid[..., None], 0.0)
        return (feats - self.mean) / (2.0 * self.std), frames


def spec_augment(feats: Tensor, cfg: SpecAugmentConfig) -> Tensor:
    """One frequency and one time mask per utterance of ``feats (B, T, F)`` (module docstring)."""
    batch, frames, bins = feats.shape
    keep = torch.ones_like(feats, dtype=torch.bool)
    for width_max, size, axis in ((cfg.freq_mask, bins, 2), (cfg.time_mask, frames, 1)):
        if width_max <= 0:
            continue
        width = (torch.rand(batch) * width_max).long()
        start = (torch.rand(batch) * (size - width)).long()
        index = torch.arange(size)[None, :]
        band = ((index >= start[:, None]) & (index < (start + width)[:, None])).to(feats.device)
        keep &= ~(band[:, None, :] if axis == 2 else band[:, :, None])
    return feats * keep
