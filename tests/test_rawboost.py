"""RawBoost (Tak et al., ICASSP 2022): the three processes, the algorithms 0-8, config and Augmenter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import welch

from spkpeft.data.augment import AugmentConfig, Augmenter
from spkpeft.data.rawboost import (
    GAIN_GRID,
    RawBoostParams,
    isd_additive_noise,
    lnl_convolutive_noise,
    notch_filter,
    rawboost,
    ssi_additive_noise,
)
from spkpeft.errors import SpkpeftError

SR = 16000


def _speech(n: int = SR, seed: int = 0) -> np.ndarray:
    """Two tones plus a little noise, peak well below 1 (no peak normalisation triggered)."""
    t = np.arange(n) / SR
    x = 0.2 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 1330 * t)
    return (x + 0.01 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


def _band_db(y: np.ndarray, lo: float, hi: float, ref: tuple[float, float] | None = None) -> float:
    """Mean Welch PSD in ``[lo, hi]`` Hz, in dB relative to the mean PSD outside ``ref`` (default the band)."""
    f, psd = welch(y, fs=SR, nperseg=1024)
    inside = psd[(f >= lo) & (f <= hi)].mean()
    r_lo, r_hi = ref if ref is not None else (lo, hi)
    outside = psd[((f < r_lo) | (f > r_hi)) & (f > 100) & (f < SR / 2 - 100)].mean()
    return float(10 * np.log10(inside / outside))


def _snr_db(x: np.ndarray, y: np.ndarray) -> float:
    d = y.astype(np.float64) - x.astype(np.float64)
    return float(10 * np.log10(np.sum(x.astype(np.float64) ** 2) / np.sum(d ** 2)))


@pytest.mark.parametrize("algo", range(1, 9))
def test_every_algo_keeps_length_dtype_and_changes_signal(algo: int) -> None:
    x = _speech()
    y = rawboost(x, algo, np.random.default_rng(algo))
    assert y.dtype == np.float32 and y.shape == x.shape and np.isfinite(y).all()
    assert not np.allclose(y, x, atol=1e-4)
    assert np.max(np.abs(y)) < 2.0  # peak-normalised processes keep the level bounded


def test_algo_zero_returns_input_without_draws() -> None:
    x = _speech()
    rng = np.random.default_rng(5)
    y = rawboost(x, 0, rng)
    assert y is not x and y.dtype == np.float32 and np.array_equal(y, x)
    assert rng.random() == np.random.default_rng(5).random()
    assert rawboost(np.zeros(0, np.float32), 4, rng).shape == (0,)


def test_deterministic_given_generator_state() -> None:
    x = _speech(8000)
    for algo in range(1, 9):
        a = rawboost(x, algo, np.random.default_rng(11))
        b = rawboost(x, algo, np.random.default_rng(11))
        c = rawboost(x, algo, np.random.default_rng(12))
        assert np.array_equal(a, b), algo
        assert not np.array_equal(a, c), algo


# --------------------------------------------------------------------------- process (3)

def test_ssi_exact_fixed_snr() -> None:
    x = _speech()
    params = RawBoostParams(snr_range=[25.0, 25.0])
    for seed in range(5):
        y = rawboost(x, 3, np.random.default_rng(seed), params)
        assert _snr_db(x, y) == pytest.approx(25.0, abs=0.1)


def test_ssi_hits_the_drawn_snr() -> None:
    """Replay the documented draw order (noise, filter, SNR) to know each SNR drawn from [10, 40]."""
    x = _speech().astype(np.float64)
    params = RawBoostParams()
    snrs = []
    for seed in range(8):
        replay = np.random.default_rng(seed)
        replay.standard_normal(x.size)
        for _ in range(3):  # centres, widths, tap counts
            replay.random(params.n_bands)
        replay.random()  # gain
        drawn = 10.0 + 30.0 * replay.random()
        y = ssi_additive_noise(x, np.random.default_rng(seed), params)
        assert _snr_db(x, y) == pytest.approx(drawn, abs=0.1)
        snrs.append(drawn)
    assert min(snrs) >= 10 and max(snrs) <= 40 and max(snrs) - min(snrs) > 5


def test_ssi_noise_is_coloured_by_the_notch() -> None:
    x = _speech(4 * SR)
    params = RawBoostParams(n_bands=1, f_range=[4000, 4000], bw_range=[2000, 2000], coeff_range=[101, 101])
    y = rawboost(x, 3, np.random.default_rng(0), params)
    noise = y.astype(np.float64) - x
    assert _band_db(noise, 3300, 4700, ref=(2800, 5200)) < -25.0  # the notch band is empty


# --------------------------------------------------------------------------- process (2)

def test_isd_changes_the_drawn_fraction_of_samples() -> None:
    n, p, g_sd = 200_000, 10.0, 2.0
    rng = np.random.default_rng(0)
    x = rng.uniform(0.05, 0.3, n) * rng.choice([-1.0, 1.0], n)  # no zeros, |y| <= 0.9: no normalisation
    params = RawBoostParams(p=p, g_sd=g_sd)
    for seed in range(3):
        beta = p * np.random.default_rng(seed).random()  # first draw: the percentage
        y = isd_additive_noise(x, np.random.default_rng(seed), params)
        changed = y != x
        assert changed.sum() == int(np.floor(n * beta / 100))
        ratio = np.abs(y[changed] - x[changed]) / np.abs(x[changed])
        assert ratio.max() <= g_sd + 1e-12
        assert ratio.mean() == pytest.approx(g_sd / 4, rel=0.05)  # E|(2u1-1)(2u2-1)| = 1/4


def test_isd_fraction_is_uniform_up_to_p() -> None:
    n = 20_000
    x = np.random.default_rng(1).uniform(0.05, 0.3, n)
    params = RawBoostParams(p=10.0)
    fractions = [np.mean(isd_additive_noise(x, np.random.default_rng(s), params) != x) for s in range(60)]
    assert max(fractions) <= 0.10
    assert np.mean(fractions) == pytest.approx(0.05, abs=0.012)  # beta ~ U(0, P): P/2 on average


def test_isd_peak_normalises_above_one() -> None:
    x = np.full(1000, 0.9)
    y = isd_additive_noise(x, np.random.default_rng(0), RawBoostParams(p=100.0, g_sd=5.0))
    assert np.max(np.abs(y)) == pytest.approx(1.0)


# --------------------------------------------------------------------------- process (1)

def test_notch_filter_gain_and_band() -> None:
    b = notch_filter(np.array([2000.0]), np.array([800.0]), np.array([201]), -6.0)
    assert b.size == 201 and np.allclose(b, b[::-1])  # odd, linear phase
    h = np.abs(np.fft.rfft(b, 2 * GAIN_GRID))[:GAIN_GRID]
    f = np.arange(GAIN_GRID) * SR / (2 * GAIN_GRID)
    assert h.max() == pytest.approx(10 ** (-6 / 20), rel=1e-9)
    assert 20 * np.log10(h[(f > 1800) & (f < 2200)].max()) < -40
    assert 20 * np.log10(h[(f < 1200) | (f > 2800)].min()) > -6.5
    delta = notch_filter(np.array([3000.0]), np.array([200.0]), np.array([1]), 0.0)
    assert np.array_equal(delta, [1.0])
    with pytest.raises(SpkpeftError, match="odd"):
        notch_filter(np.array([3000.0]), np.array([200.0]), np.array([20]), 0.0)


def test_lnl_linear_notch_at_fixed_band() -> None:
    x = 0.1 * np.random.default_rng(0).standard_normal(4 * SR)
    params = RawBoostParams(n_bands=1, f_range=[3000, 3000], bw_range=[1000, 1000], coeff_range=[201, 201],
                            n_f=1, bias_range=[0, 0])
    y = lnl_convolutive_noise(x, np.random.default_rng(1), params)
    assert _band_db(y, 2650, 3350, ref=(2000, 4000)) < -30.0  # stop band
    f, p_in = welch(x, fs=SR, nperseg=1024)
    _, p_out = welch(y, fs=SR, nperseg=1024)
    passband = (f > 500) & (f < 2000)
    assert 10 * np.log10(p_out[passband].mean() / p_in[passband].mean()) == pytest.approx(0.0, abs=0.5)


def test_lnl_notch_sits_at_the_drawn_centre() -> None:
    """Random centres (first draw of the filter): the output spectrum's deepest band is there."""
    x = 0.1 * np.random.default_rng(0).standard_normal(4 * SR)
    params = RawBoostParams(n_bands=1, f_range=[500, 7000], bw_range=[600, 600], coeff_range=[151, 151],
                            n_f=1, bias_range=[0, 0])
    f, p_in = welch(x, fs=SR, nperseg=1024)
    for seed in range(3):
        fc = 500 + 6500 * np.random.default_rng(seed).random()
        y = lnl_convolutive_noise(x, np.random.default_rng(seed), params)
        _, p_out = welch(y, fs=SR, nperseg=1024)
        gain_db = 10 * np.log10(p_out / p_in)
        inside = np.abs(f - fc) < 150
        assert gain_db[inside].max() < -25, seed
        assert gain_db[(np.abs(f - fc) > 700) & (f > 200) & (f < 7800)].min() > -1.0, seed


def test_lnl_polynomial_with_biased_nonlinear_terms() -> None:
    """Sine of amplitude 1 through N_f = 3 with gain 0 dB and bias 10 dB (notch far away).

    x^2 = (1 - cos 2wt)/2 and x^3 = (3 sin wt - sin 3wt)/4, every non-linear term at
    g = 10^(-10/20): harmonic amplitudes relative to the fundamental (1 + 3g/4) are
    g/2 at 2f and g/4 at 3f (the mean is removed, the peak normalisation keeps ratios).
    """
    n = SR
    x = np.sin(2 * np.pi * 1000 * np.arange(n) / SR)
    params = RawBoostParams(n_bands=1, f_range=[6000, 6000], bw_range=[500, 500], coeff_range=[101, 101],
                            gain_range=[0, 0], bias_range=[10, 10], n_f=3)
    y = lnl_convolutive_noise(x, np.random.default_rng(0), params)
    assert abs(y.mean()) < 1e-12 and np.max(np.abs(y)) == pytest.approx(1.0)
    spec = np.abs(np.fft.rfft(y * np.hanning(n)))
    g = 10 ** (-10 / 20)
    fund = 1 + 0.75 * g
    assert 20 * np.log10(spec[2000] / spec[1000]) == pytest.approx(20 * np.log10(g / 2 / fund), abs=0.2)
    assert 20 * np.log10(spec[3000] / spec[1000]) == pytest.approx(20 * np.log10(g / 4 / fund), abs=0.2)
    assert spec[4000] / spec[1000] < 1e-3  # no fourth order


def test_parallel_algo_sums_the_two_processes() -> None:
    x = _speech().astype(np.float64)
    params = RawBoostParams()
    rng = np.random.default_rng(4)
    expected = lnl_convolutive_noise(x, rng, params) + isd_additive_noise(x, rng, params)
    peak = np.max(np.abs(expected))
    expected = expected / peak if peak > 1 else expected
    np.testing.assert_allclose(rawboost(x, 8, np.random.default_rng(4), params), expected, atol=1e-6)


def test_series_algo_applies_processes_in_order() -> None:
    x = _speech().astype(np.float64)
    params = RawBoostParams()
    rng = np.random.default_rng(9)
    expected = ssi_additive_noise(isd_additive_noise(lnl_convolutive_noise(x, rng, params), rng, params), rng, params)
    np.testing.assert_allclose(rawboost(x, 4, np.random.default_rng(9), params), expected, atol=1e-6)


# --------------------------------------------------------------------------- config

def test_defaults_are_the_published_ones() -> None:
    p = RawBoostParams()
    assert (p.n_bands, p.f_range, p.bw_range, p.coeff_range) == (5, [20.0, 8000.0], [100.0, 1000.0], [10, 100])
    assert (p.gain_range, p.bias_range, p.n_f) == ([0.0, 0.0], [5.0, 20.0], 5)
    assert (p.p, p.g_sd, p.snr_range) == (10.0, 2.0, [10.0, 40.0])
    cfg = AugmentConfig()
    assert cfg.rawboost == 0 and cfg.rawboost_params == p


@pytest.mark.parametrize("kwargs, pattern", [
    ({"rawboost": 9}, r"data\.augment\.rawboost must be an integer in 0\.\.8"),
    ({"rawboost": -1}, r"data\.augment\.rawboost must be an integer in 0\.\.8"),
    ({"rawboost": True}, r"data\.augment\.rawboost must be an integer"),
    ({"rawboost_params": {"nBands": 3}}, r"unknown key 'data\.augment\.rawboost_params\.nBands'.*n_bands"),
    ({"rawboost_params": {"snr_range": [40, 10]}}, r"data\.augment\.rawboost_params\.snr_range.*low <= high"),
    ({"rawboost_params": {"f_range": [8000, 20]}}, r"data\.augment\.rawboost_params\.f_range"),
    ({"rawboost_params": {"bw_range": [0, 100]}}, r"data\.augment\.rawboost_params\.bw_range.*>= 1"),
    ({"rawboost_params": {"coeff_range": [10.5, 20]}}, r"data\.augment\.rawboost_params\.coeff_range.*integers"),
    ({"rawboost_params": {"n_f": 0}}, r"data\.augment\.rawboost_params\.n_f must be an integer >= 1"),
    ({"rawboost_params": {"p": 150}}, r"data\.augment\.rawboost_params\.p must be a number in \[0, 100\]"),
    ({"rawboost_params": {"g_sd": -1}}, r"data\.augment\.rawboost_params\.g_sd"),
    ({"rawboost_params": 5}, r"data\.augment\.rawboost_params must be a mapping"),
])
def test_config_validation_errors(kwargs: dict, pattern: str) -> None:
    with pytest.raises(SpkpeftError, match=pattern):
        AugmentConfig(**kwargs)


def test_mapping_params_are_converted_and_nyquist_checked() -> None:
    cfg = AugmentConfig(rawboost=5, rawboost_params={"n_bands": 3, "snr_range": (5, 5)})
    assert isinstance(cfg.rawboost_params, RawBoostParams)
    assert cfg.rawboost_params.n_bands == 3 and cfg.rawboost_params.snr_range == [5.0, 5.0]
    with pytest.raises(SpkpeftError, match=r"data\.augment\.rawboost_params\.f_range high \(8000 Hz\).*4000 Hz"):
        Augmenter(AugmentConfig(rawboost=1), sample_rate=8000)
    Augmenter(AugmentConfig(), sample_rate=8000)  # RawBoost off: no check


def test_config_file_section_is_read() -> None:
    from spkpeft.tasks.config import config_from_dict, config_to_dict

    cfg = config_from_dict({"data": {"augment": {"rawboost": 4, "rawboost_params": {"p": 5, "coeff_range": [11, 51]}}}})
    aug = cfg.data.augment
    assert aug.rawboost == 4 and aug.rawboost_params.p == 5.0 and aug.rawboost_params.coeff_range == [11, 51]
    assert config_from_dict(config_to_dict(cfg)).data.augment == aug  # round trip of the resolved config
    with pytest.raises(SpkpeftError, match=r"unknown key 'data\.augment\.rawboost_params\.SNRmin'"):
        config_from_dict({"data": {"augment": {"rawboost_params": {"SNRmin": 5}}}})


# --------------------------------------------------------------------------- Augmenter

def test_augmenter_rawboost_only() -> None:
    cfg = AugmentConfig(rawboost=5)
    aug = Augmenter(cfg)
    assert aug.enabled and aug.kinds == []
    x = _speech(8000)
    y = aug(x, np.random.default_rng(3))
    assert y.dtype == np.float32 and y.shape == x.shape and not np.allclose(y, x, atol=1e-4)
    assert np.array_equal(y, rawboost(x, 5, np.random.default_rng(3), cfg.rawboost_params))
    assert np.array_equal(y, Augmenter(cfg)(x, np.random.default_rng(3)))


def test_augmenter_corpus_then_rawboost(tmp_path: Path) -> None:
    """The MUSAN option runs first (its draws first), RawBoost on its output."""
    noise = 0.05 * np.random.default_rng(0).standard_normal(12000)
    (tmp_path / "m" / "noise").mkdir(parents=True)
    sf.write(str(tmp_path / "m" / "noise" / "n.wav"), noise, SR, subtype="FLOAT")
    corpus = AugmentConfig(musan_dir=str(tmp_path / "m"), prob=1.0)
    both = AugmentConfig(musan_dir=str(tmp_path / "m"), prob=1.0, rawboost=3)
    x = _speech(8000)
    rng = np.random.default_rng(7)
    expected = rawboost(Augmenter(corpus)(x, rng), 3, rng, both.rawboost_params)
    np.testing.assert_allclose(Augmenter(both)(x, np.random.default_rng(7)), expected, atol=1e-6)
    # prob 0 switches the corpus off but RawBoost stays on (probability 1, no draw for prob)
    off = Augmenter(AugmentConfig(musan_dir=str(tmp_path / "m"), prob=0.0, rawboost=3))
    assert off.enabled
    assert np.array_equal(off(x, np.random.default_rng(7)), rawboost(x, 3, np.random.default_rng(7)))


def test_crop_dataset_applies_rawboost(tmp_path: Path) -> None:
    from spkpeft.data.crops import CropDataset

    path = tmp_path / "u.wav"
    sf.write(str(path), _speech(SR), SR, subtype="FLOAT")
    utts = [("u", str(path), 0)]
    plain, _ = CropDataset(utts, 1, 0.5)[(0, 123)]
    boosted, label = CropDataset(utts, 1, 0.5, augment=AugmentConfig(rawboost=4))[(0, 123)]
    again, _ = CropDataset(utts, 1, 0.5, augment=AugmentConfig(rawboost=4))[(0, 123)]
    assert label == 0 and boosted.shape == plain.shape == (8000,)
    assert not np.allclose(boosted.numpy(), plain.numpy(), atol=1e-4)
    assert np.array_equal(boosted.numpy(), again.numpy())


def test_fir_filter_is_aligned_to_the_group_delay() -> None:
    from spkpeft.data.rawboost import fir_filter

    b = notch_filter(np.array([5000.0]), np.array([1000.0]), np.array([31]), 0.0)
    impulse = np.zeros(300)
    impulse[100] = 1.0
    y = fir_filter(impulse, b)
    assert y.shape == impulse.shape and int(np.argmax(np.abs(y))) == 100
    np.testing.assert_allclose(y[85:116], b, atol=1e-12)  # the response centred on the impulse
    np.testing.assert_allclose(fir_filter(impulse, np.ones(1)), impulse)


def test_bandstop_fir_is_scipy_firwin() -> None:
    """The direct band-stop design equals scipy's firwin (the published recipe's filter)."""
    from scipy.signal import firwin

    from spkpeft.data.rawboost import bandstop_fir

    rng = np.random.default_rng(0)
    for taps in (1, 5, 21, 75, 101):
        f1 = float(rng.uniform(10, 6000))
        f2 = float(rng.uniform(f1 + 1, 7990))
        want = firwin(taps, [f1, f2], window="hamming", pass_zero="bandstop", fs=16000)
        np.testing.assert_allclose(bandstop_fir(taps, f1, f2, 16000), want, rtol=0, atol=1e-15)


def test_lnl_sums_the_filtered_powers_as_the_formula_says() -> None:
    """``sum_j b_j * x^j`` with one inverse FFT equals the term-by-term convolution sum."""
    from spkpeft.data.rawboost import fir_filter, random_notch_filter

    x = 0.3 * np.random.default_rng(2).standard_normal(4000)
    params = RawBoostParams()
    got = lnl_convolutive_noise(x, np.random.default_rng(5), params)
    rng = np.random.default_rng(5)
    g_lo, g_hi = params.gain_range
    b_lo, b_hi = params.bias_range
    y = sum(fir_filter(x ** j, random_notch_filter(rng, params, g_lo, g_hi) if j == 1
                       else random_notch_filter(rng, params, g_lo - b_lo, g_hi - b_hi))
            for j in range(1, params.n_f + 1))
    y = y - y.mean()
    want = y / np.max(np.abs(y)) if np.max(np.abs(y)) > 1 else y
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
