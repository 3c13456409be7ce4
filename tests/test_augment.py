"""On-the-fly augmentation on a tiny synthetic MUSAN / RIR tree."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from spkpeft.data.augment import (
    SPEEDS,
    AugmentConfig,
    Augmenter,
    num_classes_multiplier,
    speed_label,
    speed_perturb,
)
from spkpeft.errors import SpkpeftError

SR = 16000


def _wav(path: Path, x: np.ndarray, sr: int = SR) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x, sr, subtype="FLOAT")
    return path


def _noise(seed: int, n: int, amp: float = 0.05) -> np.ndarray:
    return amp * np.random.default_rng(seed).standard_normal(n)


def _speech(n: int = 8000) -> np.ndarray:
    t = np.arange(n) / SR
    return (0.1 * np.sin(2 * np.pi * 220 * t) + 0.05 * np.sin(2 * np.pi * 1330 * t)).astype(np.float32)


def _musan(root: Path, kinds: tuple[str, ...] = ("noise", "music", "speech")) -> Path:
    """Fake MUSAN: two files per subdirectory, one shorter than the test utterance (tiling)."""
    for k, sub in enumerate(kinds):
        _wav(root / sub / "a" / f"{sub}-0001.wav", _noise(10 * k, 12000))
        _wav(root / sub / "b" / f"{sub}-0002.wav", _noise(10 * k + 1, 3000, amp=0.2))
    return root


def _snr_db(x: np.ndarray, y: np.ndarray) -> float:
    d = y.astype(np.float64) - x.astype(np.float64)
    return 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean(d ** 2))


def test_disabled_returns_copy_without_draws() -> None:
    aug = Augmenter(AugmentConfig())
    x = _speech()
    rng = np.random.default_rng(0)
    y = aug(x, rng)
    assert not aug.enabled and aug.kinds == []
    assert y is not x and y.dtype == np.float32 and np.array_equal(y, x)
    assert rng.random() == np.random.default_rng(0).random()


@pytest.mark.parametrize("kind, sub", [("noise", "noise"), ("music", "music"), ("babble", "speech")])
def test_exact_snr_each_kind(tmp_path: Path, kind: str, sub: str) -> None:
    root = _musan(tmp_path / "musan", kinds=(sub,))
    cfg = AugmentConfig(musan_dir=str(root), prob=1.0, **{f"{kind}_snr": [10, 10]})
    aug = Augmenter(cfg)
    assert aug.kinds == [kind] and aug.enabled
    x = _speech()
    for seed in range(4):  # covers both the long (segment) and short (tiled) file
        y = aug(x, np.random.default_rng(seed))
        assert y.shape == x.shape and y.dtype == np.float32 and np.isfinite(y).all()
        assert _snr_db(x, y) == pytest.approx(10.0, abs=1e-3)


def test_snr_within_range_and_all_kinds_used(tmp_path: Path) -> None:
    aug = Augmenter(AugmentConfig(musan_dir=str(_musan(tmp_path / "m", ("noise",))), prob=1.0))
    x = _speech()
    snrs = [_snr_db(x, aug(x, np.random.default_rng(s))) for s in range(20)]
    assert min(snrs) >= -1e-3 and max(snrs) <= 15 + 1e-3 and max(snrs) - min(snrs) > 3


def test_reverb_delta_rir_returns_input(tmp_path: Path) -> None:
    rir = np.zeros(400)
    rir[37] = 0.5
    _wav(tmp_path / "rirs" / "room1" / "delta.wav", rir)
    aug = Augmenter(AugmentConfig(rir_dir=str(tmp_path / "rirs"), prob=1.0))
    assert aug.kinds == ["reverb"]
    x = _speech()
    y = aug(x, np.random.default_rng(1))
    np.testing.assert_allclose(y, x, atol=1e-6)


def test_reverb_keeps_length_and_power(tmp_path: Path) -> None:
    t = np.arange(2000) / SR
    rir = np.random.default_rng(3).standard_normal(2000) * np.exp(-6.91 * t / 0.1)
    rir[20] = 3.0  # direct path
    _wav(tmp_path / "rirs" / "r.wav", rir)
    aug = Augmenter(AugmentConfig(rir_dir=str(tmp_path / "rirs"), prob=1.0))
    x = _speech()
    y = aug(x, np.random.default_rng(0))
    assert y.shape == x.shape and np.isfinite(y).all() and not np.allclose(y, x)
    assert np.mean(y.astype(np.float64) ** 2) == pytest.approx(np.mean(x.astype(np.float64) ** 2), rel=1e-4)


def test_deterministic_given_rng(tmp_path: Path) -> None:
    _wav(tmp_path / "rirs" / "r.wav", np.r_[1.0, 0.5, 0.25])
    cfg = AugmentConfig(musan_dir=str(_musan(tmp_path / "m")), rir_dir=str(tmp_path / "rirs"), prob=0.8)
    aug = Augmenter(cfg)
    assert aug.kinds == ["noise", "music", "babble", "reverb"]
    x = _speech()
    outs = [aug(x, np.random.default_rng(s)) for s in range(12)]
    again = [Augmenter(cfg)(x, np.random.default_rng(s)) for s in range(12)]
    assert all(np.array_equal(a, b) for a, b in zip(outs, again))
    assert sum(np.array_equal(o, x) for o in outs) < 12  # some utterances were augmented


def test_prob_zero_is_disabled(tmp_path: Path) -> None:
    aug = Augmenter(AugmentConfig(musan_dir=str(_musan(tmp_path / "m")), prob=0.0))
    x = _speech()
    assert not aug.enabled and np.array_equal(aug(x, np.random.default_rng(0)), x)


def test_missing_and_empty_dirs_named(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_musan"
    with pytest.raises(SpkpeftError, match="no_such_musan"):
        Augmenter(AugmentConfig(musan_dir=str(missing)))
    (tmp_path / "empty_rirs").mkdir()
    with pytest.raises(SpkpeftError, match="empty_rirs.*no .wav"):
        Augmenter(AugmentConfig(rir_dir=str(tmp_path / "empty_rirs")))
    (tmp_path / "m2" / "noise").mkdir(parents=True)
    with pytest.raises(SpkpeftError, match="m2/noise"):
        Augmenter(AugmentConfig(musan_dir=str(tmp_path / "m2")))
    (tmp_path / "m3" / "other").mkdir(parents=True)
    with pytest.raises(SpkpeftError, match="m3.*noise/, music/, speech/"):
        Augmenter(AugmentConfig(musan_dir=str(tmp_path / "m3")))


def test_wrong_sample_rate_names_file(tmp_path: Path) -> None:
    bad = _wav(tmp_path / "m" / "noise" / "noise-8k.wav", _noise(0, 4000), sr=8000)
    aug = Augmenter(AugmentConfig(musan_dir=str(tmp_path / "m"), prob=1.0))
    with pytest.raises(SpkpeftError, match=re.escape(str(bad))) as err:
        aug(_speech(), np.random.default_rng(0))
    assert "8000 Hz" in str(err.value)


def test_config_validation() -> None:
    with pytest.raises(SpkpeftError, match="data.augment.noise_snr"):
        AugmentConfig(noise_snr=[15, 0])
    with pytest.raises(SpkpeftError, match="data.augment.prob"):
        AugmentConfig(prob=1.5)
    with pytest.raises(SpkpeftError, match="data.augment.babble_speakers"):
        AugmentConfig(babble_speakers=[2.5, 4])
    assert AugmentConfig(music_snr=(5, 10)).music_snr == [5.0, 10.0]


def test_speed_perturb_lengths_and_direction() -> None:
    n = 16000
    x = np.sin(2 * np.pi * 1000 * np.arange(n) / SR).astype(np.float32)
    assert np.array_equal(speed_perturb(x, 1.0), x)
    slow, fast = speed_perturb(x, 0.9), speed_perturb(x, 1.1)
    assert len(slow) == int(np.ceil(n / 0.9)) and len(fast) == int(np.ceil(n / 1.1))
    assert slow.dtype == fast.dtype == np.float32

    def peak_hz(y: np.ndarray) -> float:
        return float(np.argmax(np.abs(np.fft.rfft(y))) * SR / len(y))

    assert peak_hz(fast) == pytest.approx(1100, abs=2) and peak_hz(slow) == pytest.approx(900, abs=2)
    with pytest.raises(SpkpeftError):
        speed_perturb(x, 0.0)


def test_speed_labels_and_classes() -> None:
    assert SPEEDS == (1.0, 0.9, 1.1)
    n = 5
    labels = {speed_label(s, k, n) for s in range(n) for k in range(len(SPEEDS))}
    assert labels == set(range(3 * n)) and speed_label(2, 0, n) == 2 and speed_label(2, 2, n) == 12
    assert num_classes_multiplier(AugmentConfig(speed_perturb=True)) == 3
    assert num_classes_multiplier(AugmentConfig()) == 1
    with pytest.raises(SpkpeftError):
        speed_label(5, 0, n)
    with pytest.raises(SpkpeftError):
        speed_label(0, 3, n)
