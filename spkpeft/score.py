"""Cosine scoring of speaker embeddings stored as Kaldi ark/scp.

score(e1, e2) = <x1, x2> / (|x1| |x2|),  x = e - mu,
where mu is the mean of the training-set embeddings when mean subtraction is
on (it removes the dominant direction shared by all embeddings) and 0 otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping, Sequence

import kaldiio
import numpy as np

from spkpeft.errors import SpkpeftError, file_error


def load_embeddings(scp_paths: Iterable[str | Path]) -> dict[str, np.ndarray]:
    """Read one or more Kaldi ``.scp`` files of vectors into ``{utt: float64 vector}``."""
    table: dict[str, np.ndarray] = {}
    for scp in scp_paths:
        scp = Path(scp)
        if not scp.is_file():
            raise file_error(scp, "embedding scp does not exist")
        try:
            for utt, vec in kaldiio.load_scp(str(scp)).items():
                if utt in table:
                    raise file_error(scp, f"utterance '{utt}' has an embedding in two scp files")
                table[utt] = np.asarray(vec, dtype=np.float64).reshape(-1)
        except SpkpeftError:
            raise
        except Exception as err:
            raise file_error(scp, f"cannot read embeddings ({err})") from None
    if not table:
        raise SpkpeftError("no embeddings were read")
    dims = {v.shape[0] for v in table.values()}
    if len(dims) != 1:
        raise SpkpeftError(f"embeddings have different dimensions: {sorted(dims)}")
    return table


def embedding_mean(embeddings: Mapping[str, np.ndarray]) -> np.ndarray:
    """Mean vector of a set of embeddings."""
    return np.mean(np.stack(list(embeddings.values())), axis=0)


def cosine_scores(
    embeddings: Mapping[str, np.ndarray],
    utt1: Sequence[str],
    utt2: Sequence[str],
    mean: np.ndarray | None = None,
    trials_path: str | Path = "<trials>",
) -> np.ndarray:
    """Cosine score of every pair ``(utt1[i], utt2[i])`` (vectorised over the trials)."""
    names = sorted(set(utt1) | set(utt2))
    index = {u: i for i, u in enumerate(names)}
    for number, (a, b) in enumerate(zip(utt1, utt2), 1):
        for utt in (a, b):
            if utt not in embeddings:
                raise file_error(trials_path, f"no embedding for utterance '{utt}'", number)
    matrix = np.stack([embeddings[u] for u in names])
    if mean is not None:
        matrix = matrix - mean
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    matrix = matrix / np.maximum(norms, 1e-12)
    i1 = np.fromiter((index[u] for u in utt1), dtype=np.int64, count=len(utt1))
    i2 = np.fromiter((index[u] for u in utt2), dtype=np.int64, count=len(utt2))
    return np.einsum("ij,ij->i", matrix[i1], matrix[i2])
