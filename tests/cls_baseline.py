"""Test helper: an MFCC-statistics + logistic-regression baseline for classification data directories.

A data directory holds ``wav.scp`` (``<utt> <path>``) and ``utt2label``
(``<utt> <label>``).  Each utterance becomes the mean and standard deviation
over frames of 20 MFCCs (:func:`mfcc_features.mfcc`, c0 included: 40
numbers); the features are standardised with the training set's mean and
standard deviation and a multinomial :class:`sklearn.linear_model.LogisticRegression`
(L2, C = 1, lbfgs) is trained on them.  Everything is deterministic.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from spkpeft.io.audio import read_audio
from spkpeft.io.datadir import read_key_value
from mfcc_features import mfcc


def mfcc_mean_std(x: np.ndarray, n_ceps: int = 20) -> np.ndarray:
    """``[mean, std]`` over frames of ``n_ceps`` MFCCs (c0 included)."""
    c = mfcc(x, n_ceps=n_ceps).astype(np.float64)
    return np.concatenate([c.mean(axis=0), c.std(axis=0)])


def load_features(data_dir: str | Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """``(utt ids, features (n, 40), labels (n,))`` of a data directory, in ``wav.scp`` order."""
    data_dir = Path(data_dir)
    wav = read_key_value(data_dir / "wav.scp", rest_of_line=True)
    labels = read_key_value(data_dir / "utt2label")
    if set(wav) != set(labels):
        raise ValueError(f"{data_dir}: wav.scp and utt2label list different utterances")
    utts = list(wav)
    feats = np.stack([mfcc_mean_std(read_audio(wav[u])) for u in utts])
    return utts, feats, np.array([labels[u] for u in utts])


def mfcc_logreg_baseline(train_dir: str | Path, test_dir: str | Path) -> float:
    """Accuracy in percent on ``test_dir`` of the MFCC mean/std + logistic regression trained on ``train_dir``."""
    _, x_train, y_train = load_features(train_dir)
    _, x_test, y_test = load_features(test_dir)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000))
    model.fit(x_train, y_train)
    return 100.0 * float(np.mean(model.predict(x_test) == y_test))
