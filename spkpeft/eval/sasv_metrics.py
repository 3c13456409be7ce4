"""Spoof-aware speaker verification (SASV) metrics of the SASV 2022 challenge and of ASVspoof 5 track 2.

A SASV trial claims a speaker and tests one utterance; its key is ``target`` (bona fide
speech of the claimed speaker: accept), ``nontarget`` (bona fide speech of another speaker:
reject) or ``spoof`` (a spoof of the claimed speaker: reject).  Scores: **higher = accept**.
Functions return **fractions**; :func:`compute_sasv_metrics` (the CLI's result) reports EERs
in percent.  The two challenges use different EER conventions, kept apart here.

SASV 2022 (Jung et al., "SASV 2022: the first spoofing-aware speaker verification challenge",
Interspeech 2022; ``metrics.py`` of ``sasv-challenge/SASVC2022_Baseline``)
------------------------------------------------------------------------------------------------
* SASV-EER: target against nontarget + spoof; SV-EER: target against nontarget; SPF-EER:
  target against spoof (:func:`sasv_eers`).
* The official ``get_all_EERs`` takes scikit-learn's ``roc_curve`` (one point per distinct
  score: ties move together) and solves ``1 - x = interp1d(fpr, tpr)(x)`` with
  ``scipy.optimize.brentq``: the crossing of ``P_miss = P_fa`` on the piecewise-linear ROC,
  i.e. exactly the interpolated EER of :func:`spkpeft.eval.metrics.compute_eer` (reused, not
  re-implemented), up to brentq's tolerance (``xtol = 2e-12``; the tests agree to 1e-11).

ASVspoof 5 track 2 (``evaluation-package`` of ``asvspoof-challenge/asvspoof5``)
---------------------------------------------------------------------------------
Non-interpolated, on the official *position-wise* curves: all scores in one stable
(``mergesort``) sort of ``[target..., nontarget..., spoof...]`` (so among equal scores targets
come first, then nontargets, then spoofs), and operating point ``k = 0..n`` rejects the ``k``
first of that order.

* **min a-DCF** (Shim et al., "a-DCF: an architecture agnostic metric with application to
  spoofing-robust speaker verification", Odyssey 2024; ``a_dcf.py``)::

      a-DCF(k) = C_miss P_tar P_miss(k) + C_fa,non P_non P_fa,non(k) + C_fa,spf P_spf P_fa,spf(k)
      min a-DCF = min_k a-DCF(k) / min(C_fa,non P_non + C_fa,spf P_spf, C_miss P_tar)

  (1.0: the better of accept-all and reject-all).  Evaluation costs (:data:`ADCF_ASVSPOOF5_COSTS`,
  ``calculate_metrics.py``): ``P_spf = 0.05``, ``P_tar = (1 - 0.05) * 0.99 = 0.9405``,
  ``P_non = (1 - 0.05) * 0.01 = 0.0095``, ``C_miss = 1``, ``C_fa,non = C_fa,spf = 10``.
  The a-DCF is linear in the three rates with non-negative weights and inside a tie group the
  official order first rejects targets (cost rises) and then nontargets and spoofs (cost
  falls), so no point inside a tie group is below both its ends: the minimum over the
  thresholds between tie groups (computed here, O(n log n)) equals the official minimum, term
  by term in the same floating-point operations (tested bit for bit).
* **t-EER**, the concurrent tandem EER (Kinnunen et al., "t-EER: parameter-free tandem
  evaluation of countermeasures and biometric comparators", IEEE TPAMI 2023;
  ``compute_teer`` / ``compute_teer_accelerated`` of ``calculate_modules.py``), for separate
  ASV and CM scores of the same trials (:func:`t_eer`).  CM curve: CM scores of the bona fide
  trials (target and nontarget) against those of the spoof trials (``P_miss_cm(j)``,
  ``P_fa_cm(j)``, the position-wise curve of :func:`spkpeft.eval.cm_metrics.cm_eer`); ASV curves:
  ``P_miss_asv(i)``, ``P_fa,non_asv(i) = 1 - #non rejected / n_non``, ``P_fa,spf_asv(i)`` over
  the ASV scores of the three classes.  With ``rho = 0.5`` and, for each ASV point ``i``::

      P_miss_tdm(i, j) = P_miss_cm(j) + (1 - P_miss_cm(j)) P_miss_asv(i)
      P_fa_tdm(i, j)   = (1 - rho) (1 - P_miss_cm(j)) P_fa,non_asv(i) + rho P_fa_cm(j) P_fa,spf_asv(i)
      j*(i) = first argmin_j |P_miss_tdm(i, j) - P_fa_tdm(i, j)|

  among the ASV points with ``P_miss_asv(i) < (1 - rho) P_fa,non_asv(i) + rho P_fa,spf_asv(i)``
  the first one minimising ``|P_fa,non_asv(i) / P_fa,spf_asv(i) - P_fa_cm(j*) / (1 -
  P_miss_cm(j*))|`` (infinite or undefined ratios never win) gives ``t-EER = P_fa,spf_asv(i)
  P_fa_cm(j*)``.  Here the double loop is evaluated in blocks of whole rows with the same
  element-wise operations (the same floats, the same first-index ties), not in a Python loop.
  Like the official evaluation, by default (``accelerated=True``) curves of 3000 points or more
  are first searched on every ``len // 3000``-th point and then exactly in a window of
  +-1600 points around the coarse optimum (``compute_teer_accelerated``); ``accelerated=False``
  is the exhaustive ``compute_teer``.  No valid point (the official code then fails) is an error.
* **min t-DCF in its ASVspoof 5 form**: the revised t-DCF of
  :func:`spkpeft.eval.cm_metrics.min_tdcf_2021` (``compute_tDCF``; the same costs: ``P_spoof =
  0.05``, ``P_tar = 0.9405``, ``P_non = 0.0095``, ``C_miss = 1``, ``C_fa = C_fa_spoof = 10``) of
  the CM scores of the bona fide trials against those of the spoof trials, with the ASV error
  rates at the ASV EER threshold (:func:`spkpeft.eval.cm_metrics.asv_error_rates`: the
  official ``compute_eer`` threshold of target against nontarget ASV scores; ``Pfa_asv =
  P(nontarget >= t)``, ``Pmiss_asv = P(target < t)``, ``Pfa_spoof_asv = P(spoof >= t)``).
  **Departure from the official code, on purpose**: ``calculate_aDCF_tdcf_tEER`` (reached from
  ``evaluation_full.py`` with the ASV scores given) takes ``Pfa_spf_ASV_org = tmp[2]`` of
  ``obtain_asv_error_rates``, which is ``Pmiss_spoof_asv = P(spoof < t)``, where the t-DCF's
  ``C2 = P_spoof C_fa_spoof Pfa_spoof_asv`` needs ``P(spoof >= t)`` (``tmp[3]``).  We use
  ``P(spoof >= t)``; the tests show both values of the official functions (the plain
  ``evaluation.py`` path uses fixed, pre-computed rates of the organisers' ASV instead).

Files
-----
* SASV protocol (:func:`read_sasv_protocol`): ASVspoof 2019 LA ``asv.{dev,eval}.gi.trl.txt``
  ``SPEAKER UTT SOURCE KEY`` (``SOURCE`` ``bonafide`` or the attack id, ``KEY``
  ``target|nontarget|spoof``), or ASVspoof 5 ``ASVspoof5.{dev,eval}.track_2.trial.tsv``
  ``SPEAKER UTT GENDER SOURCE KEY`` (space-separated, no header).  ``SOURCE`` is ``bonafide``
  exactly for target and nontarget trials.  A ``(SPEAKER, UTT)`` pair appears once.
Speaker bootstrap
-----------------
:func:`bootstrap_sasv`: 95 % intervals of SASV-EER, SV-EER, SPF-EER and min a-DCF by the speaker
bootstrap of :mod:`spkpeft.eval.bootstrap` (its draws, :func:`~spkpeft.eval.bootstrap.draw_counts`:
the clusters are the trials' claimed speakers, a drawn speaker's trials weighted by how often it was
drawn; its percentile interval).  A draw's weighted class counts below every threshold between tie
groups (one sparse product per class) give the EERs by :func:`spkpeft.eval.metrics.eer_from_counts`
(the interpolated convention of :func:`sasv_eers`) and the a-DCF by the formula above; with every
weight 1 they are the point estimates (tested).

Files
-----
* Score files (:func:`read_scores_of_trials`): ``SPEAKER UTT SCORE`` (one score per trial, any
  order, covering the protocol's trials exactly) or ``UTT SCORE`` (one per utterance, e.g. the
  ``cm`` task's ``scores.txt``: a trial takes its test utterance's score).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np

from spkpeft.errors import SpkpeftError, file_error
from spkpeft.eval.cm_metrics import (TDCF_2021_COSTS, Tdcf2021Costs, _official_det, asv_error_rates,
                                     min_tdcf_2021)
from spkpeft.eval.bootstrap import DEFAULT_DRAWS, DEFAULT_SEED, cluster_index, draw_counts, percentile_ci
from spkpeft.eval.metrics import compute_eer, eer_from_counts, tie_groups
from spkpeft.io.records import read_records
from spkpeft.io.trials import parse_score

TARGET, NONTARGET, SPOOF = "target", "nontarget", "spoof"
SASV_KEYS = (TARGET, NONTARGET, SPOOF)
BONAFIDE = "bonafide"


# ---------------------------------------------------------------- scores by key


class KeyedScores(NamedTuple):
    """Scores of the target, nontarget and spoof trials (1-D float64 arrays)."""

    target: np.ndarray
    nontarget: np.ndarray
    spoof: np.ndarray


def keyed_scores(scores: Sequence[float] | np.ndarray, keys: Sequence[str]) -> KeyedScores:
    """Split per-trial ``scores`` by ``keys`` (``target|nontarget|spoof``), keeping the trial order.

    Errors: unequal lengths, an unknown key, a non-finite score, an empty class.
    """
    s = np.asarray(scores, dtype=np.float64)
    k = np.asarray(keys, dtype=object)
    if s.ndim != 1 or s.shape != k.shape:
        raise SpkpeftError(f"{s.size} scores but {k.size} keys; they must be 1-D of equal lengths")
    bad = ~np.isin(k, SASV_KEYS)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise SpkpeftError(f"key must be target, nontarget or spoof, got {k[i]!r} at index {i}")
    bad = ~np.isfinite(s)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise SpkpeftError(f"{int(bad.sum())} non-finite score(s), the first is {s[i]!r} at index {i}")
    out = KeyedScores(*(s[k == key] for key in SASV_KEYS))
    for key, values in zip(SASV_KEYS, out):
        if values.size == 0:
            raise SpkpeftError(f"no {key} trials: the SASV metrics need target, nontarget and spoof trials")
    return out


def _binary(positive: np.ndarray, *negatives: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    neg = np.concatenate(negatives)
    return (np.concatenate([positive, neg]),
            np.concatenate([np.ones(positive.size, dtype=np.bool_), np.zeros(neg.size, dtype=np.bool_)]))


# ---------------------------------------------------------------- SASV 2022 EERs


class SasvEers(NamedTuple):
    """SASV-EER, SV-EER and SPF-EER (fractions), in the order of the official ``get_all_EERs``."""

    sasv: float
    sv: float
    spf: float


def sasv_eers(scores: KeyedScores) -> SasvEers:
    """The three SASV 2022 EERs (module docstring): target against nontarget + spoof, against
    nontarget, against spoof; interpolated (:func:`spkpeft.eval.metrics.compute_eer`)."""
    tar, non, spf = scores
    return SasvEers(compute_eer(*_binary(tar, non, spf)), compute_eer(*_binary(tar, non)),
                    compute_eer(*_binary(tar, spf)))


def spf_eer_per_attack(scores: Sequence[float] | np.ndarray, keys: Sequence[str],
                       attacks: Sequence[str]) -> dict[str, float]:
    """SPF-EER (fraction) of each attack: all target trials against the spoof trials of that attack.

    ``attacks[i]`` is trial ``i``'s source (ignored unless ``keys[i]`` is ``spoof``);
    ``{attack: eer}`` sorted by attack id.
    """
    s = np.asarray(scores, dtype=np.float64)
    k = np.asarray(keys, dtype=object)
    a = np.asarray(attacks, dtype=object)
    if not (s.size == k.size == a.size):
        raise SpkpeftError(f"per-attack SPF-EER needs scores, keys and attacks of equal lengths, "
                           f"got {s.size}, {k.size} and {a.size}")
    tar = keyed_scores(s, k).target
    spoof = k == SPOOF
    return {attack: compute_eer(*_binary(tar, s[spoof & (a == attack)]))
            for attack in sorted(set(a[spoof].tolist()))}


# ---------------------------------------------------------------- a-DCF


@dataclass(frozen=True)
class AdcfCosts:
    """Priors and costs of the a-DCF (names of the official ``CostModel``: ``Ptrg``, ``Pnontrg``,
    ``Pspf``, ``Cmiss``, ``Cfa_asv``, ``Cfa_cm``)."""

    p_tar: float
    p_non: float
    p_spf: float
    c_miss: float
    c_fa_non: float
    c_fa_spf: float


_P_SPOOF = 0.05
#: ASVspoof 5 evaluation (``calculate_aDCF_tdcf_tEER`` of the evaluation package), same expressions
ADCF_ASVSPOOF5_COSTS = AdcfCosts(p_tar=(1 - _P_SPOOF) * 0.99, p_non=(1 - _P_SPOOF) * 0.01, p_spf=_P_SPOOF,
                                 c_miss=1.0, c_fa_non=10.0, c_fa_spf=10.0)
#: the t-DCF of ASVspoof 5 is the revised (2021) one with these costs
TDCF_ASVSPOOF5_COSTS: Tdcf2021Costs = TDCF_2021_COSTS


def _check_adcf_costs(costs: AdcfCosts) -> None:
    for name, value in vars(costs).items():
        if not (np.isfinite(value) and value >= 0):
            raise SpkpeftError(f"a-DCF {name} must be a non-negative number, got {value!r}")
    if min(costs.c_fa_non * costs.p_non + costs.c_fa_spf * costs.p_spf, costs.c_miss * costs.p_tar) <= 0:
        raise SpkpeftError("the a-DCF normalisation min(C_fa,non P_non + C_fa,spf P_spf, C_miss P_tar) is 0")


def adcf_curve(scores: KeyedScores, costs: AdcfCosts = ADCF_ASVSPOOF5_COSTS) -> tuple[np.ndarray, np.ndarray]:
    """Normalised a-DCF at every threshold between tie groups, and those thresholds.

    Thresholds (accept iff ``score >= t``): each distinct score ascending, then ``+inf``
    (reject all); the first one accepts all.  Rates and the cost are computed with the
    official expressions (``fn / n_tar``, ``fp / n_non``, ``fp / n_spf``; ``C_miss P_tar``
    times the miss rate plus ``C_fa,non P_non`` times ... in that order) so that the values
    are the official ones bit for bit.
    """
    _check_adcf_costs(costs)
    tar, non, spf = (np.sort(x) for x in scores)
    thresholds = np.r_[np.unique(np.concatenate([tar, non, spf])), np.inf]
    miss = np.searchsorted(tar, thresholds, side="left")
    fa_non = non.size - np.searchsorted(non, thresholds, side="left")
    fa_spf = spf.size - np.searchsorted(spf, thresholds, side="left")
    cost = (np.array([costs.c_miss * costs.p_tar]) * (miss / tar.size)
            + np.array([costs.c_fa_non * costs.p_non]) * (fa_non / non.size)
            + np.array([costs.c_fa_spf * costs.p_spf]) * (fa_spf / spf.size))
    norm = min(costs.c_fa_non * costs.p_non + costs.c_fa_spf * costs.p_spf, costs.c_miss * costs.p_tar)
    return cost / norm, thresholds


def min_adcf(scores: KeyedScores, costs: AdcfCosts = ADCF_ASVSPOOF5_COSTS) -> float:
    """Normalised minimum a-DCF of SASV scores (module docstring), as the official ``a_dcf.py``."""
    return float(adcf_curve(scores, costs)[0].min())


# ---------------------------------------------------------------- t-EER

#: the official accelerated search: curves of at least this many points are searched coarsely first
TEER_DECIMATED_SIZE = 3000
#: ... then exactly within this many points either side of the coarse optimum
TEER_BIN_WIDTH = 1600
_TEER_RHO = 0.5                 # any rho gives the concurrent t-EER; the official code uses 0.5
_BLOCK_ELEMENTS = 1 << 21       # (ASV rows x CM points) evaluated at a time


def _stable_order_classes(*classes: np.ndarray) -> np.ndarray:
    """Class index (0, 1, ...) of every score in the stable ascending order of their concatenation."""
    labels = np.concatenate([np.full(c.size, i) for i, c in enumerate(classes)])
    return labels[np.argsort(np.concatenate(classes), kind="stable")]


def _asv_curves(asv: KeyedScores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Official ``compute_Pmiss_Pfa_Pspoof_curves``: ``(P_miss, P_fa_non, P_fa_spf)`` at ``n + 1`` positions."""
    order = _stable_order_classes(*asv)
    return (np.r_[0.0, np.cumsum(order == 0) / asv.target.size],
            np.r_[1.0, 1 - (np.cumsum(order == 1) / asv.nontarget.size)],
            np.r_[1.0, 1 - (np.cumsum(order == 2) / asv.spoof.size)])


def _teer_search(pm_cm: np.ndarray, pfa_cm: np.ndarray, pm_asv: np.ndarray, pfa_non: np.ndarray,
                 pfa_spf: np.ndarray) -> tuple[float, int, int] | None:
    """``compute_teer`` of the given curve points: ``(t-EER, ASV index, CM index)``, None if no valid point."""
    rho = _TEER_RHO
    keep_cm = 1 - pm_cm
    a = (1 - rho) * keep_cm           # (1 - rho) (1 - P_miss_cm), the official association
    b = rho * pfa_cm
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio_cm = pfa_cm / keep_cm
        ratio_asv = pfa_non / pfa_spf
    allowed = np.flatnonzero(pm_asv < (1 - rho) * pfa_non + rho * pfa_spf)
    best: tuple[float, int, int] | None = None
    best_crit = np.inf
    rows = max(1, _BLOCK_ELEMENTS // max(1, pm_cm.size))
    for start in range(0, allowed.size, rows):
        i = allowed[start:start + rows]
        h = (pm_cm + keep_cm * pm_asv[i, None]) - (a * pfa_non[i, None] + b * pfa_spf[i, None])
        j = np.argmin(np.abs(h), axis=1)
        with np.errstate(invalid="ignore"):
            crit = np.abs(ratio_asv[i] - ratio_cm[j])
        crit = np.where(np.isnan(crit), np.inf, crit)
        k = int(np.argmin(crit))
        if crit[k] < best_crit:
            best_crit = float(crit[k])
            best = (float(pfa_spf[i[k]] * pfa_cm[j[k]]), int(i[k]), int(j[k]))
    return best


def t_eer(asv: KeyedScores, cm: KeyedScores, accelerated: bool = True) -> float:
    """Concurrent t-EER (fraction; module docstring) of per-trial ASV and CM scores of the same trials.

    ``asv`` and ``cm`` hold each class's trials in the same order (``cm.target[i]`` is the
    CM score of the trial of ``asv.target[i]``).  ``accelerated`` follows the official
    ``compute_teer_accelerated`` (the value the ASVspoof 5 evaluation reports); False searches
    every pair of operating points.
    """
    for key, x, y in zip(SASV_KEYS, asv, cm):
        if x.size != y.size:
            raise SpkpeftError(f"{x.size} ASV but {y.size} CM scores of {key} trials; t-EER needs both per trial")
    pm_cm, pfa_cm, _ = _official_det(np.concatenate([cm.target, cm.nontarget]), cm.spoof)
    pm_asv, pfa_non, pfa_spf = _asv_curves(asv)
    ds_asv, ds_cm = pm_asv.size // TEER_DECIMATED_SIZE, pm_cm.size // TEER_DECIMATED_SIZE
    if accelerated and ds_asv > 0 and ds_cm > 0:
        coarse = _teer_search(pm_cm[::ds_cm], pfa_cm[::ds_cm], pm_asv[::ds_asv], pfa_non[::ds_asv],
                              pfa_spf[::ds_asv])
        if coarse is None:
            raise SpkpeftError("t-EER: no ASV operating point in the allowed region (the coarse search found none)")
        ca, cc = coarse[1] * ds_asv, coarse[2] * ds_cm
        asv_win = slice(max(ca - TEER_BIN_WIDTH, 0), min(ca + TEER_BIN_WIDTH, pm_asv.size))
        cm_win = slice(max(cc - TEER_BIN_WIDTH, 0), min(cc + TEER_BIN_WIDTH, pm_cm.size))
        found = _teer_search(pm_cm[cm_win], pfa_cm[cm_win], pm_asv[asv_win], pfa_non[asv_win], pfa_spf[asv_win])
    else:
        found = _teer_search(pm_cm, pfa_cm, pm_asv, pfa_non, pfa_spf)
    if found is None:
        raise SpkpeftError("t-EER: no ASV operating point in the allowed region "
                           "(P_miss_asv < (P_fa,non_asv + P_fa,spf_asv) / 2) gives a defined crossing")
    return found[0]


# ---------------------------------------------------------------- t-DCF


def min_tdcf_asvspoof5(asv: KeyedScores, cm: KeyedScores, costs: Tdcf2021Costs = TDCF_ASVSPOOF5_COSTS) -> float:
    """ASVspoof 5 min t-DCF (module docstring): :func:`~spkpeft.eval.cm_metrics.min_tdcf_2021` of the CM
    scores of the bona fide (target + nontarget) against the spoof trials, with the ASV rates of
    ``asv`` at its EER threshold and ``Pfa_spoof_asv = P(spoof >= t)`` (not the official ``P(spoof < t)``)."""
    rates = asv_error_rates(asv.target, asv.nontarget, asv.spoof)
    return min_tdcf_2021(np.concatenate([cm.target, cm.nontarget]), cm.spoof, rates, costs)


# ---------------------------------------------------------------- speaker bootstrap

BOOTSTRAP_METRICS = ("sasv_eer_pct", "sv_eer_pct", "spf_eer_pct", "min_adcf")
_BLOCK = 1 << 22


def _class_blocks(scores: np.ndarray, keys: np.ndarray, cluster: np.ndarray, n_clusters: int) -> list:
    """Per class (target, nontarget, spoof) a sparse ``(clusters, tie groups)`` count of its trials."""
    from scipy import sparse

    order = np.argsort(scores, kind="stable")
    below = tie_groups(scores[order])
    group = np.repeat(np.arange(below.size - 1), np.diff(below))
    k, c = keys[order], cluster[order]
    shape = (n_clusters, below.size - 1)
    return [sparse.csr_matrix((np.ones(np.count_nonzero(k == key)), (c[k == key], group[k == key])), shape=shape)
            for key in SASV_KEYS]


def sasv_from_weights(blocks: list, weights: np.ndarray, costs: AdcfCosts = ADCF_ASVSPOOF5_COSTS) -> dict:
    """The four metrics (EERs in percent) for each row of cluster ``weights`` ``(B, clusters)``."""
    zero = np.zeros((weights.shape[0], 1))
    tar, non, spf = (np.hstack([zero, np.cumsum((m.T @ weights.T).T, axis=1)]) for m in blocks)
    n_tar, n_non, n_spf = tar[:, -1:], non[:, -1:], spf[:, -1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        cost = (costs.c_miss * costs.p_tar * (tar / n_tar) + costs.c_fa_non * costs.p_non * ((n_non - non) / n_non)
                + costs.c_fa_spf * costs.p_spf * ((n_spf - spf) / n_spf))
    norm = min(costs.c_fa_non * costs.p_non + costs.c_fa_spf * costs.p_spf, costs.c_miss * costs.p_tar)
    ok = (n_tar[:, 0] > 0) & (n_non[:, 0] > 0) & (n_spf[:, 0] > 0)
    return {"sasv_eer_pct": 100.0 * eer_from_counts(tar, non + spf, n_tar, n_non + n_spf),
            "sv_eer_pct": 100.0 * eer_from_counts(tar, non, n_tar, n_non),
            "spf_eer_pct": 100.0 * eer_from_counts(tar, spf, n_tar, n_spf),
            "min_adcf": np.where(ok, cost.min(axis=1) / norm, np.nan)}


def bootstrap_sasv(scores: Sequence[float] | np.ndarray, keys: Sequence[str], clusters: Sequence[str],
                   draws: int = DEFAULT_DRAWS, seed: int = DEFAULT_SEED) -> dict[str, list[float]]:
    """95 % speaker-bootstrap intervals (module docstring): ``{"<metric>_ci95": [lo, hi]}`` for
    :data:`BOOTSTRAP_METRICS`; ``clusters[i]`` is trial ``i``'s claimed speaker."""
    s = np.asarray(scores, dtype=np.float64)
    k = np.asarray(keys, dtype=object)
    keyed_scores(s, k)
    cluster, n_clusters = cluster_index(clusters)
    if cluster.size != s.size:
        raise SpkpeftError(f"{s.size} scores but {cluster.size} trial speakers; they must have equal lengths")
    blocks = _class_blocks(s, k, cluster, n_clusters)
    counts = draw_counts(n_clusters, draws, seed).astype(np.float64)
    rows = max(1, _BLOCK // max(1, blocks[0].shape[1] + 1))
    per_draw: dict[str, list[np.ndarray]] = {m: [] for m in BOOTSTRAP_METRICS}
    for start in range(0, draws, rows):
        for metric, values in sasv_from_weights(blocks, counts[start:start + rows]).items():
            per_draw[metric].append(values)
    return {f"{m}_ci95": percentile_ci(np.concatenate(per_draw[m])) for m in BOOTSTRAP_METRICS}


# ---------------------------------------------------------------- all at once


def compute_sasv_metrics(sasv: KeyedScores, asv: KeyedScores | None = None, cm: KeyedScores | None = None,
                         per_attack: dict[str, float] | None = None) -> dict:
    """The CLI's result (plain numbers, JSON-ready): ``n_target``, ``n_nontarget``, ``n_spoof``,
    ``sasv_eer_pct``, ``sv_eer_pct``, ``spf_eer_pct`` (:func:`sasv_eers`), ``min_adcf``
    (:func:`min_adcf`), with ``asv`` and ``cm`` also ``t_eer_pct`` (:func:`t_eer`) and
    ``min_tdcf`` (:func:`min_tdcf_asvspoof5`), and with ``per_attack`` (fractions, e.g. from
    :func:`spf_eer_per_attack`) ``per_attack_spf_eer_pct``."""
    eers = sasv_eers(sasv)
    out: dict = {"n_target": int(sasv.target.size), "n_nontarget": int(sasv.nontarget.size),
                 "n_spoof": int(sasv.spoof.size), "sasv_eer_pct": 100.0 * eers.sasv,
                 "sv_eer_pct": 100.0 * eers.sv, "spf_eer_pct": 100.0 * eers.spf, "min_adcf": min_adcf(sasv)}
    if (asv is None) != (cm is None):
        raise SpkpeftError("t-EER and min t-DCF need both the ASV and the CM scores of the trials")
    if asv is not None and cm is not None:
        out["t_eer_pct"] = 100.0 * t_eer(asv, cm)
        out["min_tdcf"] = min_tdcf_asvspoof5(asv, cm)
    if per_attack is not None:
        out["per_attack_spf_eer_pct"] = {a: 100.0 * e for a, e in per_attack.items()}
    return out


# ---------------------------------------------------------------- readers


class SasvProtocol(NamedTuple):
    """A SASV trial protocol in file order: claimed speakers, test utterances, sources, keys."""

    speakers: list[str]
    utts: list[str]
    sources: list[str]      # bonafide or the attack id
    keys: list[str]         # target | nontarget | spoof

    def pairs(self) -> list[tuple[str, str]]:
        return list(zip(self.speakers, self.utts))


SASV_PROTOCOL_LAYOUT = "SPEAKER UTT [GENDER] bonafide|ATTACK target|nontarget|spoof"


def read_sasv_protocol(path: str | Path) -> SasvProtocol:
    """Read a SASV protocol: ``SPEAKER UTT SOURCE KEY`` (ASVspoof 2019 LA ``asv.*.gi.trl.txt``) or
    ``SPEAKER UTT GENDER SOURCE KEY`` (ASVspoof 5 ``*.track_2.trial.tsv``), one layout per file.

    Errors (naming path:line): unreadable or empty file, a line with another field count, a key
    other than target/nontarget/spoof, a target or nontarget trial whose source is not
    ``bonafide``, a spoof trial whose source is ``bonafide`` or ``-``, a duplicate
    ``(SPEAKER, UTT)`` trial; a file without target, nontarget or spoof trials names the file.
    """
    out = SasvProtocol([], [], [], [])
    seen: dict[tuple[str, str], int] = {}
    for number, fields in read_records(path, "SASV protocol", (4, 5), SASV_PROTOCOL_LAYOUT):
        speaker, utt, source, key = fields[0], fields[1], fields[-2], fields[-1]
        if key not in SASV_KEYS:
            raise file_error(path, f"key must be target, nontarget or spoof, found '{key}'", number)
        if key != SPOOF and source != BONAFIDE:
            raise file_error(path, f"a {key} trial must have source 'bonafide', found '{source}'", number)
        if key == SPOOF and source in (BONAFIDE, "-"):
            raise file_error(path, f"a spoof trial needs an attack id, found '{source}'", number)
        first = seen.setdefault((speaker, utt), number)
        if first != number:
            raise file_error(path, f"duplicate trial '{speaker} {utt}' (first on line {first})", number)
        out.speakers.append(speaker)
        out.utts.append(utt)
        out.sources.append(source)
        out.keys.append(key)
    for key in SASV_KEYS:
        if key not in out.keys:
            raise file_error(path, f"no '{key}' trials (the SASV metrics need target, nontarget and spoof trials)")
    return out


def _add_new(table: dict, key, value: float, path: str | Path, number: int) -> None:
    if key in table:
        what = " ".join(key) if isinstance(key, tuple) else key
        raise file_error(path, f"duplicate {'trial' if isinstance(key, tuple) else 'utterance'} '{what}'", number)
    table[key] = value


def read_scores_of_trials(path: str | Path, protocol: SasvProtocol, protocol_path: str | Path,
                          kind: str) -> np.ndarray:
    """Per-trial scores in protocol order from ``SPEAKER UTT SCORE`` (one per trial) or ``UTT SCORE``
    (one per utterance, e.g. the ``cm`` task's ``scores.txt``: a trial takes its test utterance's
    score) lines, one layout per file.

    Per trial: a scored trial not in the protocol, or a protocol trial without a score, is an error
    naming the line.  Per utterance: a protocol utterance without a score names the protocol line
    (other utterances may be scored too: a CM score file usually covers a whole set).  Bad lines,
    non-finite scores and duplicates name ``path:line``.
    """
    table: dict = {}
    per_trial = None
    for number, fields in read_records(path, kind, (2, 3), "[SPEAKER] UTT SCORE"):
        per_trial = len(fields) == 3
        key = (fields[0], fields[1]) if per_trial else fields[0]
        _add_new(table, key, parse_score(fields[-1], path, number), path, number)
    out = np.empty(len(protocol.utts), dtype=np.float64)
    if per_trial:
        wanted = set(protocol.pairs())
        for number, pair in enumerate(table, start=1):
            if pair not in wanted:
                raise file_error(path, f"trial '{pair[0]} {pair[1]}' is not in the protocol {protocol_path}", number)
    for index, (speaker, utt) in enumerate(protocol.pairs()):
        key = (speaker, utt) if per_trial else utt
        if key not in table:
            what = f"trial '{speaker} {utt}'" if per_trial else f"utterance '{utt}'"
            raise file_error(protocol_path, f"{what} has no {kind} in {path}", index + 1)
        out[index] = table[key]
    return out
