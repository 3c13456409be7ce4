"""RawBoost: raw-waveform data boosting for training (Tak et al., ICASSP 2022).

H. Tak, M. Kamble, J. Patino, M. Todisco, N. Evans, "RawBoost: A Raw Data
Boosting and Augmentation Method applied to Automatic Speaker Verification
Anti-Spoofing", Proc. ICASSP 2022, pp. 6382-6386.

Three signal processes model channel and transmission effects without any
external corpus.  Every random draw comes from the ``numpy.random.Generator``
passed in, so the output is a deterministic function of the input and the
generator state.  ``U(a, b)`` below is ``a + (b - a) u`` with ``u`` uniform in
``[0, 1)`` (well defined also for ``a > b``, which the non-linear gain range
of process 1 produces with the defaults).

Multi-band notch filter (shared by processes 1 and 3).  ``n_bands`` band-stop
FIR filters in cascade, band ``k`` with centre ``f_c ~ U(f_range)``, width
``Δf ~ U(bw_range)`` and ``c = floor(U(coeff_range))`` taps, made odd
(``c + 1`` when even, as a band-stop FIR needs an odd length), edges
``[f_c - Δf/2, f_c + Δf/2]`` clamped into ``(0, fs/2)`` (``1e-3`` Hz from
either end), Hamming-windowed (``scipy.signal.firwin``'s design, :func:`bandstop_fir`).  The cascade
``b = b_1 * ... * b_K`` (odd length) is scaled to a peak gain ``G ~ U(gain)``
dB over the 512-point grid of ``[0, fs/2)``::

    b <- 10^(G/20) b / max_w |B(e^{jw})|

Filtering is linear convolution aligned to the group delay ``M = (len(b)-1)/2``,
``y[n] = sum_k b[k] x[n + M - k]``, with zeros outside the signal.

(1) Linear and non-linear convolutive noise (LnL).  A polynomial of order
``N_f`` whose ``j``-th term filters ``x^j`` with its own freshly drawn notch
filter ``b_j``; ``b_1`` has gain ``G_1 ~ U(min_g, max_g)`` and every
non-linear term ``j >= 2`` has ``G_j ~ U(min_g - min_bias, max_g - max_bias)``
(the same shifted range for all ``j >= 2``, as the reference code does)::

    y = sum_{j=1}^{N_f} b_j * x^j,   y <- y - mean(y),   y <- y / max|y| if max|y| > 1

(2) Impulsive signal-dependent additive noise (ISD).  A fraction
``β ~ U(0, P)`` percent of the samples, ``n = floor(N β / 100)`` distinct
positions drawn uniformly, is perturbed in proportion to the signal::

    y[i] = x[i] + g_sd x[i] (2u_1 - 1)(2u_2 - 1),   u_1, u_2 ~ U(0, 1)
    y <- y / max|y| if max|y| > 1

so on average ``P/2`` percent of the samples change (at most ``P``).

(3) Stationary signal-independent additive noise (SSI).  White Gaussian
noise ``w`` is coloured by a notch filter ``b`` (gain ``U(min_g, max_g)``,
no bias) and added at ``SNR ~ U(snr_range)`` dB::

    n = b * w,   y = x + n ||x||_2 / (||n||_2 10^(SNR/20))

so ``10 log10(||x||^2 / ||y - x||^2) = SNR`` exactly (``y = x`` when ``x = 0``).

Algorithms (the reference ``--algo`` numbering): 0 none, 1 = (1), 2 = (2),
3 = (3), 4 = (1)->(2)->(3), 5 = (1)->(2), 6 = (1)->(3), 7 = (2)->(3) (each
in series on the previous output), 8 = (1) and (2) in parallel on the input,
*summed* (not averaged) and peak-normalised when ``max|y| > 1``.

Defaults are those of the reference ``main.py`` (RawBoost-antispoofing and
SSL_Anti-spoofing ``main_SSL_LA.py`` / ``main_SSL_DF.py`` share them) at
16 kHz: 5 bands, centre 20-8000 Hz, width 100-1000 Hz, 10-100 taps, gain
0-0 dB, non-linear bias 5-20 dB, ``N_f = 5``, ``P = 10``, ``g_sd = 2``,
SNR 10-40 dB.  The reference's normalisation steps are kept: the LnL output
is mean-removed and divided by its peak only when the peak exceeds 1, as is
the ISD output and the parallel sum of algorithm 8.

Departures from the reference code (``RawBoost.py``):

* ``filterFIR`` (``y = y[int(N/2):int(y.shape[0]-N/2)]`` with
  ``N = len(b) + 1``) keeps the output from sample ``M + 1`` of the full
  convolution, one sample past the group delay; here the output is aligned to
  the group delay ``M`` exactly (a filter ``[1]`` returns its input).
* ``SSI_additive_noise`` divides the coloured noise by its peak
  (``normWav(noise, 1)``) before scaling it to the SNR; the scaling is
  invariant to that factor, so the step is omitted.  ``normWav`` would divide
  by zero for an all-zero signal; here a zero peak leaves the signal as is.
* The random draws use the given generator, vectorised per filter (all
  centres, then widths, then tap counts), not the global NumPy state; the
  distributions are those of the reference.
* In this toolkit RawBoost is applied to each training crop
  (:class:`spkpeft.data.augment.Augmenter`), whereas the reference applies it
  to the whole utterance before padding / cropping.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

import numpy as np
from scipy.signal import fftconvolve, freqz, get_window
from scipy.fft import irfft, next_fast_len, rfft

from spkpeft.errors import SpkpeftError
from spkpeft.io.audio import SAMPLE_RATE

ALGORITHMS: dict[int, str] = {
    0: "none",
    1: "linear and non-linear convolutive noise",
    2: "impulsive signal-dependent additive noise",
    3: "stationary signal-independent additive noise",
    4: "series 1+2+3",
    5: "series 1+2",
    6: "series 1+3",
    7: "series 2+3",
    8: "parallel 1 and 2 (summed)",
}
"""RawBoost algorithm number (the reference ``--algo``) -> description."""

SERIES: dict[int, tuple[int, ...]] = {0: (), 1: (1,), 2: (2,), 3: (3,), 4: (1, 2, 3), 5: (1, 2), 6: (1, 3), 7: (2, 3)}
"""Algorithms applying processes one after the other (8 is the parallel one)."""

ALGO_KEY = "data.augment.rawboost"
PARAMS_KEY = "data.augment.rawboost_params"

EDGE_HZ = 1e-3
"""Band edges are kept this far inside ``(0, fs/2)`` (reference: ``1/1000``)."""

GAIN_GRID = 512
"""Frequencies on ``[0, fs/2)`` over which the filter's peak gain is measured (``freqz`` default)."""


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_range(name: str, value: object, integer: bool, low_min: float | None = None) -> list:
    """``[low, high]`` with ``low <= high`` (and ``low >= low_min``); error names the key."""
    kind = "integers" if integer else "numbers"
    ok = isinstance(value, (list, tuple)) and len(value) == 2 and all(_is_number(v) for v in value)
    ok = ok and (not integer or all(float(v).is_integer() for v in value))
    if not ok or value[0] > value[1]:
        raise SpkpeftError(f"{PARAMS_KEY}.{name} must be [low, high] with low <= high ({kind}), got {value!r}")
    if low_min is not None and value[0] < low_min:
        raise SpkpeftError(f"{PARAMS_KEY}.{name} must have low >= {low_min:g}, got {value!r}")
    cast = int if integer else float
    return [cast(value[0]), cast(value[1])]


@dataclass
class RawBoostParams:
    """The ``data.augment.rawboost_params:`` config section (reference ``main.py`` names in brackets).

    ``n_bands`` [nBands]: notch filters in cascade (>= 1).
    ``f_range`` [minF, maxF]: centre frequencies in Hz, ``0 <= low``, ``high <= fs/2``.
    ``bw_range`` [minBW, maxBW]: band widths in Hz (``low >= 1``).
    ``coeff_range`` [minCoeff, maxCoeff]: FIR taps per band (integers, ``low >= 1``).
    ``gain_range`` [minG, maxG]: peak gain in dB of the linear term (and of process 3's filter).
    ``bias_range`` [minBiasLinNonLin, maxBiasLinNonLin]: dB subtracted from the
    gain range's ends for the non-linear terms.
    ``n_f`` [N_f]: polynomial order, 1 = linear only.
    ``p`` [P]: maximum percentage of samples hit by impulsive noise, in ``[0, 100]``.
    ``g_sd`` [g_sd]: impulsive noise gain (>= 0).
    ``snr_range`` [SNRmin, SNRmax]: SNR in dB of the coloured additive noise.
    """

    n_bands: int = 5
    f_range: list[float] = field(default_factory=lambda: [20.0, 8000.0])
    bw_range: list[float] = field(default_factory=lambda: [100.0, 1000.0])
    coeff_range: list[int] = field(default_factory=lambda: [10, 100])
    gain_range: list[float] = field(default_factory=lambda: [0.0, 0.0])
    bias_range: list[float] = field(default_factory=lambda: [5.0, 20.0])
    n_f: int = 5
    p: float = 10.0
    g_sd: float = 2.0
    snr_range: list[float] = field(default_factory=lambda: [10.0, 40.0])

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check types and ranges, normalising ranges to lists; raise :class:`SpkpeftError` naming the key."""
        for name in ("n_bands", "n_f"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise SpkpeftError(f"{PARAMS_KEY}.{name} must be an integer >= 1, got {v!r}")
        self.f_range = _check_range("f_range", self.f_range, integer=False, low_min=0.0)
        self.bw_range = _check_range("bw_range", self.bw_range, integer=False, low_min=1.0)
        self.coeff_range = _check_range("coeff_range", self.coeff_range, integer=True, low_min=1)
        for name in ("gain_range", "bias_range", "snr_range"):
            setattr(self, name, _check_range(name, getattr(self, name), integer=False))
        if not _is_number(self.p) or not 0.0 <= self.p <= 100.0:
            raise SpkpeftError(f"{PARAMS_KEY}.p must be a number in [0, 100] (percent), got {self.p!r}")
        if not _is_number(self.g_sd) or self.g_sd < 0:
            raise SpkpeftError(f"{PARAMS_KEY}.g_sd must be a number >= 0, got {self.g_sd!r}")

    def check_sample_rate(self, fs: int) -> None:
        """The centre frequencies must lie below the Nyquist frequency ``fs / 2``."""
        if self.f_range[1] > fs / 2:
            raise SpkpeftError(f"{PARAMS_KEY}.f_range high ({self.f_range[1]:g} Hz) must be <= "
                               f"half the sample rate ({fs / 2:g} Hz)")


def params_from(value: RawBoostParams | Mapping) -> RawBoostParams:
    """A validated :class:`RawBoostParams` from an instance or a mapping (unknown keys are errors)."""
    if isinstance(value, RawBoostParams):
        value.validate()
        return value
    if not isinstance(value, Mapping):
        raise SpkpeftError(f"{PARAMS_KEY} must be a mapping, got {type(value).__name__}")
    known = [f.name for f in fields(RawBoostParams)]
    for name in value:
        if name not in known:
            raise SpkpeftError(f"unknown key '{PARAMS_KEY}.{name}' (expected one of: {', '.join(known)})")
    return RawBoostParams(**dict(value))


def check_algo(algo: object) -> int:
    """The algorithm number, an integer in 0..8; error names ``data.augment.rawboost``."""
    if not isinstance(algo, int) or isinstance(algo, bool) or algo not in ALGORITHMS:
        choices = ", ".join(f"{k} {v}" for k, v in ALGORITHMS.items())
        raise SpkpeftError(f"{ALGO_KEY} must be an integer in 0..8 ({choices}), got {algo!r}")
    return algo


def _uniform(rng: np.random.Generator, a: float, b: float, size: int | None = None) -> np.ndarray | float:
    """``a + (b - a) u``, ``u ~ U[0, 1)``: uniform between ``a`` and ``b`` in either order."""
    return a + (b - a) * rng.random(size)


def peak_normalise(y: np.ndarray, always: bool = False) -> np.ndarray:
    """``y / max|y|`` when ``always`` or ``max|y| > 1`` (reference ``normWav``); a zero signal is returned."""
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if peak > 0.0 and (always or peak > 1.0):
        return y / peak
    return y


@functools.lru_cache(maxsize=256)
def _hamming(taps: int) -> np.ndarray:
    """The symmetric Hamming window of ``taps`` points (``scipy.signal.get_window``), cached."""
    window = get_window("hamming", taps, fftbins=False)
    window.flags.writeable = False
    return window


def bandstop_fir(taps: int, f1: float, f2: float, fs: int = SAMPLE_RATE) -> np.ndarray:
    """``scipy.signal.firwin(taps, [f1, f2], window="hamming", pass_zero="bandstop", fs=fs)``
    without its argument checks (``0 < f1 < f2 < fs/2``, odd ``taps``, ensured by the caller):
    the windowed ideal response of the pass bands ``[0, a]`` and ``[b, 1]`` (``a = 2 f1 / fs``,
    ``b = 2 f2 / fs``), ``h[n] = (a sinc(a m) + sinc(m) - b sinc(b m)) w[n]`` with
    ``m = n - (taps - 1) / 2``, scaled to unit gain at 0 Hz (``h / sum(h)``).  firwin's
    generic code costs about 30 times more; the result agrees with it to rounding."""
    nyq = 0.5 * fs
    a, b = f1 / nyq, f2 / nyq
    m = np.arange(taps, dtype=np.float64) - 0.5 * (taps - 1)
    h = a * np.sinc(a * m)
    h += np.sinc(m)
    h -= b * np.sinc(b * m)
    h *= _hamming(taps)
    return h / np.sum(h)


def notch_filter(fc: np.ndarray, bw: np.ndarray, taps: np.ndarray, gain_db: float,
                 fs: int = SAMPLE_RATE) -> np.ndarray:
    """Cascade of band-stop FIR filters, band ``k`` = ``[fc_k - bw_k/2, fc_k + bw_k/2]`` with ``taps_k`` taps.

    Edges are clamped into ``(0, fs/2)`` (``<= 0`` -> ``1e-3``, ``>= fs/2`` ->
    ``fs/2 - 1e-3``), even tap counts raise :class:`SpkpeftError` (band-stop
    filters need odd lengths), and the cascade is scaled to a peak gain of
    ``gain_db`` dB on the :data:`GAIN_GRID`-point grid of ``[0, fs/2)``.  The
    result has odd length ``sum(taps) - K + 1``.
    """
    fc, bw, taps = (np.atleast_1d(np.asarray(a)) for a in (fc, bw, taps))
    if np.any(taps % 2 == 0) or np.any(taps < 1):
        raise SpkpeftError(f"notch filter tap counts must be odd and >= 1, got {taps.tolist()}")
    low = fc - bw / 2.0
    high = fc + bw / 2.0
    low = np.where(low <= 0.0, EDGE_HZ, low)
    high = np.where(high >= fs / 2.0, fs / 2.0 - EDGE_HZ, high)
    b = np.ones(1)
    for f1, f2, c in zip(low, high, taps):
        band = bandstop_fir(int(c), float(f1), float(f2), fs)
        b = np.convolve(b, band)
    _, h = freqz(b, worN=GAIN_GRID)
    peak = float(np.max(np.abs(h)))
    return b * (10.0 ** (gain_db / 20.0) / peak) if peak > 0.0 else b


def random_notch_filter(rng: np.random.Generator, params: RawBoostParams, gain_low: float, gain_high: float,
                        fs: int = SAMPLE_RATE) -> np.ndarray:
    """:func:`notch_filter` with ``params.n_bands`` random bands and gain ``U(gain_low, gain_high)`` dB.

    Draws, in order: all centres ``U(f_range)``, all widths ``U(bw_range)``,
    all tap counts ``floor(U(coeff_range))`` (made odd), then the gain.
    """
    k = params.n_bands
    fc = _uniform(rng, *params.f_range, size=k)
    bw = _uniform(rng, *params.bw_range, size=k)
    taps = np.floor(_uniform(rng, *params.coeff_range, size=k)).astype(np.int64)
    taps += taps % 2 == 0
    gain = float(_uniform(rng, gain_low, gain_high))
    return notch_filter(fc, bw, taps, gain, fs)


def fir_filter(x: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Convolve the last axis of ``x`` with ``b`` (broadcast over leading axes), aligned to the group delay.

    ``y[..., n] = sum_k b[..., k] x[..., n + M - k]`` with ``M = (len(b) - 1) // 2``
    and zeros outside the signal; the output has the input's length.
    """
    n = x.shape[-1]
    m = (b.shape[-1] - 1) // 2
    full = fftconvolve(x, b, mode="full", axes=-1)
    return full[..., m:m + n]


def fir_filter_sum(rows: np.ndarray, bank: np.ndarray) -> np.ndarray:
    """``sum_j fir_filter(rows[j], bank[j])`` (equal group delays), summed before one inverse FFT."""
    n, width = rows.shape[-1], bank.shape[-1]
    size = next_fast_len(n + width - 1, real=True)
    spectrum = (rfft(rows, size, axis=-1) * rfft(bank, size, axis=-1)).sum(axis=0)
    m = (width - 1) // 2
    return irfft(spectrum, size)[m:m + n]


def lnl_convolutive_noise(x: np.ndarray, rng: np.random.Generator, params: RawBoostParams,
                          fs: int = SAMPLE_RATE) -> np.ndarray:
    """Process (1): ``sum_j b_j * x^j`` (``j = 1..N_f``), mean removed, peak-normalised above 1.

    Term ``j``'s filter is drawn by :func:`random_notch_filter` (terms in
    order), with gain range ``gain_range`` for ``j = 1`` and ``gain_range -
    bias_range`` (end by end) for ``j >= 2``.  The ``N_f`` filters are padded
    to a common centred length and applied in one FFT convolution: the powers ``x^j`` by
    repeated multiplication (not ``np.power``, 70x slower for non-square exponents) and the
    sum over ``j`` taken in the frequency domain, ``y = IFFT(sum_j FFT(b_j) FFT(x^j))``
    (one inverse transform instead of ``N_f``; equal to the term-by-term sum up to rounding).
    """
    g_lo, g_hi = params.gain_range
    b_lo, b_hi = params.bias_range
    filters = [random_notch_filter(rng, params, g_lo, g_hi, fs) if j == 1
               else random_notch_filter(rng, params, g_lo - b_lo, g_hi - b_hi, fs)
               for j in range(1, params.n_f + 1)]
    width = max(f.size for f in filters)  # all odd: centred zero padding keeps each group delay at the middle
    bank = np.stack([np.pad(f, (width - f.size) // 2) for f in filters])
    powers = np.empty((params.n_f, x.size))
    powers[0] = x
    for j in range(1, params.n_f):
        np.multiply(powers[j - 1], x, out=powers[j])
    y = fir_filter_sum(powers, bank)
    y = y - np.mean(y)
    return peak_normalise(y)


def isd_additive_noise(x: np.ndarray, rng: np.random.Generator, params: RawBoostParams) -> np.ndarray:
    """Process (2): ``floor(N β/100)`` random samples, ``β ~ U(0, P)``, get ``x g_sd (2u_1-1)(2u_2-1)`` added.

    Draws, in order: ``β``, the distinct positions, then ``u_1`` and ``u_2``
    (one ``(2, n)`` array).  The result is peak-normalised above 1.
    """
    beta = float(_uniform(rng, 0.0, params.p))
    count = int(math.floor(x.size * beta / 100.0))
    y = x.copy()
    if count > 0:
        idx = rng.choice(x.size, size=count, replace=False)
        u = rng.random((2, count))
        y[idx] = x[idx] + params.g_sd * x[idx] * (2.0 * u[0] - 1.0) * (2.0 * u[1] - 1.0)
    return peak_normalise(y)


def ssi_additive_noise(x: np.ndarray, rng: np.random.Generator, params: RawBoostParams,
                       fs: int = SAMPLE_RATE) -> np.ndarray:
    """Process (3): white noise coloured by a notch filter, added at ``SNR ~ U(snr_range)`` dB.

    Draws, in order: the ``N`` Gaussian samples, the filter
    (:func:`random_notch_filter`, gain ``U(gain_range)``), then the SNR.
    ``y = x + n ||x|| / (||n|| 10^(SNR/20))``; ``y = x`` if ``||n|| = 0``.
    """
    white = rng.standard_normal(x.size)
    noise = fir_filter(white, random_notch_filter(rng, params, *params.gain_range, fs))
    snr_db = float(_uniform(rng, *params.snr_range))
    norm_n = float(np.linalg.norm(noise))
    if norm_n <= 0.0:
        return x.copy()
    return x + noise * (float(np.linalg.norm(x)) / (norm_n * 10.0 ** (snr_db / 20.0)))


def _process(k: int, x: np.ndarray, rng: np.random.Generator, params: RawBoostParams, fs: int) -> np.ndarray:
    if k == 1:
        return lnl_convolutive_noise(x, rng, params, fs)
    if k == 2:
        return isd_additive_noise(x, rng, params)
    return ssi_additive_noise(x, rng, params, fs)


def rawboost(wav: np.ndarray, algo: int, rng: np.random.Generator, params: RawBoostParams | None = None,
             fs: int = SAMPLE_RATE) -> np.ndarray:
    """RawBoost algorithm ``algo`` (0..8, see the module docstring) applied to the 1-D ``wav``.

    Returns a float32 array of the input's length (computed in float64, non-finite
    values set to 0).  Algorithm 0 and an empty input return an unchanged copy
    without drawing from ``rng``.
    """
    algo = check_algo(algo)
    params = RawBoostParams() if params is None else params_from(params)
    params.check_sample_rate(fs)
    x = np.asarray(wav, dtype=np.float64)
    if x.ndim != 1:
        raise SpkpeftError(f"RawBoost expects a 1-D waveform, got shape {x.shape}")
    if algo == 0 or x.size == 0:
        return x.astype(np.float32)
    if algo == 8:
        y = peak_normalise(lnl_convolutive_noise(x, rng, params, fs) + isd_additive_noise(x, rng, params))
    else:
        y = x
        for k in SERIES[algo]:
            y = _process(k, y, rng, params, fs)
    return np.nan_to_num(y, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
