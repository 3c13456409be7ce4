"""Cosine scoring of speaker embeddings stored as Kaldi ark/scp, with score normalisation.

Cosine score::

    score(e1, e2) = <x1, x2> / (|x1| |x2|),  x = e - mu,

where mu is the mean of the training-set embeddings when mean subtraction is
on (it removes the dominant direction shared by all embeddings) and 0 otherwise.

Enrollment models (``spk2utt``-style map ``<model-id> <utt> <utt> ...``): the
embedding of a model is the mean of its utterances' embeddings; a trial's
first field may then be a model id instead of an utterance id.

Score normalisation (symmetric, Kaldi/ESPnet/WeSpeaker convention). The cohort
is a set of embeddings ``c_1 .. c_C`` (here the per-speaker mean embeddings of
the training speakers), mean-subtracted and length-normalised like the trial
embeddings. For one side ``e`` of a trial, its cohort scores are
``s(e, c_k)`` for every ``k``; ``mu_e`` and ``sd_e`` are their mean and
(population, ddof 0) standard deviation over

* ``snorm``: the whole cohort;
* ``asnorm`` (adaptive S-norm): the ``N`` highest cohort scores of ``e``
  (``N = top_n``, capped at ``C``).

Then, with ``e`` the enrollment side and ``t`` the test side::

    s' = 0.5 * ((s - mu_e) / sd_e + (s - mu_t) / sd_t)

Statistics are computed once per distinct utterance (or model) over all trial
lists, with one matrix product ``embeddings x cohort^T`` in row blocks of
bounded size, never per trial.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping, Sequence

import kaldiio
import numpy as np

from spkpeft.io.datadir import read_key_value, read_lines, utt2spk_to_spk2utt
from spkpeft.errors import SpkpeftError, file_error
from spkpeft.io.trials import NORMS, score_file_name  # noqa: F401  (the score files' names)

DEFAULT_TOP_N = 300
BLOCK_ELEMENTS = 1 << 22  # cohort score block: at most ~4M float64 (32 MB) at a time

TrialList = tuple[Sequence[str], Sequence[str], "str | Path"]  # (utt1, utt2, trials path for errors)


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


# ---------------------------------------------------------------- models and cohort


def read_spk2utt(path: str | Path) -> dict[str, list[str]]:
    """Read ``<model-id> <utt> [<utt> ...]`` lines into ``{model: [utts]}`` (file order, unique ids)."""
    models: dict[str, list[str]] = {}
    for number, fields in read_lines(path):
        if len(fields) < 2:
            raise file_error(path, f"model '{fields[0]}' lists no utterance", number)
        if fields[0] in models:
            raise file_error(path, f"duplicate model id '{fields[0]}'", number)
        models[fields[0]] = fields[1:]
    if not models:
        raise file_error(path, "file is empty")
    return models


def model_embeddings(embeddings: Mapping[str, np.ndarray], models: Mapping[str, Sequence[str]],
                     source: str | Path) -> dict[str, np.ndarray]:
    """``{model: mean of its utterances' embeddings}``; a missing utterance is an error naming ``source``."""
    out: dict[str, np.ndarray] = {}
    for model, utts in models.items():
        missing = [u for u in utts if u not in embeddings]
        if missing:
            raise file_error(source, f"no embedding for utterance '{missing[0]}' of '{model}'")
        out[model] = np.mean(np.stack([embeddings[u] for u in utts]), axis=0)
    return out


def add_enrollment(embeddings: Mapping[str, np.ndarray], spk2utt: str | Path) -> dict[str, np.ndarray]:
    """``embeddings`` plus one averaged embedding per enrollment model of ``spk2utt``."""
    models = model_embeddings(embeddings, read_spk2utt(spk2utt), spk2utt)
    clash = next((m for m in models if m in embeddings), None)
    if clash is not None:
        raise file_error(spk2utt, f"enrollment id '{clash}' is also an utterance id")
    return {**embeddings, **models}


def cohort_matrix(embeddings: Mapping[str, np.ndarray], utt2spk: str | Path) -> np.ndarray:
    """Per-speaker mean embeddings ``(n_speakers, dim)`` of the speakers of ``utt2spk`` (byte order)."""
    speakers = model_embeddings(embeddings, utt2spk_to_spk2utt(read_key_value(utt2spk)), utt2spk)
    if len(speakers) < 2:
        raise file_error(utt2spk, f"a score-normalisation cohort needs at least 2 speakers, found {len(speakers)}")
    return np.stack(list(speakers.values()))


# ---------------------------------------------------------------- scoring


def length_normalize(matrix: np.ndarray, mean: np.ndarray | None = None) -> np.ndarray:
    """Rows ``(e - mean) / |e - mean|`` (``mean`` None: no subtraction)."""
    if mean is not None:
        matrix = matrix - mean
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, 1e-12)


def cohort_stats(unit: np.ndarray, cohort: np.ndarray, top_ns: Sequence[int | None],
                 block_elements: int = BLOCK_ELEMENTS) -> list[tuple[np.ndarray, np.ndarray]]:
    """Mean and standard deviation of each row's cohort scores, for every ``top_n`` in ``top_ns``.

    ``unit`` ``(n, d)`` and ``cohort`` ``(C, d)`` are length-normalised rows; the
    cohort scores of row ``i`` are ``unit[i] @ cohort.T``. ``top_n`` None (or
    ``>= C``) uses all ``C`` scores, otherwise the ``top_n`` highest. Rows are
    processed in blocks of at most ``block_elements`` scores. Returns one
    ``(mu, sd)`` pair of ``(n,)`` arrays per entry of ``top_ns``.
    """
    n, size = unit.shape[0], cohort.shape[0]
    rows = max(1, block_elements // size)
    out = [(np.empty(n), np.empty(n)) for _ in top_ns]
    for start in range(0, n, rows):
        block = unit[start:start + rows] @ cohort.T
        for (mu, sd), top_n in zip(out, top_ns):
            chosen = block
            if top_n is not None and top_n < size:
                chosen = np.partition(block, size - top_n, axis=1)[:, size - top_n:]
            mu[start:start + rows] = chosen.mean(axis=1)
            sd[start:start + rows] = chosen.std(axis=1)
    for _, sd in out:
        if np.any(sd <= 0):
            raise SpkpeftError("cohort scores have zero spread (identical cohort embeddings?); "
                               "cannot normalise scores")
    return out


def symmetric_norm(raw: np.ndarray, i1: np.ndarray, i2: np.ndarray,
                   mu: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """``0.5 * ((s - mu[i1]) / sd[i1] + (s - mu[i2]) / sd[i2])`` for every trial."""
    return 0.5 * ((raw - mu[i1]) / sd[i1] + (raw - mu[i2]) / sd[i2])


def pair_scores(unit: np.ndarray, i1: np.ndarray, i2: np.ndarray,
                block_elements: int = BLOCK_ELEMENTS) -> np.ndarray:
    """``<unit[i1[k]], unit[i2[k]]>`` for every trial ``k``, in blocks of at most ``block_elements`` values."""
    out = np.empty(i1.size)
    rows = max(1, block_elements // max(1, unit.shape[1]))
    for start in range(0, i1.size, rows):
        a, b = unit[i1[start:start + rows]], unit[i2[start:start + rows]]
        out[start:start + rows] = np.einsum("ij,ij->i", a, b)
    return out


def _trial_index(index: Mapping[str, int], names: Sequence[str]) -> np.ndarray:
    return np.fromiter((index[u] for u in names), dtype=np.int64, count=len(names))


def _check_present(embeddings: Mapping[str, np.ndarray], trial_lists: Sequence[TrialList]) -> None:
    """Every trial side has an embedding; else an error naming the trials file and line."""
    for utt1, utt2, path in trial_lists:
        for number, (a, b) in enumerate(zip(utt1, utt2), 1):
            for utt in (a, b):
                if utt not in embeddings:
                    raise file_error(path, f"no embedding for utterance '{utt}'", number)


def score_trial_lists(embeddings: Mapping[str, np.ndarray], trial_lists: Sequence[TrialList],
                      mean: np.ndarray | None = None, cohort: np.ndarray | None = None,
                      norms: Sequence[str] = ("none",), top_n: int = DEFAULT_TOP_N) -> list[dict[str, np.ndarray]]:
    """Scores of every trial list under every normalisation: ``[{norm: scores in trial order}, ...]``.

    ``cohort`` holds raw cohort embeddings (rows), mean-subtracted and
    length-normalised here like the trial embeddings; it is required for
    ``snorm`` and ``asnorm`` (see the module docstring).
    """
    unknown = [n for n in norms if n not in NORMS]
    if unknown:
        raise SpkpeftError(f"unknown score normalisation '{unknown[0]}' (expected one of {', '.join(NORMS)})")
    if cohort is None and any(n != "none" for n in norms):
        raise SpkpeftError("score normalisation (snorm, asnorm) needs a cohort")
    if top_n < 2:
        raise SpkpeftError(f"the adaptive cohort needs top_n >= 2, got {top_n}")
    _check_present(embeddings, trial_lists)
    names = sorted({u for utt1, utt2, _ in trial_lists for u in (*utt1, *utt2)})
    index = {u: i for i, u in enumerate(names)}
    unit = length_normalize(np.stack([embeddings[u] for u in names]), mean)
    wanted = [n for n in norms if n != "none"]
    stats = {}
    if wanted:
        top_ns = [None if n == "snorm" else top_n for n in wanted]
        stats = dict(zip(wanted, cohort_stats(unit, length_normalize(cohort, mean), top_ns)))
    out = []
    for utt1, utt2, _ in trial_lists:
        i1, i2 = _trial_index(index, utt1), _trial_index(index, utt2)
        raw = pair_scores(unit, i1, i2)
        out.append({n: raw if n == "none" else symmetric_norm(raw, i1, i2, *stats[n]) for n in norms})
    return out


# ---------------------------------------------------------------- bootstrap clusters


def trial_speakers(enroll_ids: Sequence[str], utt2spk: Mapping[str, str],
                   models: Mapping[str, Sequence[str]] | None = None) -> list[str]:
    """The speaker of each trial's enrollment side (the bootstrap's resampling unit).

    ``utt2spk[id]`` for an utterance; for an enrollment model of ``models``
    (``spk2utt``-style) the speaker of its first utterance, or the model id itself
    when that utterance is not in ``utt2spk``; any other id is its own speaker.
    """
    models = models or {}
    out = []
    for uid in enroll_ids:
        if uid in utt2spk:
            out.append(utt2spk[uid])
        elif uid in models:
            out.append(utt2spk.get(models[uid][0], uid))
        else:
            out.append(uid)
    return out


def read_utt2spk_files(paths: Iterable[str | Path]) -> dict[str, str]:
    """The union of several ``utt2spk`` files; an utterance given two speakers is an error naming the file."""
    table: dict[str, str] = {}
    for path in paths:
        for utt, spk in read_key_value(path).items():
            if table.setdefault(utt, spk) != spk:
                raise file_error(path, f"utterance '{utt}' has speaker '{spk}' here but '{table[utt]}' elsewhere")
    return table
