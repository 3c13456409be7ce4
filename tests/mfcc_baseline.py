"""Untrained MFCC-statistics cosine baseline for speaker verification.

Each utterance becomes ``v = [mean_t c_t, std_t c_t]`` over its MFCC frames
``c_t`` (coefficients 1..n_ceps-1; ``c_0``, the log energy, is dropped), and a
trial ``(a, b)`` is scored by the cosine ``v_a . v_b / (|v_a| |v_b|)``.
Nothing is trained, so the score mixes speaker, channel and content.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from spkpeft.io.audio import read_audio
from spkpeft.errors import file_error
from mfcc_features import deltas, mfcc


def mfcc_stats(x: np.ndarray, sr: int = 16000, n_ceps: int = 20, with_deltas: bool = False) -> np.ndarray:
    """Utterance vector ``[mean, std]`` of MFCCs ``c_1..c_{n_ceps-1}`` (plus delta mean/std if asked)."""
    feats = mfcc(x, sr=sr, n_ceps=n_ceps)[:, 1:]
    if with_deltas:
        feats = np.concatenate([feats, deltas(feats)], axis=1)
    return np.concatenate([feats.mean(axis=0), feats.std(axis=0)]).astype(np.float64)


def embed_files(paths: Sequence[str | Path], **kwargs: object) -> np.ndarray:
    """``(len(paths), dim)`` matrix of :func:`mfcc_stats` vectors for audio files."""
    return np.stack([mfcc_stats(read_audio(p), **kwargs) for p in paths])  # type: ignore[arg-type]


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two ``(n, dim)`` matrices."""
    num = np.sum(a * b, axis=1)
    return num / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)


def mfcc_baseline_scores(trials: Sequence[tuple[str, str]], utt2wav: Mapping[str, str | Path],
                         **kwargs: object) -> list[float]:
    """Cosine score of MFCC statistics for each ``(utt_a, utt_b)`` trial; ``utt2wav`` maps ids to files."""
    utts = sorted({u for pair in trials for u in pair})
    index = {u: i for i, u in enumerate(utts)}
    emb = embed_files([utt2wav[u] for u in utts], **kwargs)
    a = emb[[index[u] for u, _ in trials]]
    b = emb[[index[v] for _, v in trials]]
    return cosine(a, b).tolist()


def read_veri_trials(path: str | Path) -> list[tuple[int, str, str]]:
    """Parse a VoxCeleb trial list: lines ``<1|0> <spk/sess/utt.wav> <spk/sess/utt.wav>``."""
    trials = []
    for no, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 3 or fields[0] not in ("0", "1"):
            raise file_error(path, "expected '<1|0> <utt_a> <utt_b>'", line=no)
        trials.append((int(fields[0]), fields[1], fields[2]))
    return trials


def score_veri_test(trial_path: str | Path, wav_dir: str | Path, **kwargs: object) -> tuple[list[int], list[float]]:
    """Labels and baseline scores for a VoxCeleb trial list whose paths are relative to ``wav_dir``."""
    trials = read_veri_trials(trial_path)
    utt2wav = {u: Path(wav_dir) / u for _, a, b in trials for u in (a, b)}
    return [t[0] for t in trials], mfcc_baseline_scores([(a, b) for _, a, b in trials], utt2wav, **kwargs)
