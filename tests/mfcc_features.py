"""Log-mel filterbank and MFCC features in vectorised numpy.

Conventions (close to Kaldi's defaults, but not bit-exact):

* framing: window ``win_ms`` (25 ms), hop ``hop_ms`` (10 ms), frames that fit
  entirely inside the signal ("snip edges"): ``T = 1 + (N - W) // H``; a signal
  shorter than one window is zero-padded to exactly one frame;
* per frame: DC removal ``x <- x - mean(x)``, pre-emphasis
  ``y[n] = x[n] - a x[n-1]`` (``y[0] = (1 - a) x[0]``), Hamming window
  ``w[n] = 0.54 - 0.46 cos(2 pi n / (W - 1))``;
* power spectrum ``P[k] = |FFT_K(y w)[k]|^2`` for ``k = 0..K/2`` with
  ``K`` = next power of two >= W (512 at 16 kHz);
* mel scale ``m(f) = 1127 ln(1 + f / 700)``; ``n_mels`` triangular filters
  with centres equally spaced in mel between ``fmin`` and ``fmax``
  (default ``sr / 2``), weights linear in mel;
* log-mel ``fbank[t, j] = ln(max(sum_k M[j, k] P[t, k], eps))``;
* MFCC = orthonormal DCT-II of the log-mel vector,
  ``c[i] = s_i sum_j fbank[j] cos(pi i (j + 1/2) / J)`` with
  ``s_0 = sqrt(1/J)``, ``s_i = sqrt(2/J)``, first ``n_ceps`` kept
  (``c[0]`` is the energy-like coefficient), optional liftering
  ``c[i] *= 1 + (L/2) sin(pi i / L)``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.fft import dct

from spkpeft.errors import SpkpeftError

_EPS = 1e-10


def hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    """HTK mel scale: ``m = 1127 ln(1 + f / 700)``."""
    return 1127.0 * np.log1p(np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m: np.ndarray | float) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`: ``f = 700 (exp(m / 1127) - 1)``."""
    return 700.0 * np.expm1(np.asarray(m, dtype=np.float64) / 1127.0)


def mel_filterbank(n_mels: int, n_fft: int, sr: int, fmin: float = 20.0, fmax: float | None = None) -> np.ndarray:
    """Triangular mel filters, shape ``(n_mels, n_fft // 2 + 1)`` (a fresh copy of a cached matrix).

    Filter ``j`` rises linearly (in mel) from centre ``j - 1`` to centre ``j``
    and falls to centre ``j + 1``; the ``n_mels + 2`` edges are equally spaced
    in mel between ``fmin`` and ``fmax``.
    """
    return _mel_filterbank(n_mels, n_fft, sr, float(fmin), float(sr / 2.0 if fmax is None else fmax)).copy()


@lru_cache(maxsize=16)
def _mel_filterbank(n_mels: int, n_fft: int, sr: int, fmin: float, fmax: float) -> np.ndarray:
    if not 0.0 <= fmin < fmax <= sr / 2.0:
        raise SpkpeftError(f"mel filterbank needs 0 <= fmin < fmax <= sr/2, got fmin={fmin}, fmax={fmax}")
    edges = np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2)
    bins = hz_to_mel(np.arange(n_fft // 2 + 1) * sr / n_fft)
    left, centre, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None, :] - left) / (centre - left)
    falling = (right - bins[None, :]) / (right - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights.flags.writeable = False
    return weights


def frame_signal(x: np.ndarray, win: int, hop: int) -> np.ndarray:
    """Frames ``(T, win)`` with ``T = 1 + (N - win) // hop`` (zero-pad if ``N < win``)."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    if x.size < win:
        x = np.pad(x, (0, win - x.size))
    return sliding_window_view(x, win)[::hop]


def power_spectrum(x: np.ndarray, sr: int = 16000, win_ms: float = 25.0, hop_ms: float = 10.0,
                   preemph: float = 0.97) -> np.ndarray:
    """Per-frame power spectrum ``(T, K/2 + 1)`` after DC removal, pre-emphasis and Hamming window."""
    win = int(round(sr * win_ms / 1000.0))
    hop = int(round(sr * hop_ms / 1000.0))
    frames = frame_signal(x, win, hop)
    frames = frames - frames.mean(axis=1, keepdims=True)
    emph = np.empty_like(frames)
    emph[:, 1:] = frames[:, 1:] - preemph * frames[:, :-1]
    emph[:, 0] = (1.0 - preemph) * frames[:, 0]
    n_fft = 1 << (win - 1).bit_length()
    spec = np.fft.rfft(emph * np.hamming(win), n=n_fft, axis=1)
    return spec.real ** 2 + spec.imag ** 2


def fbank(x: np.ndarray, sr: int = 16000, n_mels: int = 40, win_ms: float = 25.0, hop_ms: float = 10.0,
          fmin: float = 20.0, fmax: float | None = None, preemph: float = 0.97) -> np.ndarray:
    """Log-mel filterbank energies, shape ``(frames, n_mels)``, float32 (see module docstring)."""
    power = power_spectrum(x, sr, win_ms, hop_ms, preemph)
    n_fft = 2 * (power.shape[1] - 1)
    fmax = sr / 2.0 if fmax is None else fmax
    mel = power @ _mel_filterbank(n_mels, n_fft, sr, float(fmin), float(fmax)).T
    return np.log(np.maximum(mel, _EPS)).astype(np.float32)


def mfcc(x: np.ndarray, sr: int = 16000, n_ceps: int = 20, n_mels: int = 40, lifter: float = 0.0,
         **fbank_kwargs: float) -> np.ndarray:
    """MFCCs ``(frames, n_ceps)``: orthonormal DCT-II of :func:`fbank`, optional liftering."""
    if not 1 <= n_ceps <= n_mels:
        raise SpkpeftError(f"n_ceps must be in [1, n_mels={n_mels}], got {n_ceps}")
    logmel = fbank(x, sr=sr, n_mels=n_mels, **fbank_kwargs).astype(np.float64)
    ceps = dct(logmel, type=2, norm="ortho", axis=1)[:, :n_ceps]
    if lifter > 0:
        ceps = ceps * (1.0 + 0.5 * lifter * np.sin(np.pi * np.arange(n_ceps) / lifter))
    return ceps.astype(np.float32)


def deltas(feat: np.ndarray, width: int = 2) -> np.ndarray:
    """Regression deltas ``d_t = sum_{n=1..N} n (c_{t+n} - c_{t-n}) / (2 sum n^2)``, edges repeated."""
    feat = np.asarray(feat, dtype=np.float64)
    padded = np.pad(feat, ((width, width), (0, 0)), mode="edge")
    n_frames = feat.shape[0]
    num = sum(n * (padded[width + n: width + n + n_frames] - padded[width - n: width - n + n_frames])
              for n in range(1, width + 1))
    return (num / (2.0 * sum(n * n for n in range(1, width + 1)))).astype(np.float32)
