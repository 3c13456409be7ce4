"""Test helper: an LFCC-statistics + logistic-regression countermeasure baseline for ASVspoof 2019 LA trees.

Each utterance becomes the mean and standard deviation over frames of 20
LFCCs: the power spectrum of :func:`mfcc_features.power_spectrum` (25 ms
Hamming frames, 10 ms hop, pre-emphasis 0.97, 512-point FFT), 20 triangular
filters equally spaced in *linear* frequency over 0-8 kHz, the log of their
energies and an orthonormal DCT-II (c0 included): 40 numbers.  The features
are standardised on the training set and a :class:`sklearn.linear_model.LogisticRegression`
(L2, C = 1, lbfgs) is trained on ``train``; its bona fide log odds are the
scores and the EER (bona fide positive) is measured on another set.
Everything is deterministic.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy.fft import dct
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from spkpeft.eval.metrics import compute_eer
from spkpeft.io.audio import read_audio
from mfcc_features import power_spectrum

PROTOCOLS = {"train": "train.trn", "dev": "dev.trl", "eval": "eval.trl"}


@lru_cache(maxsize=4)
def linear_filterbank(n_filters: int = 20, n_bins: int = 257) -> np.ndarray:
    """Triangular filters ``(n_filters, n_bins)`` with edges equally spaced over the bins."""
    edges = np.linspace(0.0, n_bins - 1, n_filters + 2)
    k = np.arange(n_bins)[None, :]
    left, centre, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    return np.maximum(0.0, np.minimum((k - left) / (centre - left), (right - k) / (right - centre)))


def lfcc(x: np.ndarray, n_filters: int = 20, n_ceps: int = 20) -> np.ndarray:
    """LFCCs ``(frames, n_ceps)`` (see module docstring)."""
    power = power_spectrum(x)
    energies = power @ linear_filterbank(n_filters, power.shape[1]).T
    return dct(np.log(np.maximum(energies, 1e-10)), type=2, norm="ortho", axis=1)[:, :n_ceps]


def lfcc_mean_std(x: np.ndarray) -> np.ndarray:
    c = lfcc(x)
    return np.concatenate([c.mean(axis=0), c.std(axis=0)])


def read_protocol(root: str | Path, set_name: str) -> list[tuple[str, str, str, str]]:
    """``(speaker, utt, attack, key)`` per line of the set's CM protocol."""
    path = Path(root) / "LA" / "ASVspoof2019_LA_cm_protocols" / f"ASVspoof2019.LA.cm.{PROTOCOLS[set_name]}.txt"
    rows = []
    for line in path.read_text().splitlines():
        spk, utt, _, attack, key = line.split()
        rows.append((spk, utt, attack, key))
    return rows


def flac_path(root: str | Path, set_name: str, utt: str) -> Path:
    return Path(root) / "LA" / f"ASVspoof2019_LA_{set_name}" / "flac" / f"{utt}.flac"


def load_features(root: str | Path, set_name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(features (n, 40), is_bonafide (n,))`` in protocol order."""
    rows = read_protocol(root, set_name)
    feats = np.stack([lfcc_mean_std(read_audio(flac_path(root, set_name, utt))) for _, utt, _, _ in rows])
    return feats, np.array([key == "bonafide" for *_, key in rows])


def lfcc_logreg_baseline_eer(root: str | Path, test_set: str = "eval") -> float:
    """EER in percent on ``test_set`` of the LFCC mean/std + logistic regression trained on ``train``."""
    x_train, y_train = load_features(root, "train")
    x_test, y_test = load_features(root, test_set)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000))
    model.fit(x_train, y_train)
    return 100.0 * compute_eer(model.decision_function(x_test), y_test)
