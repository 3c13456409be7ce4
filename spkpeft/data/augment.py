"""On-the-fly training augmentation (MUSAN noise / music / babble, RIR reverb) and speed perturbation.

Configured by the ``data.augment:`` section (:class:`AugmentConfig`); off by
default and in the mini recipe.  Every random draw comes from the
``numpy.random.Generator`` passed to :meth:`Augmenter.__call__`, so the output
is a deterministic function of the input and the generator state.

Additive kinds (noise, music, babble).  A noise signal ``n`` of the input's
length ``N`` is taken from a random MUSAN file (a random ``N``-sample segment,
or the whole file tiled when it is shorter than ``N``) and added at a
signal-to-noise ratio drawn uniformly from the configured range::

    y = x + g n,   g = sqrt(P_x / (P_n 10^(SNR / 10))),   P_s = mean(s^2)

so that ``10 log10(P_x / P_{g n}) = SNR`` exactly.  If ``P_n = 0`` nothing is
added (``y = x``); if ``P_x = 0`` then ``g = 0``.  Babble sums ``K`` segments
from distinct (when enough files exist) ``speech/`` files, ``K`` drawn
uniformly from ``babble_speakers`` inclusive, and scales the *sum* to one
drawn SNR.

Reverberation.  A random RIR ``h`` is normalised to unit energy
``h <- h / sqrt(sum h^2)`` and convolved with the input; the output is
aligned to the direct path ``p = argmax |h|`` and rescaled to the dry power::

    r = (x * h)[p : p + N],   y = r sqrt(P_x / P_r)

(``y = r`` if ``P_r = 0``).  A delta RIR therefore returns the input.

The output is float32 of the input's length and is *not* clipped: additive
noise can push samples slightly outside ``[-1, 1]``, which the feature
extractor handles (clipping would add distortion).

Speed perturbation (Kaldi / WeSpeaker convention): playing the signal
``factor`` times faster by resampling, which shifts pitch and formants too, so
each speed of a speaker counts as a separate class, see :func:`speed_label`.

RawBoost (:mod:`spkpeft.data.rawboost`, Tak et al., ICASSP 2022).  With
``rawboost`` set to an algorithm number 1..8 every training crop is boosted
(probability 1, as in the reference recipe, independent of ``prob``).  The
order is: the MUSAN / RIR option first (drawn with ``prob`` as above, when a
corpus is configured), then RawBoost on its output, i.e. the acoustic
environment comes before the channel / transmission distortions RawBoost
models.  RawBoost draws from the same generator after the MUSAN / RIR draws.
With ``rawboost: 0`` (the default) nothing changes and nothing is drawn for it.

Audio files are read on demand (MUSAN and RIR corpora are large): directories
are scanned once for ``.wav`` files (sorted paths, symlinks followed), each
file's header is read the first time it is drawn and memoised.  A file whose
sample rate differs from ``sample_rate`` raises a :class:`SpkpeftError` naming
it at that point.  Multi-channel files contribute their first channel.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import fftconvolve, resample_poly

from spkpeft.io.audio import SAMPLE_RATE, audio_info
from spkpeft.errors import SpkpeftError, file_error
from spkpeft.data.rawboost import RawBoostParams, check_algo, params_from, rawboost

SPEEDS: tuple[float, ...] = (1.0, 0.9, 1.1)
"""Speed factors; index 0 (unperturbed) keeps the original speaker labels."""

MUSAN_KINDS: dict[str, str] = {"noise": "noise", "music": "music", "babble": "speech"}
"""Additive augmentation kind -> MUSAN subdirectory it draws from."""

_KEY = "data.augment"


@dataclass
class AugmentConfig:
    """The ``data.augment:`` config section (all augmentation off by default).

    ``musan_dir``: MUSAN root holding ``noise/``, ``music/`` and/or
    ``speech/`` (each searched recursively for ``.wav``); a missing
    subdirectory disables that kind; ``""`` = no additive augmentation.
    ``rir_dir``: directory of RIR ``.wav`` files (recursive), e.g.
    ``RIRS_NOISES/simulated_rirs``; ``""`` = no reverberation.
    ``prob``: probability that an utterance is augmented at all.
    ``*_snr``: ``[low, high]`` SNR ranges in dB, drawn uniformly.
    ``babble_speakers``: ``[low, high]`` number of speech files summed (inclusive).
    ``speed_perturb``: add 0.9x / 1.1x copies as new speakers (3x classes).
    ``rawboost``: RawBoost algorithm applied to every crop, 0 = off, 1..8 as in
    :mod:`spkpeft.data.rawboost` (e.g. 5 = convolutive then impulsive noise).
    ``rawboost_params``: its parameters (:class:`~spkpeft.data.rawboost.RawBoostParams`,
    defaults as published); a mapping given in Python is converted and checked.
    """

    musan_dir: str = ""
    rir_dir: str = ""
    prob: float = 0.6
    noise_snr: list[float] = field(default_factory=lambda: [0.0, 15.0])
    music_snr: list[float] = field(default_factory=lambda: [5.0, 15.0])
    babble_snr: list[float] = field(default_factory=lambda: [13.0, 20.0])
    babble_speakers: list[int] = field(default_factory=lambda: [3, 7])
    speed_perturb: bool = False
    rawboost: int = 0
    rawboost_params: RawBoostParams = field(default_factory=RawBoostParams)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check types and ranges, normalising ranges to lists; raise :class:`SpkpeftError` naming the key."""
        if not isinstance(self.prob, (int, float)) or isinstance(self.prob, bool) or not 0.0 <= self.prob <= 1.0:
            raise SpkpeftError(f"{_KEY}.prob must be a number in [0, 1], got {self.prob!r}")
        for name in ("musan_dir", "rir_dir"):
            if not isinstance(getattr(self, name), (str, os.PathLike)):
                raise SpkpeftError(f"{_KEY}.{name} must be a path string, got {getattr(self, name)!r}")
        for name in ("noise_snr", "music_snr", "babble_snr"):
            setattr(self, name, _check_range(name, getattr(self, name), integer=False))
        self.babble_speakers = _check_range("babble_speakers", self.babble_speakers, integer=True)
        if self.babble_speakers[0] < 1:
            raise SpkpeftError(f"{_KEY}.babble_speakers must be >= 1, got {self.babble_speakers}")
        if not isinstance(self.speed_perturb, bool):
            raise SpkpeftError(f"{_KEY}.speed_perturb must be true or false, got {self.speed_perturb!r}")
        check_algo(self.rawboost)
        self.rawboost_params = params_from(self.rawboost_params)


def _check_range(name: str, value: object, integer: bool) -> list:
    """``[low, high]`` with ``low <= high`` (finite numbers, or ints when ``integer``)."""
    kind = "integers" if integer else "numbers"
    ok = isinstance(value, (list, tuple)) and len(value) == 2
    ok = ok and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ok = ok and all(math.isfinite(v) and (not integer or float(v).is_integer()) for v in value)
    if not ok or value[0] > value[1]:
        raise SpkpeftError(f"{_KEY}.{name} must be [low, high] with low <= high ({kind}), got {value!r}")
    cast = int if integer else float
    return [cast(value[0]), cast(value[1])]


def num_classes_multiplier(cfg: AugmentConfig) -> int:
    """Classifier size factor: ``len(SPEEDS)`` (3) with speed perturbation, else 1."""
    return len(SPEEDS) if cfg.speed_perturb else 1


def speed_label(spk_index: int, speed_index: int, n_speakers: int) -> int:
    """Class of speaker ``spk_index`` at ``SPEEDS[speed_index]``: ``spk_index + speed_index * n_speakers``.

    Speed index 0 (factor 1.0) keeps the original label; labels lie in
    ``[0, len(SPEEDS) * n_speakers)``.
    """
    if not 0 <= spk_index < n_speakers:
        raise SpkpeftError(f"speaker index {spk_index} is outside [0, {n_speakers})")
    if not 0 <= speed_index < len(SPEEDS):
        raise SpkpeftError(f"speed index {speed_index} is outside [0, {len(SPEEDS)})")
    return spk_index + speed_index * n_speakers


def speed_perturb(wav: np.ndarray, factor: float) -> np.ndarray:
    """Play ``wav`` ``factor`` times faster (Kaldi/sox ``speed``): pitch and tempo both change.

    Resampling by ``up / down`` with ``factor = down / up`` (reduced fraction,
    denominator <= 100): the output has ``ceil(N / factor)`` samples, so
    ``factor = 1.1`` (faster) gives fewer samples (``up/down = 10/11``) and
    ``0.9`` (slower) more (``10/9``).  ``factor = 1`` returns a copy.
    """
    if not isinstance(factor, (int, float)) or not math.isfinite(factor) or factor <= 0:
        raise SpkpeftError(f"speed factor must be a positive number, got {factor!r}")
    x = np.asarray(wav, dtype=np.float32)
    frac = Fraction(float(factor)).limit_denominator(100)
    if frac == 1 or x.size == 0:
        return x.copy()
    y = resample_poly(x.astype(np.float64), up=frac.denominator, down=frac.numerator)
    return y.astype(np.float32)


def _find_wavs(directory: Path) -> list[Path]:
    """Sorted ``.wav`` files (any case) below ``directory``, following symlinks."""
    found = []
    for root, _dirs, files in os.walk(directory, followlinks=True):
        found.extend(Path(root) / f for f in files if f.lower().endswith(".wav"))
    return sorted(found, key=str)


def _scan_dir(directory: Path, what: str) -> list[Path]:
    """``.wav`` files of an existing, non-empty directory; else a :class:`SpkpeftError` naming it."""
    if not directory.is_dir():
        raise file_error(directory, f"{what} directory does not exist")
    wavs = _find_wavs(directory)
    if not wavs:
        raise file_error(directory, f"{what} directory contains no .wav files")
    return wavs


def _power(x: np.ndarray) -> float:
    """Mean power ``P_x = mean(x^2)`` (0 for an empty signal)."""
    return float(np.mean(np.square(x))) if x.size else 0.0


def add_at_snr(x: np.ndarray, n: np.ndarray, snr_db: float) -> np.ndarray:
    """``x + n sqrt(P_x / (P_n 10^(SNR/10)))`` in float64; ``x`` unchanged when ``P_n = 0``."""
    p_n = _power(n)
    if p_n <= 0.0:
        return x.copy()
    return x + n * math.sqrt(_power(x) / (p_n * 10.0 ** (snr_db / 10.0)))


def reverberate(x: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """``r = (x * h)[p : p + N]`` with ``h`` at unit energy and ``p = argmax |h|``, rescaled to ``P_x``."""
    energy = float(np.sum(np.square(rir)))
    if energy <= 0.0 or x.size == 0:
        return x.copy()
    h = rir / math.sqrt(energy)
    p = int(np.argmax(np.abs(h)))
    r = fftconvolve(x, h, mode="full")[p:p + x.size]
    p_r = _power(r)
    return r * math.sqrt(_power(x) / p_r) if p_r > 0.0 else r


class Augmenter:
    """Random additive noise / reverberation and RawBoost for training waveforms (see module docstring)."""

    def __init__(self, cfg: AugmentConfig, sample_rate: int = SAMPLE_RATE) -> None:
        """Validate ``cfg`` (and RawBoost's band range against ``sample_rate``) and scan its directories once."""
        cfg.validate()
        if cfg.rawboost:
            cfg.rawboost_params.check_sample_rate(sample_rate)
        self.cfg = cfg
        self.sample_rate = sample_rate
        self._files: dict[str, list[Path]] = {}
        self._frames: dict[Path, int] = {}
        if cfg.musan_dir:
            self._scan_musan(Path(cfg.musan_dir))
        if cfg.rir_dir:
            self._files["reverb"] = _scan_dir(Path(cfg.rir_dir), "data.augment.rir_dir")

    def _scan_musan(self, root: Path) -> None:
        """Register each present MUSAN subdirectory; at least one must exist."""
        if not root.is_dir():
            raise file_error(root, "data.augment.musan_dir directory does not exist")
        for kind, sub in MUSAN_KINDS.items():
            if (root / sub).is_dir():
                self._files[kind] = _scan_dir(root / sub, f"MUSAN {sub}")
        if not self._files:
            raise file_error(root, "data.augment.musan_dir has none of the subdirectories noise/, music/, speech/")

    @property
    def kinds(self) -> list[str]:
        """Available augmentation kinds, in the order noise, music, babble, reverb."""
        return [k for k in ("noise", "music", "babble", "reverb") if k in self._files]

    @property
    def corpus_enabled(self) -> bool:
        """True when some MUSAN / RIR kind is available and ``prob > 0``."""
        return bool(self._files) and self.cfg.prob > 0.0

    @property
    def enabled(self) -> bool:
        """True when the MUSAN / RIR augmentation or RawBoost (``rawboost != 0``) is on."""
        return self.corpus_enabled or self.cfg.rawboost != 0

    def __call__(self, wav: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Augmented float32 copy of the 1-D ``wav`` (same length).

        Disabled: an unchanged copy and no draws from ``rng``.  With a MUSAN /
        RIR corpus one uniform draw decides (``< prob``) whether to apply it,
        then one kind is chosen uniformly among :attr:`kinds`.  With
        ``rawboost != 0`` RawBoost is then applied to the result (always).
        """
        x = np.asarray(wav, dtype=np.float32)
        if x.ndim != 1:
            raise SpkpeftError(f"augmentation expects a 1-D waveform, got shape {x.shape}")
        if not self.enabled:
            return x.copy()
        y = x.astype(np.float64)
        changed = False
        if self.corpus_enabled and rng.random() < self.cfg.prob and x.size > 0:
            kind = self.kinds[int(rng.integers(len(self.kinds)))]
            if kind == "reverb":
                y = reverberate(y, self._read_whole(self._pick("reverb", rng)))
            else:
                y = self._add_noise(kind, y, rng)
            changed = True
        if self.cfg.rawboost and x.size > 0:
            y = rawboost(y, self.cfg.rawboost, rng, self.cfg.rawboost_params, self.sample_rate)
            changed = True
        if not changed:
            return x.copy()
        return np.nan_to_num(y, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)

    def _add_noise(self, kind: str, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Add a noise / music / babble signal at an SNR drawn from the kind's range."""
        if kind == "babble":
            low, high = self.cfg.babble_speakers
            count = int(rng.integers(low, high + 1))
            files = self._files["babble"]
            idx = rng.choice(len(files), size=count, replace=count > len(files))
            n = sum(self._segment(files[int(i)], x.size, rng) for i in idx)
        else:
            n = self._segment(self._pick(kind, rng), x.size, rng)
        low, high = getattr(self.cfg, f"{kind}_snr")
        return add_at_snr(x, n, float(rng.uniform(low, high)))

    def _pick(self, kind: str, rng: np.random.Generator) -> Path:
        """A uniformly drawn file of ``kind``."""
        files = self._files[kind]
        return files[int(rng.integers(len(files)))]

    def _num_frames(self, path: Path) -> int:
        """Memoised frame count; checks the sample rate and that the file holds samples."""
        if path not in self._frames:
            info = audio_info(path)
            if info.samplerate != self.sample_rate:
                raise file_error(path, f"expected sample rate {self.sample_rate} Hz, found {info.samplerate} Hz")
            if info.frames <= 0:
                raise file_error(path, "audio file holds no samples")
            self._frames[path] = int(info.frames)
        return self._frames[path]

    def _read(self, path: Path, start: int, frames: int) -> np.ndarray:
        """``frames`` samples of the first channel from ``start``, float64."""
        try:
            data, _ = sf.read(str(path), start=start, frames=frames, dtype="float64", always_2d=True)
        except Exception as err:  # soundfile raises RuntimeError / LibsndfileError
            raise file_error(path, f"cannot decode audio ({err})") from None
        return data[:, 0]

    def _read_whole(self, path: Path) -> np.ndarray:
        """The whole first channel of ``path``."""
        return self._read(path, 0, self._num_frames(path))

    def _segment(self, path: Path, length: int, rng: np.random.Generator) -> np.ndarray:
        """A random ``length``-sample segment of ``path``, tiling the whole file if it is shorter."""
        total = self._num_frames(path)
        if total >= length:
            start = int(rng.integers(total - length + 1))
            seg = self._read(path, start, length)
        else:
            seg = self._read(path, 0, total)
        if seg.size == 0:
            raise file_error(path, "audio file holds no samples")
        return np.resize(seg, length)  # repeats the samples cyclically when shorter
