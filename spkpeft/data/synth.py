"""Synthetic voices, channels and the VoxCeleb1-layout "mini" corpus.

Speech model (source-filter, 16 kHz):

* **Source.**  F0 contour ``f0(t) = f0_speaker * 2^((s + d(t) + r(t)) / 12)``
  with a per-session shift ``s``, a linear declination ``d`` and smooth random
  intonation ``r`` (std = the speaker's range in semitones).  The glottal phase
  ``phi = cumsum(f0 (1 + jitter_k)) / sr`` drives a Rosenberg flow pulse
  (opening ``0.5 (1 - cos(pi p / Tp))`` for ``p < Tp``, closing
  ``cos(pi (p - Tp) / (2 Tn))`` for ``Tp <= p < Tp + Tn``, closed after; ``p`` is
  the phase within the period and ``Tp + Tn`` the open quotient), scaled per
  period by ``exp(shimmer * N(0,1))`` and differentiated (lip radiation).
  Aspiration noise modulated by the flow is added (breathiness).
* **Filter.**  Applied per STFT frame (512-point sine window, hop 256,
  weighted overlap-add):
  vocal tract ``H(f) = prod_k (F_k^2 + (B_k/2)^2) /
  sqrt(((f - F_k)^2 + (B_k/2)^2) ((f + F_k)^2 + (B_k/2)^2))`` (two-pole
  resonators with unit DC gain: F1-F5 plus three fixed higher poles at
  5.5/6.5/7.5 kHz) whose frequencies are phone targets times the
  speaker's vocal-tract factor times ``(1 + offset_k)``, linearly interpolated
  between phone centres (coarticulation); times a spectral tilt
  ``10^(tilt * log2(f / 500) / 20)`` and a fixed +6 dB/octave above 1 kHz.
  Noise-excited phones (fricatives, bursts) use Gaussian spectral bumps
  scaled by the vocal-tract factor; aspiration uses the vocal-tract envelope.
* **Channel** (one per session): reverberation by an exponentially decaying
  noise RIR (``exp(-6.91 t / RT60)``) plus direct path at a given
  direct-to-reverberant ratio, additive ``1/f^alpha`` noise at a given SNR,
  an EQ of random peaking / shelving biquads with high- and optional low-pass,
  and a random output level.

The synthesizer works at 16 kHz only (``SR``).  Every random draw comes from
``numpy.random.default_rng([seed, stream, ...])``, so each speaker, session
and utterance is reproducible on its own.
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.fft import irfft, next_fast_len, rfft
from scipy.signal import butter, fftconvolve, sosfilt

from spkpeft.io.atomic import write_text_atomic
from spkpeft.io.audio import write_audio
from spkpeft.errors import SpkpeftError

SR = 16000
N_FFT = 512
HOP = 256
_FREQS = np.arange(N_FFT // 2 + 1) * SR / N_FFT
_WINDOW = np.sin(np.pi * (np.arange(N_FFT) + 0.5) / N_FFT)  # sine window: w^2 overlap-adds to 1 at hop N/2

# --------------------------------------------------------------------------- phones


@dataclass(frozen=True)
class Phone:
    """One entry of the shared phone inventory.

    ``formants``: F1..F5 targets in Hz for a reference (adult male) vocal tract,
    or ``None`` when the phone takes its formants from its neighbours;
    ``voicing`` / ``frication``: amplitudes of the glottal and noise sources;
    ``noise_shape``: ``(centre Hz, width Hz, gain)`` Gaussian bumps shaping the
    noise source (empty: the noise goes through the vocal tract, aspiration);
    ``dur_ms``: duration range at speaking rate 1; ``bw_scale``: formant
    bandwidth multiplier (nasals are damped).
    """

    name: str
    formants: tuple[float, ...] | None
    voicing: float
    frication: float
    noise_shape: tuple[tuple[float, float, float], ...]
    dur_ms: tuple[float, float]
    bw_scale: float = 1.0


_F5 = 4500.0
_HIGHER_POLES = (5500.0, 6500.0, 7500.0)  # fixed resonances standing in for the higher-pole correction
_HF_BOOST = 6.0  # dB/octave above 1 kHz on voiced sounds (finite all-pole model falls off too fast)
_NOISE_LEVEL = 0.5  # RMS of noise-excited phones relative to voiced ones, times Phone.frication
_BANDWIDTHS = np.array([60.0, 80.0, 120.0, 170.0, 250.0, 300.0, 400.0, 500.0])  # Hz, times bw multipliers


def _v(name: str, f1: float, f2: float, f3: float, f4: float = 3400.0) -> Phone:
    return Phone(name, (f1, f2, f3, f4, _F5), 1.0, 0.0, (), (70.0, 170.0))


def _son(name: str, f1: float, f2: float, f3: float, voicing: float, bw: float = 1.0) -> Phone:
    return Phone(name, (f1, f2, f3, 3400.0, _F5), voicing, 0.0, (), (40.0, 90.0), bw)


def _fric(name: str, shape: tuple[tuple[float, float, float], ...], level: float, voicing: float = 0.0) -> Phone:
    return Phone(name, None, voicing, level, shape, (60.0, 130.0))


_S = ((5600.0, 2600.0, 1.0), (7500.0, 1500.0, 0.5))
_SH = ((2700.0, 900.0, 1.0), (4300.0, 1600.0, 0.6))
_F = ((1500.0, 3000.0, 0.25), (6500.0, 4000.0, 0.4))

PHONES: dict[str, Phone] = {p.name: p for p in [
    _v("iy", 270, 2290, 3010, 3600), _v("ih", 390, 1990, 2550), _v("eh", 530, 1840, 2480),
    _v("ae", 660, 1720, 2410), _v("aa", 730, 1090, 2440), _v("ao", 570, 840, 2410),
    _v("uh", 440, 1020, 2240), _v("uw", 300, 870, 2240), _v("ah", 640, 1190, 2390),
    _v("er", 490, 1350, 1690),
    _son("m", 250, 1000, 2200, 0.35, 2.0), _son("n", 250, 1450, 2500, 0.35, 2.0),
    _son("l", 360, 1300, 2700, 0.6), _son("r", 310, 1060, 1380, 0.6),
    _son("w", 290, 610, 2150, 0.6), _son("y", 260, 2070, 3020, 0.6),
    _fric("s", _S, 0.45), _fric("z", _S, 0.3, 0.3), _fric("sh", _SH, 0.5), _fric("zh", _SH, 0.3, 0.3),
    _fric("f", _F, 0.25), _fric("v", _F, 0.2, 0.35), _fric("th", _F, 0.15),
    Phone("hh", None, 0.0, 0.35, (), (40.0, 80.0)),
    Phone("closure", None, 0.0, 0.0, (), (40.0, 80.0)),
    Phone("vclosure", None, 0.08, 0.0, (), (40.0, 70.0)),
    Phone("burst_p", None, 0.0, 0.6, ((900.0, 1500.0, 1.0), (3000.0, 4000.0, 0.3)), (8.0, 15.0)),
    Phone("burst_t", None, 0.0, 0.7, ((4500.0, 2500.0, 1.0), (7000.0, 2000.0, 0.5)), (8.0, 15.0)),
    Phone("burst_k", None, 0.0, 0.7, ((2200.0, 900.0, 1.0), (4000.0, 2500.0, 0.3)), (10.0, 20.0)),
    Phone("asp", None, 0.0, 0.3, (), (25.0, 60.0)),
    Phone("sil", None, 0.0, 0.0, (), (80.0, 300.0)),
]}

VOWELS = ("iy", "ih", "eh", "ae", "aa", "ao", "uh", "uw", "ah", "er")
_STOPS = {"p": ("closure", "burst_p", "asp"), "t": ("closure", "burst_t", "asp"),
          "k": ("closure", "burst_k", "asp"), "b": ("vclosure", "burst_p"),
          "d": ("vclosure", "burst_t"), "g": ("vclosure", "burst_k")}
CONSONANTS = ("m", "n", "l", "r", "w", "y", "s", "z", "sh", "zh", "f", "v", "th", "hh") + tuple(_STOPS)

# --------------------------------------------------------------------------- profiles


@dataclass(frozen=True)
class SpeakerProfile:
    """Speaker-specific voice parameters (constant over sessions up to small drifts)."""

    female: bool
    f0_mean: float              # Hz
    f0_range: float             # std of intonation, semitones
    vtl_factor: float           # formant scaling (inverse vocal-tract length)
    formant_offsets: tuple[float, ...]  # relative offset per formant
    bw_scale: float             # formant bandwidth multiplier
    tilt: float                 # source spectral tilt, dB/octave
    open_quotient: float        # glottal open phase / period
    jitter: float               # relative std of period length
    shimmer: float              # std of log amplitude per period
    breathiness: float          # aspiration-noise RMS relative to the pulses
    rate: float                 # speaking-rate multiplier


@dataclass(frozen=True, eq=False)
class Channel:
    """A recording channel: EQ (second-order sections), room, noise and level."""

    sos: np.ndarray = field(repr=False)  # (n, 6) second-order sections
    rir: np.ndarray = field(repr=False)  # impulse response (1.0 at index 0 = direct path)
    snr_db: float
    noise_alpha: float          # noise power spectrum ~ 1 / f^alpha
    level_db: float             # output RMS, dBFS


@dataclass(frozen=True, eq=False)
class SessionProfile:
    """One recording session: a channel plus the speaker's state that day."""

    channel: Channel
    f0_shift: float             # semitones
    tilt_shift: float           # dB/octave
    rate_factor: float


def sample_speaker(rng: np.random.Generator, spread: float = 1.0) -> SpeakerProfile:
    """Draw a random voice (half female: higher F0, shorter vocal tract).

    ``spread`` multiplies the between-speaker standard deviations of log F0, vocal-tract
    factor, formant offsets, log bandwidth and tilt (< 1: more similar voices, harder)."""
    female = bool(rng.random() < 0.5)
    f0 = math.exp(rng.normal(math.log(210.0 if female else 118.0), 0.13 * spread))
    return SpeakerProfile(
        female=female,
        f0_mean=f0,
        f0_range=float(rng.uniform(1.0, 4.0)),
        vtl_factor=float(rng.normal(1.16 if female else 1.0, 0.08 * spread)),
        formant_offsets=tuple(float(v) for v in rng.normal(0.0, 0.06 * spread, 5)),
        bw_scale=float(math.exp(rng.normal(0.0, 0.3 * spread))),
        tilt=float(rng.normal(0.0, 3.0 * spread)),
        open_quotient=float(rng.uniform(0.4, 0.8)),
        jitter=float(rng.uniform(0.003, 0.02)),
        shimmer=float(rng.uniform(0.02, 0.12)),
        breathiness=float(math.exp(rng.uniform(math.log(0.03), math.log(0.5)))),
        rate=float(math.exp(rng.normal(0.0, 0.12))),
    )


def peaking_biquad(freq: float, gain_db: float, q: float, sr: int = SR) -> np.ndarray:
    """RBJ peaking EQ as one second-order section ``[b0 b1 b2 1 a1 a2]``."""
    a_lin = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * math.pi * freq / sr
    alpha = math.sin(w0) / (2.0 * q)
    b = [1.0 + alpha * a_lin, -2.0 * math.cos(w0), 1.0 - alpha * a_lin]
    a = [1.0 + alpha / a_lin, -2.0 * math.cos(w0), 1.0 - alpha / a_lin]
    return np.array(b + a) / a[0]


def shelf_biquad(freq: float, gain_db: float, high: bool, sr: int = SR) -> np.ndarray:
    """RBJ low/high shelf (slope 1) as one second-order section."""
    a_lin = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * math.pi * freq / sr
    cw, sq = math.cos(w0), 2.0 * math.sqrt(a_lin) * math.sin(w0) / 2.0 * math.sqrt(2.0)
    s = 1.0 if high else -1.0
    b = [a_lin * ((a_lin + 1) + s * (a_lin - 1) * cw + sq), -2 * s * a_lin * ((a_lin - 1) + s * (a_lin + 1) * cw),
         a_lin * ((a_lin + 1) + s * (a_lin - 1) * cw - sq)]
    a = [(a_lin + 1) - s * (a_lin - 1) * cw + sq, 2 * s * ((a_lin - 1) - s * (a_lin + 1) * cw),
         (a_lin + 1) - s * (a_lin - 1) * cw - sq]
    return np.array(b + a) / a[0]


def make_rir(rng: np.random.Generator, rt60: float, drr_db: float, sr: int = SR) -> np.ndarray:
    """Direct path (1.0) plus a Gaussian-noise tail decaying as ``exp(-6.91 t / RT60)``.

    The tail starts after a 2-8 ms pre-delay and is scaled so that
    ``10 log10(1 / sum(tail^2)) = drr_db``.
    """
    n = max(int(rt60 * sr), 16)
    t = np.arange(n) / sr
    tail = rng.standard_normal(n) * np.exp(-6.908 * t / rt60)
    tail[: int(rng.uniform(0.002, 0.008) * sr)] = 0.0
    tail *= math.sqrt(10.0 ** (-drr_db / 10.0) / max(float(np.sum(tail ** 2)), 1e-12))
    tail[0] = 1.0
    return tail


def sample_channel(rng: np.random.Generator, sr: int = SR, severity: float = 1.0) -> Channel:
    """Random EQ, room, noise colour/SNR and level for one session.

    EQ: 0-2 peaking filters (150 Hz-6 kHz, +-1..3 dB, Q 0.7-2), a high shelf
    at 1-3 kHz (N(0, 1.2) dB), a 2nd-order high-pass at 40-100 Hz and, 20 % of
    the time, a 4th-order low-pass at 6-7.5 kHz.  Room: 50 % dry, else RT60
    0.1-0.4 s, DRR 6-15 dB.
    Noise: SNR 20-40 dB, ``alpha`` 1-2.  Level: -32..-20 dBFS.
    ``severity = c`` widens the ranges: EQ gains times ``c``, SNR ``20/c``-40 dB, RT60
    0.1-``0.4c`` s, DRR ``6/c``-15 dB (``c = 1``: the ranges above).
    """
    sections = [peaking_biquad(float(math.exp(rng.uniform(math.log(150.0), math.log(6000.0)))),
                               float(rng.choice([-1.0, 1.0]) * rng.uniform(1.0, 3.0) * severity),
                               float(rng.uniform(0.7, 2.0)), sr)
                for _ in range(int(rng.integers(0, 3)))]
    sections.append(shelf_biquad(float(rng.uniform(1000.0, 3000.0)), float(rng.normal(0.0, 1.2 * severity)), True, sr))
    sections.append(butter(2, float(rng.uniform(40.0, 100.0)), "highpass", fs=sr, output="sos")[0])
    if rng.random() < 0.2:
        sections.extend(butter(4, float(rng.uniform(6000.0, 7500.0)), "lowpass", fs=sr, output="sos"))
    if rng.random() < 0.5:
        rir = np.ones(1)
    else:
        rir = make_rir(rng, float(rng.uniform(0.1, 0.4 * severity)), float(rng.uniform(6.0 / severity, 15.0)), sr)
    return Channel(sos=np.vstack(sections), rir=rir, snr_db=float(rng.uniform(20.0 / severity, 40.0)),
                   noise_alpha=float(rng.uniform(1.0, 2.0)), level_db=float(rng.uniform(-32.0, -20.0)))


def sample_session(rng: np.random.Generator, severity: float = 1.0) -> SessionProfile:
    """Draw a session: a channel (``severity``: see :func:`sample_channel`) plus small day-to-day drifts of the voice."""
    return SessionProfile(channel=sample_channel(rng, severity=severity), f0_shift=float(rng.normal(0.0, 0.7)),
                          tilt_shift=float(rng.normal(0.0, 0.7)), rate_factor=float(math.exp(rng.normal(0.0, 0.05))))

# --------------------------------------------------------------------------- content


def sample_phones(rng: np.random.Generator, duration: float, rate: float) -> list[tuple[str, float]]:
    """Random syllables ``(C)(C)V(C)`` grouped in words with pauses; ``(phone, seconds)`` until ``duration``.

    Stops expand to closure + burst (+ aspiration when voiceless).  Starts with
    50-300 ms of silence; the last phone may run past ``duration``.
    """
    out: list[tuple[str, float]] = []

    def dur(name: str) -> float:
        lo, hi = PHONES[name].dur_ms
        return float(rng.uniform(lo, hi)) / 1000.0 / rate

    out.append(("sil", float(rng.uniform(0.05, 0.3))))
    total = out[0][1]
    while total < duration:
        for _ in range(int(rng.integers(1, 4))):  # syllables per word
            names = []
            for _ in range(int(rng.choice([0, 1, 1, 1, 2]))):
                names.append(str(rng.choice(CONSONANTS)))
            names.append(str(rng.choice(VOWELS)))
            if rng.random() < 0.4:
                names.append(str(rng.choice(CONSONANTS)))
            for name in names:
                for part in _STOPS.get(name, (name,)):
                    out.append((part, dur(part)))
                    total += out[-1][1]
        if rng.random() < 0.35:
            out.append(("sil", dur("sil")))
            total += out[-1][1]
    return out

# --------------------------------------------------------------------------- source


def _smooth_noise(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    """Unit-variance low-pass Gaussian noise (Gaussian kernel of std ``width`` samples)."""
    k = np.exp(-0.5 * (np.arange(-3 * width, 3 * width + 1) / width) ** 2)
    y = np.convolve(rng.standard_normal(n + 6 * width), k, mode="valid")[:n]
    return y / max(float(np.std(y)), 1e-9)


def f0_contour(rng: np.random.Generator, spk: SpeakerProfile, sess: SessionProfile, n: int) -> np.ndarray:
    """Per-sample F0 in Hz: speaker mean, session shift, declination and smooth intonation."""
    ctl_rate = 200
    m = n * ctl_rate // SR + 2
    decl = np.linspace(0.5, -0.5, m) * rng.uniform(1.0, 4.0)
    semis = sess.f0_shift + decl + spk.f0_range * _smooth_noise(rng, m, int(0.12 * ctl_rate))
    f0_ctl = spk.f0_mean * 2.0 ** (semis / 12.0)
    f0 = np.interp(np.arange(n) * ctl_rate / SR, np.arange(m), f0_ctl)
    return np.clip(f0, 50.0, 500.0)


def rosenberg(phase: np.ndarray, open_quotient: float) -> np.ndarray:
    """Rosenberg glottal flow at phase in [0, 1): rise over 60 % of the open phase, fall over 40 %."""
    tp, tn = 0.6 * open_quotient, 0.4 * open_quotient
    rise = 0.5 * (1.0 - np.cos(np.pi * phase / tp))
    fall = np.cos(0.5 * np.pi * np.clip(phase - tp, 0.0, tn) / tn)
    return np.where(phase < tp, rise, np.where(phase < tp + tn, fall, 0.0))


def glottal_source(rng: np.random.Generator, spk: SpeakerProfile, f0: np.ndarray) -> np.ndarray:
    """Differentiated Rosenberg pulses with jitter and shimmer, plus flow-modulated aspiration noise."""
    n_periods = int(np.sum(f0) / SR * 1.2) + 4
    jit = 1.0 + spk.jitter * rng.standard_normal(n_periods)
    k0 = np.minimum(np.floor(np.cumsum(f0) / SR).astype(np.int64), n_periods - 1)
    phase = np.cumsum(f0 * jit[k0]) / SR + rng.uniform()
    k = np.minimum(np.floor(phase).astype(np.int64), n_periods - 1)
    shim = np.exp(spk.shimmer * rng.standard_normal(n_periods))
    flow = rosenberg(phase - np.floor(phase), spk.open_quotient)
    pulses = np.diff(flow * shim[k], prepend=0.0) * SR / f0.mean()
    noise = rng.standard_normal(f0.size) * (0.25 + flow)
    noise *= spk.breathiness * np.std(pulses) / max(float(np.std(noise)), 1e-9)
    return pulses + noise

# --------------------------------------------------------------------------- filter


def _stft(x: np.ndarray) -> np.ndarray:
    """Centred STFT, frames at ``t * HOP`` samples; shape ``(frames, N_FFT/2 + 1)``."""
    pad = N_FFT // 2
    xp = np.pad(x, (pad, pad + (-x.size) % HOP))
    return np.fft.rfft(sliding_window_view(xp, N_FFT)[::HOP] * _WINDOW, axis=1)


def _istft(spec: np.ndarray, n: int) -> np.ndarray:
    """Weighted overlap-add inverse of :func:`_stft`, trimmed to ``n`` samples."""
    frames = (np.fft.irfft(spec, n=N_FFT, axis=1) * _WINDOW).reshape(spec.shape[0], N_FFT // HOP, HOP)
    blocks = np.zeros((spec.shape[0] + N_FFT // HOP - 1, HOP))
    for r in range(N_FFT // HOP):
        blocks[r: r + spec.shape[0]] += frames[:, r]
    return blocks.reshape(-1)[N_FFT // 2: N_FFT // 2 + n]


def formant_envelope(freqs: np.ndarray, formants: np.ndarray, bandwidths: np.ndarray) -> np.ndarray:
    """``|H(f)|`` of cascaded two-pole resonators, shape ``(frames, len(freqs))``.

    ``formants`` and ``bandwidths`` are ``(frames, K)`` in Hz; each resonator
    has unit gain at 0 Hz (see module docstring).
    """
    # ((f-F)^2 + b^2)((f+F)^2 + b^2) / c^2 = (u/c + 1)^2 - 4 u F^2 / c^2 with u = f^2, c = F^2 + b^2
    u = (freqs.astype(np.float32) ** 2)[None, :, None]
    c = formants.astype(np.float64) ** 2 + 0.25 * bandwidths.astype(np.float64) ** 2
    inv_c = (1.0 / c).astype(np.float32)[:, None, :]
    beta = (4.0 * formants ** 2 / c ** 2).astype(np.float32)[:, None, :]
    ratio = u * inv_c + np.float32(1.0)
    return 1.0 / np.sqrt(np.prod(ratio * ratio - u * beta, axis=2))


def _noise_shape(phone: Phone, vtl: float) -> np.ndarray:
    """Sum of Gaussian bumps (centres scaled by ``vtl``) over the STFT bins, with a small floor."""
    env = np.full(_FREQS.size, 0.02)
    for centre, width, gain in phone.noise_shape:
        env += gain * np.exp(-0.5 * ((_FREQS - centre * vtl) / (0.5 * width)) ** 2)
    return env


def _segment_track(values: np.ndarray, bounds: np.ndarray, n: int, smooth: int) -> np.ndarray:
    """Per-sample step function of per-segment ``values``, smoothed by a moving average."""
    y = np.repeat(values, np.diff(bounds))[:n]
    c = np.concatenate([[0.0], np.cumsum(np.pad(y, (smooth // 2, smooth - smooth // 2), mode="edge"))])
    return (c[smooth:] - c[:-smooth])[:n] / smooth


def synthesize_voice(rng: np.random.Generator, spk: SpeakerProfile, sess: SessionProfile,
                     phones: Sequence[tuple[str, float]], n: int) -> np.ndarray:
    """Clean speech of ``n`` samples for a phone sequence ``(name, seconds)`` (see module docstring)."""
    bounds = np.concatenate([[0], np.cumsum([round(d * SR) for _, d in phones])]).astype(np.int64)
    if bounds[-1] < n:
        bounds[-1] = n
    stress = np.exp(0.25 * rng.standard_normal(len(phones)))
    info = [PHONES[name] for name, _ in phones]
    g_voice = _segment_track(np.array([p.voicing for p in info]) * stress, bounds, n, int(0.006 * SR))
    g_noise = _segment_track(np.array([p.frication for p in info]) * stress, bounds, n, int(0.004 * SR))
    exc_v = glottal_source(rng, spk, f0_contour(rng, spk, sess, n)) * g_voice
    exc_n = rng.standard_normal(n) * g_noise

    spec_v, spec_n = _stft(exc_v), _stft(exc_n)
    times = np.arange(spec_v.shape[0]) * HOP
    seg = np.clip(np.searchsorted(bounds, times, side="right") - 1, 0, len(phones) - 1)
    anchors = [(0.5 * (bounds[i] + bounds[i + 1]), p) for i, p in enumerate(info) if p.formants is not None]
    if not anchors:
        anchors = [(0.0, PHONES["ah"])]
    at = np.array([a for a, _ in anchors])
    scale = spk.vtl_factor * np.concatenate([1.0 + np.array(spk.formant_offsets), np.ones(len(_HIGHER_POLES))])
    formants = np.stack([np.interp(times, at, [p.formants[k] for _, p in anchors]) for k in range(5)]
                        + [np.full(times.size, f) for f in _HIGHER_POLES], axis=1)
    bw_mult = np.interp(times, at, [p.bw_scale for _, p in anchors]) * spk.bw_scale
    tract = formant_envelope(_FREQS, formants * scale, _BANDWIDTHS[None, :] * bw_mult[:, None])
    tilt_db = ((spk.tilt + sess.tilt_shift) * np.log2(np.maximum(_FREQS, 60.0) / 500.0)
               + _HF_BOOST * np.log2(np.maximum(_FREQS, 1000.0) / 1000.0))
    voiced = _istft(spec_v * tract * 10.0 ** (tilt_db / 20.0), n)

    shapes = np.stack([_noise_shape(p, spk.vtl_factor) for p in info])
    uses_tract = np.array([not p.noise_shape for p in info])[seg]
    noise_env = np.where(uses_tract[:, None], tract / max(float(tract.max()), 1e-9), shapes[seg])
    noisy = _istft(spec_n * noise_env, n)
    v_rms = float(np.sqrt(np.mean(voiced[g_voice > 0.5] ** 2))) if np.any(g_voice > 0.5) else 1.0
    n_rms = float(np.sqrt(np.mean(noisy[g_noise > 0.2] ** 2))) if np.any(g_noise > 0.2) else 1.0
    return voiced + noisy * (_NOISE_LEVEL * v_rms / max(n_rms, 1e-9))

# --------------------------------------------------------------------------- channel


def coloured_noise(rng: np.random.Generator, n: int, alpha: float, sr: int = SR) -> np.ndarray:
    """Unit-RMS Gaussian noise with power spectrum ``~ 1 / max(f, 50 Hz)^alpha``."""
    m = next_fast_len(n, real=True)
    spec = rfft(rng.standard_normal(m))
    f = np.maximum(np.arange(spec.size) * (sr / m), 50.0)
    y = irfft(spec * f ** (-alpha / 2.0), n=m)[:n]
    return y / max(float(np.sqrt(np.mean(y ** 2))), 1e-12)


def apply_channel(rng: np.random.Generator, x: np.ndarray, ch: Channel) -> np.ndarray:
    """Pass clean speech through a session's channel.

    Reverberate, add noise at ``snr_db + N(0, 1.5)`` dB (relative to the mean
    power of the whole reverberant signal), equalise, scale to an RMS of
    ``level_db + N(0, 1)`` dBFS, then scale down if needed so that
    ``max |y| <= 0.95``.
    """
    n = x.size
    y = fftconvolve(x, ch.rir)[:n] if ch.rir.size > 1 else x.copy()
    p_speech = float(np.mean(y ** 2))
    snr = ch.snr_db + rng.normal(0.0, 1.5)
    y = y + coloured_noise(rng, n, ch.noise_alpha) * math.sqrt(p_speech * 10.0 ** (-snr / 10.0))
    y = sosfilt(ch.sos, y)
    y *= 10.0 ** ((ch.level_db + rng.normal(0.0, 1.0)) / 20.0) / max(float(np.sqrt(np.mean(y ** 2))), 1e-12)
    peak = float(np.max(np.abs(y)))
    return y * (0.95 / peak) if peak > 0.95 else y


def synthesize_utterance(rng: np.random.Generator, spk: SpeakerProfile, sess: SessionProfile, n: int) -> np.ndarray:
    """Random content spoken by ``spk`` in session ``sess``: ``n`` float32 samples at 16 kHz, ``|x| <= 0.95``."""
    phones = sample_phones(rng, n / SR, spk.rate * sess.rate_factor)
    return apply_channel(rng, synthesize_voice(rng, spk, sess, phones, n), sess.channel).astype(np.float32)

# --------------------------------------------------------------------------- corpus


@dataclass(frozen=True)
class CorpusSpec:
    """Size and seed of a mini corpus; ``n_trials=None`` means twice the cross-session target pairs."""

    n_train_spk: int = 40
    n_test_spk: int = 20
    n_sessions: int = 3
    n_utts: int = 4
    min_dur: float = 2.0
    max_dur: float = 5.0
    seed: int = 0
    n_trials: int | None = None
    voice_spread: float = 1.0       # see sample_speaker
    channel_severity: float = 1.0   # see sample_channel


@dataclass(frozen=True)
class PlannedUtt:
    """One file of the corpus: indices, VoxCeleb-style names and length in samples."""

    spk: int
    sess: int
    utt: int
    spk_id: str
    sess_id: str
    n_samples: int

    @property
    def relpath(self) -> str:
        """``idNNNNN/<session>/<NNNNN>.wav`` as in VoxCeleb1 trial lists."""
        return f"{self.spk_id}/{self.sess_id}/{self.utt + 1:05d}.wav"


_ID_CHARS = string.ascii_letters + string.digits + "_-"


def _rng(spec: CorpusSpec, *stream: int) -> np.random.Generator:
    return np.random.default_rng([spec.seed, *stream])


def plan_corpus(spec: CorpusSpec, sr: int = SR) -> list[PlannedUtt]:
    """All files, speakers ``id10001..`` (the last ``n_test_spk`` are test), unique 11-char session ids."""
    rng = _rng(spec, 0)
    n_spk = spec.n_train_spk + spec.n_test_spk
    seen: set[str] = set()
    lo, hi = math.ceil(spec.min_dur * sr), math.floor(spec.max_dur * sr)
    plan = []
    for s in range(n_spk):
        for j in range(spec.n_sessions):
            sess_id = "".join(rng.choice(list(_ID_CHARS), 11))
            while sess_id in seen:
                sess_id = "".join(rng.choice(list(_ID_CHARS), 11))
            seen.add(sess_id)
            for u in range(spec.n_utts):
                n = int(np.clip(round(rng.uniform(spec.min_dur, spec.max_dur) * sr), lo, hi))
                plan.append(PlannedUtt(s, j, u, f"id{10001 + s:05d}", sess_id, n))
    return plan


def test_speakers(spec: CorpusSpec) -> range:
    """Indices of the test speakers (the last ``n_test_spk``)."""
    return range(spec.n_train_spk, spec.n_train_spk + spec.n_test_spk)


def _target_pairs(test: list[PlannedUtt]) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Same-speaker pairs (indices into ``test``): (cross-session, same-session)."""
    cross, same = [], []
    for i, a in enumerate(test):
        for j in range(i + 1, len(test)):
            b = test[j]
            if a.spk == b.spk:
                (cross if a.sess != b.sess else same).append((i, j))
    return cross, same


def _nontarget_pairs(rng: np.random.Generator, test: list[PlannedUtt], n_non: int,
                     max_non: int) -> list[tuple[int, int]]:
    """``n_non`` distinct different-speaker pairs ``(i < j)``, uniformly at random."""
    if 2 * n_non > max_non:  # dense: enumerate all, then pick
        spk = np.array([u.spk for u in test])
        ii, jj = np.triu_indices(len(test), 1)
        keep = spk[ii] != spk[jj]
        pick = np.sort(rng.permutation(int(keep.sum()))[:n_non])
        return list(zip(ii[keep][pick].tolist(), jj[keep][pick].tolist()))
    chosen: set[tuple[int, int]] = set()
    while len(chosen) < n_non:
        i, j = (int(v) for v in rng.integers(0, len(test), 2))
        if test[i].spk != test[j].spk:
            chosen.add((min(i, j), max(i, j)))
    return sorted(chosen)


def count_trials(spec: CorpusSpec) -> tuple[int, int, int]:
    """``(default n_trials, max target trials, max nontarget trials)`` for a spec."""
    per_spk = spec.n_sessions * spec.n_utts
    n_cross = spec.n_test_spk * (math.comb(per_spk, 2) - spec.n_sessions * math.comb(spec.n_utts, 2))
    n_same = spec.n_test_spk * spec.n_sessions * math.comb(spec.n_utts, 2)
    n_non = math.comb(spec.n_test_spk * per_spk, 2) - spec.n_test_spk * math.comb(per_spk, 2)
    default = 2 * (n_cross if n_cross > 0 else n_same)
    return default, n_cross + n_same, n_non


def make_trials(spec: CorpusSpec, plan: Sequence[PlannedUtt]) -> list[tuple[int, str, str]]:
    """Balanced VoxCeleb-style trials ``(label, utt_a, utt_b)`` among test speakers.

    ``n_trials // 2`` targets, cross-session pairs first (same-session ones only
    if needed), the rest nontargets drawn uniformly without repetition; random
    order within each pair and overall.
    """
    default, max_tgt, max_non = count_trials(spec)
    n_trials = default if spec.n_trials is None else spec.n_trials
    n_tgt, n_non = n_trials // 2, n_trials - n_trials // 2
    if n_tgt > max_tgt or n_non > max_non:
        raise SpkpeftError(f"{n_trials} trials need {n_tgt} target and {n_non} nontarget pairs, "
                           f"but the test speakers allow at most {max_tgt} and {max_non}")
    rng = _rng(spec, 4)
    test_set = set(test_speakers(spec))
    test = [u for u in plan if u.spk in test_set]
    cross, same = _target_pairs(test)
    targets = [cross[i] for i in rng.permutation(len(cross))] + [same[i] for i in rng.permutation(len(same))]
    pairs = [(1, i, j) for i, j in targets[:n_tgt]]
    pairs += [(0, i, j) for i, j in _nontarget_pairs(rng, test, n_non, max_non)]
    trials = []
    for label, i, j in (pairs[k] for k in rng.permutation(len(pairs))):
        a, b = (test[i], test[j]) if rng.random() < 0.5 else (test[j], test[i])
        trials.append((label, a.relpath, b.relpath))
    return trials


def refuse_foreign_files(base: Path, wanted: set[str], pattern: str = "**/*") -> None:
    """Raise if ``base`` holds a file matching ``pattern`` whose path relative to ``base`` is not in ``wanted``.

    The corpus writers call it before writing, so that a directory holding
    another corpus is never overwritten or mixed with this one.
    """
    for path in sorted(base.glob(pattern)):
        if path.is_file() and path.relative_to(base).as_posix() not in wanted:
            raise SpkpeftError(f"{base} already holds files of another corpus (e.g. {path}); "
                               f"use an empty output directory")


def write_corpus(root: str | Path, spec: CorpusSpec,
                 progress: Callable[[int, int], None] | None = None) -> dict[str, float]:
    """Write ``root/wav/<spk>/<session>/<NNNNN>.wav`` and, last, ``root/veri_test.txt``.

    Returns a summary: ``n_utts``, ``n_speakers``, ``n_trials``, ``n_target``,
    ``minutes`` of audio.
    """
    root = Path(root)
    plan = plan_corpus(spec)
    trials = make_trials(spec, plan)  # validates n_trials before any audio is made
    refuse_foreign_files(root / "wav", {u.relpath for u in plan})
    (root / "veri_test.txt").unlink(missing_ok=True)
    speakers = [sample_speaker(_rng(spec, 1, s), spec.voice_spread) for s in range(spec.n_train_spk + spec.n_test_spk)]
    sessions: dict[tuple[int, int], SessionProfile] = {}
    for k, u in enumerate(plan):
        if (u.spk, u.sess) not in sessions:
            sessions[u.spk, u.sess] = sample_session(_rng(spec, 2, u.spk, u.sess), spec.channel_severity)
        x = synthesize_utterance(_rng(spec, 3, u.spk, u.sess, u.utt), speakers[u.spk], sessions[u.spk, u.sess],
                                 u.n_samples)
        write_audio(root / "wav" / u.relpath, x, SR)
        if progress is not None:
            progress(k + 1, len(plan))
    write_text_atomic(root / "veri_test.txt", (f"{label} {a} {b}" for label, a, b in trials))
    return {"n_utts": len(plan), "n_speakers": len(speakers), "n_trials": len(trials),
            "n_target": sum(t[0] for t in trials), "minutes": sum(u.n_samples for u in plan) / SR / 60.0}
