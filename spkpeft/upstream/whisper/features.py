"""Whisper's log-mel spectrogram, one utterance at a time, without padding to 30 s.

The reference (Radford et al., "Robust Speech Recognition via Large-Scale Weak Supervision",
2022; openai-whisper ``whisper/audio.py`` ``log_mel_spectrogram``; Hugging Face
``WhisperFeatureExtractor``), for a 16 kHz waveform ``x`` of ``n`` samples:

1. STFT with a 400-point periodic Hann window, hop 160, centred frames: ``x`` reflect-padded
   by 200 samples at both ends (``torch.stft(center=True, pad_mode="reflect")``), which gives
   ``1 + n // 160`` frames; the last is dropped, leaving ``T = n // 160`` frames (10 ms each);
   power ``P = |X|^2`` of the 201 bins;
2. ``M = P W``: ``num_bins`` (80; 128 for large-v3) triangular filters on the Slaney mel
   scale, Slaney-normalised, 0 to 8000 Hz (librosa's ``filters.mel``, the reference's
   ``mel_filters.npz``; here ``torchaudio.functional.melscale_fbanks(..., norm="slaney",
   mel_scale="slaney")``, equal to ``transformers.audio_utils.mel_filter_bank`` to 2e-7);
3. ``L = log10(max(M, 1e-10))``, ``L = max(L, max(L) - 8)``, ``F = (L + 4) / 4``.

**The maximum** in step 3 is taken over the utterance's own ``T x num_bins`` values.  That
is the reference's value for an unpadded input (openai's ``log_mel_spectrogram(audio)``
with its default ``padding=0``; ``WhisperFeatureExtractor(padding="longest")`` on one
utterance), and what keeps an utterance's features independent of the batch it is in.
Transcription pads the waveform to 30 s first: the zero frames add ``log10(1e-10) = -10``,
below every real frame's level, so the maximum can then differ only through the frames
straddling the end of the speech, which see zeros instead of the reflected signal.

Batches: every row is framed from its own samples, reflect-padded at its own end
(``wav_lens[b]``), and the frames at and beyond ``wav_lens[b] // 160`` are set to 0, so a
row's features equal those of the utterance alone.  The DFT is a matrix product with the
cosine / sine basis and the frames are gathered by index (both exportable to ONNX by tracing,
unlike ``torch.stft`` and ``unfold`` over a dynamic length); the DFT equals the FFT to float32
rounding.  The features are computed in float32 under mixed-precision autocast too (a
bfloat16 DFT would raise the quiet bins to its rounding noise).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from spkpeft.io.audio import SAMPLE_RATE

N_FFT = 400  # 25 ms
HOP = 160  # 10 ms
F_MAX = 8000.0
LOG_FLOOR = 1e-10
DYNAMIC_RANGE = 8.0  # log10 units kept below the maximum (80 dB)


def mel_filters(num_bins: int) -> Tensor:
    """The reference's mel filterbank, ``(N_FFT // 2 + 1, num_bins)``."""
    import torchaudio

    return torchaudio.functional.melscale_fbanks(N_FFT // 2 + 1, 0.0, F_MAX, num_bins, SAMPLE_RATE,
                                                 norm="slaney", mel_scale="slaney")


def dft_basis() -> tuple[Tensor, Tensor]:
    """Hann-windowed real DFT basis: ``cos``, ``sin`` ``(N_FFT, N_FFT // 2 + 1)`` so that
    ``frame @ cos`` / ``frame @ sin`` are the real / (negated) imaginary parts of the
    windowed frame's rfft (computed in float64, stored in float32)."""
    k = torch.arange(N_FFT, dtype=torch.float64)[:, None]
    f = torch.arange(N_FFT // 2 + 1, dtype=torch.float64)[None, :]
    window = torch.hann_window(N_FFT, periodic=True, dtype=torch.float64)[:, None]
    angle = 2.0 * math.pi * k * f / N_FFT
    return (window * torch.cos(angle)).float(), (window * torch.sin(angle)).float()


def frame_counts(wav_lens: Tensor) -> Tensor:
    """Frames of each waveform, ``n // 160`` (at least 1)."""
    return torch.clamp(torch.div(wav_lens, HOP, rounding_mode="floor"), min=1)


def reflect_padded(wavs: Tensor, wav_lens: Tensor) -> Tensor:
    """``(B, S + N_FFT)``: each row reflect-padded by ``N_FFT / 2`` samples at its own ends
    (``torch.stft``'s centring): sample ``j`` (from ``-200``) of a row of ``n`` samples is
    ``x[|j|]`` before the start and ``x[2 (n - 1) - j]`` past the end (reflected again
    for rows shorter than the pad); what lies past ``n + 200`` is never read by a valid frame."""
    n = torch.clamp(wav_lens, min=2)[:, None]
    j = torch.arange(wavs.shape[1] + N_FFT, device=wavs.device)[None, :] - N_FFT // 2
    period = 2 * (n - 1)
    j = torch.remainder(j, period)
    j = torch.where(j >= n, period - j, j)
    j = torch.minimum(j, torch.clamp(wav_lens, min=1)[:, None] - 1)
    return torch.gather(wavs, 1, j)


class WhisperLogMel(nn.Module):
    """``forward(wavs (B, S), wav_lens (B,)) -> (features (B, num_bins, S // 160), frames (B,))``
    (see the module docstring); frames at and beyond ``frames[b]`` are 0."""

    def __init__(self, num_bins: int) -> None:
        super().__init__()
        self.num_bins = num_bins
        cos, sin = dft_basis()
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        self.register_buffer("filters", mel_filters(num_bins), persistent=False)

    def forward(self, wavs: Tensor, wav_lens: Tensor) -> tuple[Tensor, Tensor]:
        if not torch.amp.is_autocast_available(wavs.device.type):  # e.g. meta tensors: no autocast to leave
            return self._log_mel(wavs, wav_lens)
        with torch.autocast(wavs.device.type, enabled=False):  # float32 even under bf16 / fp16 autocast
            return self._log_mel(wavs, wav_lens)

    def _log_mel(self, wavs: Tensor, wav_lens: Tensor) -> tuple[Tensor, Tensor]:
        if wavs.shape[1] < HOP:  # shorter than one frame: zero-padded to one
            wavs = nn.functional.pad(wavs, (0, HOP - wavs.shape[1]))
        num_frames = wavs.shape[1] // HOP
        wavs = wavs.float()
        starts = torch.arange(num_frames, device=wavs.device)[:, None] * HOP
        frames = reflect_padded(wavs, wav_lens)[:, starts + torch.arange(N_FFT, device=wavs.device)]  # (B, T, N_FFT)
        power = torch.matmul(frames, self.cos) ** 2 + torch.matmul(frames, self.sin) ** 2
        log_mel = torch.log10(torch.clamp(torch.matmul(power, self.filters), min=LOG_FLOOR))  # (B, T, num_bins)
        counts = frame_counts(wav_lens)
        valid = (torch.arange(num_frames, device=wavs.device)[None, :] < counts[:, None])[..., None]
        peak = log_mel.masked_fill(~valid, -math.inf).amax(dim=(1, 2), keepdim=True)
        log_mel = torch.maximum(log_mel, peak - DYNAMIC_RANGE)
        feats = ((log_mel + 4.0) / 4.0) * valid
        return feats.transpose(1, 2), torch.clamp(counts, max=num_frames)
