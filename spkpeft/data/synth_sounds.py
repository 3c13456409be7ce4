"""Synthetic sound classes and the "mini" audio-classification corpus.

Every clip is ``n = round(seconds * SR)`` samples at 16 kHz (``SR`` of
:mod:`spkpeft.data.synth`).  Notation: ``U(a, b)`` uniform, ``LU(a, b)`` log-uniform
(``exp U(ln a, ln b)``), ``s(t)`` a smooth unit-variance random function
(Gaussian control points every ``tau`` seconds, cosine-interpolated), ``T`` the
clip length in seconds.  "Active span": the sound occupies ``D`` seconds from a
random onset ``U(0, T - D)``; the rest of the clip holds only background and
noise.  A harmonic tone with fundamental track ``f0(t)`` is
``sum_k a_k sin(k phi(t) + theta_k)``, ``phi = 2 pi cumsum(f0) / SR``, random
``theta_k``, partials above 7.8 kHz dropped.  A *mode* is a damped sinusoid
``exp(-t / tau) sin(2 pi f t + theta)``.

Classes (``CLASSES``, in this order):

* ``flute`` -- breathy harmonic notes.  1-3 legato notes over ``D = U(0.45, 1) T``,
  each ``f0 = LU(240, 1000)`` Hz with vibrato ``f0 (1 + v sin(2 pi r t))``,
  ``v = U(0, 0.015)``, ``r = U(4, 7)`` Hz; ``a_k = k^-rho``, ``rho = U(1.2, 3)``,
  8 partials; attack ``U(20, 120)`` ms (15 ms re-attack of later notes),
  release ``U(30, 150)`` ms; white breath
  noise at ``U(0.02, 0.2)`` of the tone's RMS, high-passed at ``f0``.
* ``brass`` -- buzzy harmonic notes.  1-2 notes over ``D = U(0.45, 1) T``,
  ``f0 = LU(80, 420)`` Hz with an onset scoop ``f0 2^(-c exp(-t / 30 ms) / 12)``,
  ``c = U(0, 2)``; ``a_k = k^-1 (1 + g exp(-((k f0 - F) / B)^2 / 2))`` with a
  resonance ``F = LU(600, 2500)`` Hz, ``B = U(0.3, 0.8) F``, ``g = U(2, 8)``;
  partials up to 7.8 kHz; attack ``U(10, 60)`` ms, release 20 ms.
* ``engine`` -- a pulse train at firing rate ``r(t) = r0 2^(q t / T) (1 + 0.02 s(t))``,
  ``r0 = LU(20, 80)`` Hz, ``q = U(-0.5, 0.5)`` (revving), ``tau = 0.2`` s, pulse
  heights ``exp(N(0, 0.25))``, low-passed (2nd-order Butterworth at
  ``fc = LU(150, 1000)`` Hz), plus the same through a two-pole resonator
  (``LU(80, 400)`` Hz, Q ``U(2, 8)``, poles ``r exp(+-j 2 pi f / SR)``,
  ``r = exp(-pi f / (Q SR))``), plus noise low-passed at ``fc`` at
  ``U(0.1, 0.5)`` of their RMS; ``D = U(0.6, 1) T``, 50 ms fades.
* ``wind`` -- noise shaped per STFT frame by
  ``exp(-(log2(f / fc(t)) / w)^2 / 2)``, ``fc(t) = fc0 2^(0.5 s1(t))``,
  ``fc0 = LU(150, 1200)`` Hz, ``w = U(0.3, 1.2)`` octaves, gusts
  ``exp(0.6 s2(t))``, ``tau = U(0.15, 0.6)`` s; whole clip.
* ``rain`` -- Poisson drops at ``lambda = LU(30, 600)`` per second, each a mode
  at ``LU(700, 6000)`` Hz, ``tau = U(1, 5)`` ms, amplitude ``exp(N(0, 0.8))``;
  plus white hiss high-passed (2nd order) at ``LU(300, 4000)`` Hz at
  ``U(0.2, 2)`` of the drops' RMS; whole clip.
* ``knock`` -- 1-2 groups of 2-5 knocks ``U(0.08, 0.3)`` s apart (10 % jitter);
  a knock is 3 modes, ``f1 = LU(100, 700)`` Hz, ``f_{j+1} = f_j U(1.5, 3.5)``,
  ``tau_1 = U(10, 60)`` ms, ``tau_j = tau_1 / j``, amplitudes ``1, U(0.2, 0.8),
  U(0.1, 0.5)``, plus a 2 ms noise transient at ``U(0.05, 0.3)``; knock level
  ``U(0.6, 1)``; first group onset ``U(0, 0.8) T``.
* ``clock`` -- ticks every ``P = U(0.15, 0.6)`` s (0.5 % jitter) from
  ``U(0, min(P, 0.8 T))``;
  a tick is 2-3 modes at ``LU(1000, 5000)`` Hz (each next ``U(1.2, 2.2)`` times
  higher, amplitudes 1, 0.6, 0.3), ``tau = U(2, 10)`` ms; every second tick
  ("tock") has its modes times ``U(0.8, 1)`` and its level times ``U(0.5, 1)``;
  whole clip.
* ``siren`` -- a harmonic tone ``f0(t) = fc 2^(d m(t / P) / 24)``,
  ``fc = LU(450, 1300)`` Hz, depth ``d = U(2, 9)`` semitones, period
  ``P = LU(0.15, 3)`` s, ``m`` a sine (p = 0.5) or a rising sawtooth in
  ``[-1, 1]``; 6 partials ``a_k = k^-rho``, ``rho = U(1, 2.5)``;
  ``D = U(0.5, 1) T``, 30/50 ms fades.
* ``bird`` -- 1-7 chirps at onsets ``U(0, 0.95 T)``, each drawn from one of 1-2 call
  templates: duration ``U(0.03, 0.25)`` s, start ``LU(1500, 6500)`` Hz, end =
  start ``2^U(-1, 1)``, exponential glide; trill (p = 0.4)
  ``f (1 + e sin(2 pi r t))``, ``r = U(15, 50)`` Hz, ``e = U(0.02, 0.1)``;
  second harmonic at ``U(0, 0.3)``; envelope ``sin^2``; per chirp duration and
  frequency varied by ``exp(N(0, 0.1))``, level ``U(0.5, 1)``.
* ``speech`` -- speech (random syllables) of one random voice of :mod:`spkpeft.data.synth`
  (``sample_speaker``, ``sample_session``, ``sample_phones``,
  ``synthesize_voice``; the session channel is not used), the leading silence
  cut to at most ``T / 4``.

Mixing (per clip): the foreground is scaled to unit RMS over the clip; with
probability 0.6 (``BACKGROUND_PROB``) a background sound of another class
(any of ``CLASSES`` but the foreground's, uniformly; also when the corpus
holds fewer classes) is added at ``U(-20, -3)`` dB re the foreground
(``BACKGROUND_DB``); coloured ambient noise (``coloured_noise``,
``alpha = U(0, 2)``) at SNR ``U(0, 30)`` dB re the foreground
(``AMBIENT_SNR_DB``); then a random recording channel (``sample_channel`` /
``apply_channel`` of :mod:`spkpeft.data.synth`: EQ, room, 20-40 dB SNR noise,
level -32..-20 dBFS, peak <= 0.95).  With these settings the classes overlap:
MFCC mean/std statistics and logistic regression reach about 70 % accuracy
on the default corpus (10 classes, 40 training clips each), not 100 %.

Every random draw comes from ``numpy.random.default_rng([seed, stream, class,
set, index])`` (``class`` the position in ``CLASSES``, ``set`` in ``SETS``;
streams: 1 foreground, 2 background, 3 mixing and channel),
so each clip is reproducible on its own and does not depend on which classes
or how many clips a corpus holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from scipy.signal import butter, lfilter, sosfilt

from spkpeft.io.audio import write_audio
from spkpeft.io.atomic import write_text_atomic
from spkpeft.io.datadir import c_sort_key
from spkpeft.errors import SpkpeftError
from spkpeft.data.synth import (SR, apply_channel, coloured_noise, refuse_foreign_files, sample_channel,
                                sample_phones, sample_session, sample_speaker, synthesize_voice)

CLASSES = ("flute", "brass", "engine", "wind", "rain", "knock", "clock", "siren", "bird", "speech")
SETS = ("train", "dev", "test")
BACKGROUND_PROB = 0.6
BACKGROUND_DB = (-20.0, -3.0)   # background level re the foreground
AMBIENT_SNR_DB = (0.0, 30.0)    # foreground re the ambient noise
_MAX_PARTIAL_HZ = 7800.0
_N_FFT, _HOP = 512, 256
_WINDOW = np.sin(np.pi * (np.arange(_N_FFT) + 0.5) / _N_FFT)
_FREQS = np.arange(_N_FFT // 2 + 1) * SR / _N_FFT

# --------------------------------------------------------------------------- helpers


def _lu(rng: np.random.Generator, lo: float, hi: float) -> float:
    """Log-uniform draw in ``[lo, hi]``."""
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def smooth_noise(rng: np.random.Generator, n: int, tau: float) -> np.ndarray:
    """``n`` samples of a smooth, roughly unit-variance random function.

    N(0, 1) control points every ``tau`` seconds, cosine-interpolated.
    """
    step = max(tau * SR, 1.0)
    m = int(n / step) + 2
    pts = rng.standard_normal(m)
    pos = np.arange(n) / step
    i = np.floor(pos).astype(np.int64)
    w = 0.5 - 0.5 * np.cos(np.pi * (pos - i))
    return pts[i] * (1.0 - w) + pts[i + 1] * w


def fade_envelope(n: int, start: int, length: int, attack: int, release: int) -> np.ndarray:
    """1 on ``[start, start + length)`` with raised-cosine attack and release (inside the span), 0 elsewhere."""
    env = np.zeros(n)
    end = min(start + length, n)
    if end <= start:
        return env
    idx = np.arange(start, end) - start
    seg = np.ones(end - start)
    if attack > 0:
        seg = np.minimum(seg, 0.5 - 0.5 * np.cos(np.pi * np.minimum(idx / attack, 1.0)))
    if release > 0:
        seg = np.minimum(seg, 0.5 - 0.5 * np.cos(np.pi * np.minimum((length - 1 - idx) / release, 1.0)))
    env[start:end] = seg
    return env


def _active_span(rng: np.random.Generator, n: int, lo: float, hi: float) -> tuple[int, int]:
    """``(onset, length)`` in samples: length ``U(lo, hi) n``, onset uniform in what is left."""
    length = max(int(rng.uniform(lo, hi) * n), 1)
    return int(rng.uniform(0.0, n - length + 1)), length


def harmonic_tone(rng: np.random.Generator, f0: np.ndarray, amps: Callable[[int, np.ndarray], np.ndarray],
                  n_partials: int) -> np.ndarray:
    """``sum_k amps(k, f0) sin(k phi + theta_k)``, ``phi = 2 pi cumsum(f0) / SR``, partials above 7.8 kHz dropped."""
    phi = 2.0 * np.pi * np.cumsum(f0) / SR
    y = np.zeros(f0.size)
    for k in range(1, n_partials + 1):
        theta = rng.uniform(0.0, 2.0 * np.pi)
        keep = k * f0 < _MAX_PARTIAL_HZ
        if not keep.any():
            break
        y += np.where(keep, amps(k, f0), 0.0) * np.sin(k * phi + theta)
    return y


def modes(rng: np.random.Generator, freqs: Sequence[float], taus: Sequence[float],
          amps: Sequence[float]) -> np.ndarray:
    """Sum of damped sinusoids ``a exp(-t / tau) sin(2 pi f t + theta)``, long enough for a 60 dB decay."""
    n = max(int(6.91 * max(taus) * SR), 8)
    t = np.arange(n) / SR
    y = np.zeros(n)
    for f, tau, a in zip(freqs, taus, amps):
        y += a * np.exp(-t / tau) * np.sin(2.0 * np.pi * f * t + rng.uniform(0.0, 2.0 * np.pi))
    return y


def add_at(y: np.ndarray, event: np.ndarray, pos: int) -> None:
    """Add ``event`` into ``y`` starting at sample ``pos`` (clipped at the end)."""
    if 0 <= pos < y.size:
        m = min(event.size, y.size - pos)
        y[pos: pos + m] += event[:m]


def shaped_noise(rng: np.random.Generator, n: int, gain: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """White noise filtered per STFT frame (512 sine window, hop 256): ``gain(frame_times_s)`` -> ``(frames, 257)``."""
    n_frames = n // _HOP + 3
    frames = rng.standard_normal((n_frames, _N_FFT)) * _WINDOW
    spec = np.fft.rfft(frames, axis=1) * gain((np.arange(n_frames) * _HOP - _N_FFT // 2) / SR)
    out = np.fft.irfft(spec, n=_N_FFT, axis=1) * _WINDOW
    y = np.zeros((n_frames + 1) * _HOP)
    for r in range(_N_FFT // _HOP):
        y.reshape(-1, _HOP)[r: r + n_frames] += out[:, r * _HOP: (r + 1) * _HOP]
    return y[_N_FFT // 2: _N_FFT // 2 + n]


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x ** 2)))

# --------------------------------------------------------------------------- classes


def _flute(rng: np.random.Generator, n: int) -> np.ndarray:
    start, length = _active_span(rng, n, 0.45, 1.0)
    n_notes = int(rng.integers(1, 4))
    bounds = np.linspace(start, start + length, n_notes + 1).astype(np.int64)
    f0 = np.zeros(n)
    for j in range(n_notes):
        f0[bounds[j]: bounds[j + 1]] = _lu(rng, 240.0, 1000.0)
    f0[:start] = f0[start]
    f0[start + length:] = f0[start + length - 1]
    t = np.arange(n) / SR
    f0 = f0 * (1.0 + rng.uniform(0.0, 0.015) * np.sin(2.0 * np.pi * rng.uniform(4.0, 7.0) * t
                                                       + rng.uniform(0.0, 2.0 * np.pi)))
    rho = rng.uniform(1.2, 3.0)
    tone = harmonic_tone(rng, f0, lambda k, f: k ** -rho, 8)
    env = np.zeros(n)
    for j in range(n_notes):  # legato notes, each with its own (softer after the first) attack
        a = int(rng.uniform(0.02, 0.12) * SR) if j == 0 else int(0.015 * SR)
        r = int(rng.uniform(0.03, 0.15) * SR) if j == n_notes - 1 else 0
        env = np.maximum(env, fade_envelope(n, int(bounds[j]), int(bounds[j + 1] - bounds[j]), a, r))
    tone *= env
    breath = sosfilt(butter(2, float(f0.mean()), "highpass", fs=SR, output="sos"), rng.standard_normal(n)) * env
    return tone + breath * (rng.uniform(0.02, 0.2) * _rms(tone) / max(_rms(breath), 1e-12))


def _brass(rng: np.random.Generator, n: int) -> np.ndarray:
    start, length = _active_span(rng, n, 0.45, 1.0)
    n_notes = int(rng.integers(1, 3))
    bounds = np.linspace(start, start + length, n_notes + 1).astype(np.int64)
    f0 = np.full(n, 100.0)
    env = np.zeros(n)
    for j in range(n_notes):
        a, b = int(bounds[j]), int(bounds[j + 1])
        t = np.arange(b - a) / SR
        f0[a:b] = _lu(rng, 80.0, 420.0) * 2.0 ** (-rng.uniform(0.0, 2.0) * np.exp(-t / 0.03) / 12.0)
        env = np.maximum(env, fade_envelope(n, a, b - a, int(rng.uniform(0.01, 0.06) * SR), int(0.02 * SR)))
    f0[:start] = f0[start]
    f0[start + length:] = f0[start + length - 1]
    centre = _lu(rng, 600.0, 2500.0)
    width = rng.uniform(0.3, 0.8) * centre
    gain = rng.uniform(2.0, 8.0)
    tone = harmonic_tone(rng, f0, lambda k, f: (1.0 + gain * np.exp(-0.5 * ((k * f - centre) / width) ** 2)) / k, 60)
    return tone * env


def _engine(rng: np.random.Generator, n: int) -> np.ndarray:
    start, length = _active_span(rng, n, 0.6, 1.0)
    t = np.arange(n) / SR
    rate = _lu(rng, 20.0, 80.0) * 2.0 ** (rng.uniform(-0.5, 0.5) * t / (n / SR))
    rate *= 1.0 + 0.02 * smooth_noise(rng, n, 0.2)
    phase = np.cumsum(rate) / SR + rng.uniform()
    cycles = np.floor(phase).astype(np.int64)
    hits = np.flatnonzero(np.diff(cycles, prepend=cycles[0]) > 0)
    pulses = np.zeros(n)
    pulses[hits] = np.exp(0.25 * rng.standard_normal(hits.size))
    fc = _lu(rng, 150.0, 1000.0)
    lp = butter(2, fc, "lowpass", fs=SR, output="sos")
    f_res, q = _lu(rng, 80.0, 400.0), rng.uniform(2.0, 8.0)
    r = math.exp(-math.pi * f_res / q / SR)
    body = lfilter([1.0 - r], [1.0, -2.0 * r * math.cos(2.0 * math.pi * f_res / SR), r * r], sosfilt(lp, pulses))
    body = body + sosfilt(lp, pulses)
    noise = sosfilt(lp, rng.standard_normal(n))
    y = body + noise * (rng.uniform(0.1, 0.5) * _rms(body) / max(_rms(noise), 1e-12))
    return y * fade_envelope(n, start, length, int(0.05 * SR), int(0.05 * SR))


def _wind(rng: np.random.Generator, n: int) -> np.ndarray:
    fc0, width, tau = _lu(rng, 150.0, 1200.0), rng.uniform(0.3, 1.2), rng.uniform(0.15, 0.6)
    n_ctl = n // _HOP + 3
    s1 = smooth_noise(rng, n_ctl * _HOP, tau)[::_HOP][:n_ctl]
    s2 = smooth_noise(rng, n_ctl * _HOP, tau)[::_HOP][:n_ctl]
    log_f = np.log2(np.maximum(_FREQS, 20.0))

    def gain(_times: np.ndarray) -> np.ndarray:
        centre = np.log2(fc0) + 0.5 * s1
        return np.exp(0.6 * s2)[:, None] * np.exp(-0.5 * ((log_f[None, :] - centre[:, None]) / width) ** 2)

    return shaped_noise(rng, n, gain)


def _rain(rng: np.random.Generator, n: int) -> np.ndarray:
    lam = _lu(rng, 30.0, 600.0)
    y = np.zeros(n)
    for pos in np.sort(rng.integers(0, n, rng.poisson(lam * n / SR))):
        drop = modes(rng, [_lu(rng, 700.0, 6000.0)], [rng.uniform(0.001, 0.005)],
                     [math.exp(0.8 * rng.standard_normal())])
        add_at(y, drop, int(pos))
    hiss = sosfilt(butter(2, _lu(rng, 300.0, 4000.0), "highpass", fs=SR, output="sos"), rng.standard_normal(n))
    level = rng.uniform(0.2, 2.0) * max(_rms(y), 1e-3)
    return y + hiss * (level / max(_rms(hiss), 1e-12))


def _knock(rng: np.random.Generator, n: int) -> np.ndarray:
    y = np.zeros(n)
    for _ in range(int(rng.integers(1, 3))):
        pos = rng.uniform(0.0, 0.8) * n
        gap = rng.uniform(0.08, 0.3) * SR
        for _ in range(int(rng.integers(2, 6))):
            f1 = _lu(rng, 100.0, 700.0)
            f2 = f1 * rng.uniform(1.5, 3.5)
            f3 = f2 * rng.uniform(1.5, 3.5)
            tau = rng.uniform(0.01, 0.06)
            ev = modes(rng, [f1, f2, f3], [tau, tau / 2, tau / 3], [1.0, rng.uniform(0.2, 0.8), rng.uniform(0.1, 0.5)])
            m = int(0.002 * SR)
            ev[:m] += rng.uniform(0.05, 0.3) * rng.standard_normal(m) * np.hanning(m)
            add_at(y, rng.uniform(0.6, 1.0) * ev, int(pos))
            pos += gap * (1.0 + 0.1 * rng.standard_normal())
    return y


def _clock(rng: np.random.Generator, n: int) -> np.ndarray:
    period = rng.uniform(0.15, 0.6) * SR
    n_modes = int(rng.integers(2, 4))
    freqs = [_lu(rng, 1000.0, 5000.0)]
    for _ in range(n_modes - 1):
        freqs.append(freqs[-1] * rng.uniform(1.2, 2.2))
    freqs = [min(f, _MAX_PARTIAL_HZ) for f in freqs]
    taus = [rng.uniform(0.002, 0.01) for _ in freqs]
    tock_f, tock_a = rng.uniform(0.8, 1.0), rng.uniform(0.5, 1.0)
    y = np.zeros(n)
    pos, k = rng.uniform(0.0, min(period, 0.8 * n)), 0
    while pos < n:
        scale_f, scale_a = (tock_f, tock_a) if k % 2 else (1.0, 1.0)
        add_at(y, scale_a * modes(rng, [f * scale_f for f in freqs], taus, [1.0, 0.6, 0.3][:n_modes]), int(pos))
        pos += period * (1.0 + 0.005 * rng.standard_normal())
        k += 1
    return y


def _siren(rng: np.random.Generator, n: int) -> np.ndarray:
    start, length = _active_span(rng, n, 0.5, 1.0)
    fc, depth, period = _lu(rng, 450.0, 1300.0), rng.uniform(2.0, 9.0), _lu(rng, 0.15, 3.0)
    u = np.arange(n) / SR / period + rng.uniform()
    mod = np.sin(2.0 * np.pi * u) if rng.random() < 0.5 else 2.0 * (u - np.floor(u)) - 1.0
    f0 = fc * 2.0 ** (depth * mod / 24.0)
    rho = rng.uniform(1.0, 2.5)
    return harmonic_tone(rng, f0, lambda k, f: k ** -rho, 6) * fade_envelope(n, start, length, int(0.03 * SR),
                                                                              int(0.05 * SR))


def _bird(rng: np.random.Generator, n: int) -> np.ndarray:
    templates = []
    for _ in range(int(rng.integers(1, 3))):
        trill = (rng.uniform(15.0, 50.0), rng.uniform(0.02, 0.1)) if rng.random() < 0.4 else (0.0, 0.0)
        f_start = _lu(rng, 1500.0, 6500.0)
        templates.append((rng.uniform(0.03, 0.25), f_start, f_start * 2.0 ** rng.uniform(-1.0, 1.0), trill,
                          rng.uniform(0.0, 0.3)))
    y = np.zeros(n)
    for pos in np.sort(rng.uniform(0.0, 0.95 * n, int(rng.integers(1, 8)))):
        dur, f_a, f_b, (tr_rate, tr_depth), h2 = templates[int(rng.integers(len(templates)))]
        dur *= math.exp(0.1 * rng.standard_normal())
        scale = math.exp(0.1 * rng.standard_normal())
        m = max(int(dur * SR), 16)
        t = np.arange(m) / SR
        f = scale * f_a * (f_b / f_a) ** (t / dur) * (1.0 + tr_depth * np.sin(2.0 * np.pi * tr_rate * t))
        f = np.minimum(f, _MAX_PARTIAL_HZ)
        phi = 2.0 * np.pi * np.cumsum(f) / SR + rng.uniform(0.0, 2.0 * np.pi)
        chirp = np.sin(phi) + np.where(2 * f < _MAX_PARTIAL_HZ, h2, 0.0) * np.sin(2.0 * phi)
        add_at(y, rng.uniform(0.5, 1.0) * chirp * np.sin(np.pi * t / dur) ** 2, int(pos))
    return y


def _speech(rng: np.random.Generator, n: int) -> np.ndarray:
    spk = sample_speaker(rng)
    sess = sample_session(rng)
    phones = sample_phones(rng, n / SR + 0.3, spk.rate * sess.rate_factor)  # + the longest leading silence
    phones[0] = ("sil", min(phones[0][1], 0.25 * n / SR))  # so that short clips still hold speech
    return synthesize_voice(rng, spk, sess, phones, n)


_GENERATORS: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "flute": _flute, "brass": _brass, "engine": _engine, "wind": _wind, "rain": _rain,
    "knock": _knock, "clock": _clock, "siren": _siren, "bird": _bird, "speech": _speech,
}
assert tuple(_GENERATORS) == CLASSES


def synthesize_sound(name: str, rng: np.random.Generator, n: int) -> np.ndarray:
    """Clean ``n``-sample sound of class ``name`` (float64, unit RMS over the clip; see module docstring)."""
    if name not in _GENERATORS:
        raise SpkpeftError(f"unknown sound class '{name}' (known: {', '.join(CLASSES)})")
    x = np.asarray(_GENERATORS[name](rng, n), dtype=np.float64)[:n]
    return x / max(_rms(x), 1e-12)

# --------------------------------------------------------------------------- clips and corpus


def _clip_rng(seed: int, stream: int, cls: int, set_idx: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream, cls, set_idx, index])


def synthesize_clip(seed: int, name: str, set_idx: int, index: int, n: int) -> np.ndarray:
    """One corpus clip: foreground of class ``name``, optional background, ambient noise, channel (float32)."""
    cls = CLASSES.index(name)
    x = synthesize_sound(name, _clip_rng(seed, 1, cls, set_idx, index), n)
    mix = _clip_rng(seed, 3, cls, set_idx, index)
    if mix.random() < BACKGROUND_PROB:
        others = [c for c in CLASSES if c != name]
        other = others[int(mix.integers(len(others)))]
        level_db = mix.uniform(*BACKGROUND_DB)
        x = x + 10.0 ** (level_db / 20.0) * synthesize_sound(other, _clip_rng(seed, 2, cls, set_idx, index), n)
    snr = mix.uniform(*AMBIENT_SNR_DB)
    x = x + coloured_noise(mix, n, float(mix.uniform(0.0, 2.0))) * 10.0 ** (-snr / 20.0)
    return apply_channel(mix, x, sample_channel(mix)).astype(np.float32)


@dataclass(frozen=True)
class ClsCorpusSpec:
    """Classes, clips per class in each set, clip length and seed of a mini classification corpus."""

    classes: tuple[str, ...] = CLASSES
    n_train: int = 40
    n_dev: int = 20
    n_test: int = 20
    seconds: float = 1.0
    seed: int = 0

    def count(self, set_name: str) -> int:
        return {"train": self.n_train, "dev": self.n_dev, "test": self.n_test}[set_name]


@dataclass(frozen=True)
class PlannedClip:
    """One file of the corpus."""

    label: str
    set_name: str
    index: int

    @property
    def utt_id(self) -> str:
        return f"{self.label}-{self.set_name}-{self.index:04d}"

    @property
    def relpath(self) -> str:
        return f"{self.set_name}/{self.utt_id}.wav"


def plan_cls_corpus(spec: ClsCorpusSpec) -> list[PlannedClip]:
    """All clips, in set order then sorted by utterance id."""
    unknown = [c for c in spec.classes if c not in CLASSES]
    if unknown or not spec.classes or len(set(spec.classes)) != len(spec.classes):
        raise SpkpeftError(f"classes must be distinct names among {', '.join(CLASSES)}, got {list(spec.classes)}")
    plan = []
    for set_name in SETS:
        clips = [PlannedClip(c, set_name, i) for c in spec.classes for i in range(spec.count(set_name))]
        plan.extend(sorted(clips, key=lambda u: c_sort_key(u.utt_id)))
    return plan


LIST_FILES = ("wav.scp", "utt2label")


def write_cls_corpus(root: str | Path, spec: ClsCorpusSpec,
                     progress: Callable[[int, int], None] | None = None) -> dict[str, float]:
    """Write ``root/wav/<set>/<utt>.wav`` and, last, ``root/<set>/{wav.scp,utt2label}`` for train, dev, test.

    The list files of an older corpus are removed first and ``test/utt2label``
    is written last, so its presence marks a finished corpus.  Returns a
    summary: ``n_utts``, ``n_classes``, ``minutes`` of audio.
    """
    root = Path(root).resolve()
    plan = plan_cls_corpus(spec)
    refuse_foreign_files(root / "wav", {u.relpath for u in plan})
    for set_name in SETS:
        for name in LIST_FILES:
            (root / set_name / name).unlink(missing_ok=True)
    n = int(round(spec.seconds * SR))
    for k, u in enumerate(plan):
        x = synthesize_clip(spec.seed, u.label, SETS.index(u.set_name), u.index, n)
        write_audio(root / "wav" / u.relpath, x, SR)
        if progress is not None:
            progress(k + 1, len(plan))
    for set_name in SETS:
        clips = [u for u in plan if u.set_name == set_name]
        write_text_atomic(root / set_name / "wav.scp", (f"{u.utt_id} {root / 'wav' / u.relpath}" for u in clips))
        write_text_atomic(root / set_name / "utt2label", (f"{u.utt_id} {u.label}" for u in clips))
    return {"n_utts": len(plan), "n_classes": len(spec.classes), "minutes": len(plan) * n / SR / 60.0}
