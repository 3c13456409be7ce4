"""A filterbank front end as an upstream without transformer blocks (``upstream.type: fbank``).

The classic input of ECAPA-TDNN and of spoofing countermeasures, behind the same protocol
as the self-supervised models, so that every task and head runs on it and it can be the
baseline row of a comparison.  For a waveform ``x`` (16 kHz, float in [-1, 1]) of ``S``
samples:

1. frames of ``N = frame_ms`` (25 ms: 400 samples), hop ``H = hop_ms`` (10 ms: 160),
   only complete frames (Kaldi's ``snip_edges``): ``T = 1 + (S - N) // H`` (1 frame for
   ``S < N``: the waveform is zero-padded to one frame);
2. per frame (Kaldi's order): the frame's mean removed, pre-emphasis
   ``y[n] = x[n] - 0.97 x[n - 1]`` (``y[0] = 0.03 x[0]``), the Povey window
   ``(0.5 - 0.5 cos(2 pi n / (N - 1)))^0.85`` (the AST front end: the Hanning window, power 1), zero-padded to the next power of two;
3. power spectrum ``|FFT|^2`` -> ``num_bins`` triangular filters: on the Kaldi mel scale
   ``1127 ln(1 + f / 700)`` from 20 Hz to Nyquist (``scale: mel``, WeSpeaker / Kaldi
   fbank), or equally spaced in linear frequency from 0 to Nyquist (``scale: linear``:
   the linear filterbank of LFCC countermeasures, Sahidullah et al., Interspeech 2015,
   which keeps the high-frequency resolution where synthesis artefacts live);
4. ``log(max(E, 1.19e-7))`` (Kaldi's floor, float epsilon);
5. ``mean_norm``: the per-utterance mean over its valid frames is subtracted from every
   frame (cepstral mean normalisation, as WeSpeaker and SpeechBrain do for ECAPA).

With ``scale: mel`` and ``mean_norm: false``, steps 1-4 equal
``torchaudio.compliance.kaldi.fbank(x * 32768, num_mel_bins=80, dither=0)`` up to the
additive constant ``2 ln 32768`` of the 16-bit scale (a test checks it).  Departure: no
dither in training (WeSpeaker dithers by 1.0 LSB): the features are a deterministic
function of the waveform, so an utterance gives one embedding however it is batched.

``forward`` returns ``[F]`` (one "hidden state", ``(B, T, num_bins)``) and the frame
counts; frame ``t`` of utterance ``b`` depends only on its samples ``[tH, tH + N)``, so
padding changes nothing in the valid frames.  The front end has no parameter and no
block: ``num_layers = 0``; PEFT methods that need blocks refuse it (``frozen`` is its
method; layer aggregation over one state is the identity).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import torch
from torch import Tensor, nn

from spkpeft.errors import SpkpeftError
from spkpeft.io.audio import SAMPLE_RATE
from spkpeft.upstream.base import UpstreamBase, register_family

LOG_FLOOR = 1.1920928955078125e-07  # float32 epsilon, Kaldi's energy floor
PREEMPHASIS = 0.97
MEL_LOW_HZ = 20.0


def _positive(value) -> str | None:
    return None if value > 0 else f"must be > 0, got {value}"


@dataclass
class FbankConfig:
    """``upstream.type: fbank`` (see the module docstring)."""

    type: str = "fbank"
    name: str = "fbank"
    num_layers: int | None = field(default=None, metadata={"check": lambda v: None if v in (None, 0) else f"must be 0 or null for the fbank front end (it has no blocks), got {v}"})
    num_bins: int = field(default=80, metadata={"check": _positive})
    scale: str = field(default="mel", metadata={"choices": ("mel", "linear")})
    frame_ms: float = field(default=25.0, metadata={"check": _positive})
    hop_ms: float = field(default=10.0, metadata={"check": _positive})
    mean_norm: bool = True


def mel(f: Tensor) -> Tensor:
    """Kaldi's mel scale ``1127 ln(1 + f / 700)``."""
    return 1127.0 * torch.log1p(f / 700.0)


def triangular_filters(edges: Tensor, bin_freqs: Tensor) -> Tensor:
    """Filters ``(K, n_bins)``: filter ``k`` rises from ``edges[k]`` to ``edges[k+1]`` and
    falls to ``edges[k+2]`` (all on the scale of ``bin_freqs``), zero outside."""
    left, centre, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (bin_freqs[None, :] - left) / (centre - left)
    down = (right - bin_freqs[None, :]) / (right - centre)
    return torch.clamp(torch.minimum(up, down), min=0.0)


def filterbank(num_bins: int, n_fft: int, scale: str, sample_rate: int = SAMPLE_RATE) -> Tensor:
    """``(num_bins, n_fft // 2 + 1)`` triangular filters on the mel or linear scale.

    Mel: centres equally spaced in mel between 20 Hz and Nyquist, evaluated on the mel of
    each FFT bin's frequency (Kaldi's ``get_mel_banks``; its Nyquist bin gets weight 0).
    Linear: edges equally spaced over ``[0, Nyquist]``."""
    n_half = n_fft // 2 + 1
    freqs = torch.arange(n_half, dtype=torch.float64) * sample_rate / n_fft
    nyquist = sample_rate / 2.0
    if scale == "mel":
        edges = torch.linspace(float(mel(torch.tensor(MEL_LOW_HZ))), float(mel(torch.tensor(nyquist))), num_bins + 2,
                               dtype=torch.float64)
        banks = triangular_filters(edges, mel(freqs))
        banks[:, -1] = 0.0
    else:
        banks = triangular_filters(torch.linspace(0.0, nyquist, num_bins + 2, dtype=torch.float64), freqs)
    return banks.float()


def povey_window(length: int, power: float = 0.85) -> Tensor:
    """``(0.5 - 0.5 cos(2 pi n / (N - 1)))^power``, ``n = 0 .. N - 1``: Kaldi's Povey window
    (``power`` 0.85) or, with ``power`` 1, its (symmetric) Hanning window."""
    n = torch.arange(length, dtype=torch.float64)
    return (0.5 - 0.5 * torch.cos(2 * math.pi * n / (length - 1))).pow(power).float()


def kaldi_log_fbank(wavs: Tensor, frame: int, hop: int, window: Tensor, banks: Tensor) -> Tensor:
    """``(B, T, K)`` log filterbank energies of every complete frame of ``wavs (B, S)``
    (steps 1-4 of the module docstring; ``banks`` from :func:`filterbank`, FFT size
    ``2 (banks.shape[1] - 1)``)."""
    n_fft = 2 * (banks.shape[1] - 1)
    if wavs.shape[1] < frame:
        wavs = nn.functional.pad(wavs, (0, frame - wavs.shape[1]))
    frames = wavs.float().unfold(1, frame, hop)  # (B, T, N)
    frames = frames - frames.mean(-1, keepdim=True)
    previous = torch.cat([frames[..., :1], frames[..., :-1]], dim=-1)
    frames = (frames - PREEMPHASIS * previous) * window
    power = torch.fft.rfft(frames, n=n_fft).abs().pow(2)
    return torch.log(torch.clamp(power @ banks.T, min=LOG_FLOOR))


class FbankUpstream(UpstreamBase):
    """Log filterbank energies as the only hidden state (see the module docstring)."""

    def __init__(self, cfg: FbankConfig, sample_rate: int = SAMPLE_RATE) -> None:
        super().__init__()
        self.cfg = cfg
        self.frame = int(round(cfg.frame_ms * sample_rate / 1000))
        self.hop = int(round(cfg.hop_ms * sample_rate / 1000))
        if self.frame < 2 or self.hop < 1:
            raise SpkpeftError(f"upstream: frame_ms {cfg.frame_ms} / hop_ms {cfg.hop_ms} give frames of "
                               f"{self.frame} and hops of {self.hop} samples")
        self.n_fft = 1 << (self.frame - 1).bit_length()
        self.layer_ext = nn.ModuleList()
        self.features = nn.Module()  # the bare model: no parameter
        self.register_buffer("window", povey_window(self.frame), persistent=False)
        self.register_buffer("banks", filterbank(cfg.num_bins, self.n_fft, cfg.scale, sample_rate), persistent=False)
        self.mark_base_parameters()

    # ---- the family (upstream.type: fbank): no name to resolve, no weights
    @classmethod
    def from_config(cls, cfg: FbankConfig) -> "FbankUpstream":
        return cls(cfg)

    @classmethod
    def check_name(cls, name: str) -> None:
        """Any name: the front end has no weights to find."""

    @classmethod
    @contextlib.contextmanager
    def weights_file(cls, name: str) -> Iterator[None]:
        yield None

    @classmethod
    def name_for_weights(cls, fmt: str, path: Path) -> str:
        raise SpkpeftError("the fbank front end has no weights, so no name loads a copy of them")

    @property
    def num_layers(self) -> int:
        return 0

    @property
    def hidden_dim(self) -> int:
        return self.cfg.num_bins

    @property
    def num_heads(self) -> int:
        return 0

    def bare_model(self) -> nn.Module:
        return self.features

    def frontend_parameters(self) -> list[nn.Parameter]:
        return []

    def block_input_norm(self, block: int) -> nn.LayerNorm | None:
        raise SpkpeftError("the fbank front end has no blocks")

    def projection(self, block: int, role: str) -> nn.Module:
        raise SpkpeftError("the fbank front end has no blocks (no projection to adapt)")

    def set_projection(self, block: int, role: str, module: nn.Module) -> None:
        raise SpkpeftError("the fbank front end has no blocks (no projection to adapt)")

    def frame_lengths(self, wav_lens: Tensor) -> Tensor:
        """Complete frames of each waveform, at least 1."""
        return torch.clamp((wav_lens - self.frame) // self.hop + 1, min=1)

    def num_frames(self, num_samples: int) -> int:
        """Frames of :meth:`log_energies` for waveforms of ``num_samples`` (shorter ones are padded to one frame)."""
        return (max(num_samples, self.frame) - self.frame) // self.hop + 1

    def log_energies(self, wavs: Tensor) -> Tensor:
        """``(B, T, num_bins)`` log filterbank energies of every frame (steps 1-4)."""
        return kaldi_log_fbank(wavs, self.frame, self.hop, self.window, self.banks)

    def forward(self, wavs: Tensor, wav_lens: Tensor) -> tuple[list[Tensor], Tensor]:
        feats = self.log_energies(wavs)
        lengths = torch.clamp(self.frame_lengths(wav_lens.to(feats.device)), max=feats.shape[1])
        if self.cfg.mean_norm:
            valid = (torch.arange(feats.shape[1], device=feats.device)[None, :] < lengths[:, None]).float()
            mean = (feats * valid[..., None]).sum(1) / lengths[:, None].float()
            feats = feats - mean[:, None, :]
        return [feats], lengths


register_family("fbank", FbankConfig, FbankUpstream, description="log mel / linear filterbank front end (no blocks)")
