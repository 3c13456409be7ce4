"""Spoofing-countermeasure (CM) metrics of ASVspoof: EER, min t-DCF (2019 and 2021), per-attack and
per-condition EER.

Conventions
-----------
* CM scores: **higher = more bona fide**. Bona fide is the positive class
  ("target" of :mod:`spkpeft.eval.metrics`), spoof the negative one.
  ``P_miss_cm`` = fraction of bona fide rejected, ``P_fa_cm`` = fraction of spoofs accepted.
* Everything returns **fractions**; the CLI (:mod:`spkpeft.bin.compute_cm_metrics`)
  reports EERs in percent.

EER, two conventions
--------------------
:func:`cm_eer` is the ASVspoof convention: ``compute_eer`` of the official
evaluation code (``eval_metrics.py`` of the ASVspoof 2021 ``eval-package``, which
states it is taken from the ASVspoof 2019 ``tDCF_python_v2`` package). Its DET curve has one
point per **position** of the sorted scores: all ``n = n_bona + n_spoof`` scores
are sorted with a stable sort of ``[bona..., spoof...]`` (so among equal scores
bona fide come first), and point ``k = 0..n`` rejects the ``k`` first of that
order::

    FRR_k = #{bona among the first k} / n_bona     FAR_k = #{spoof after the first k} / n_spoof
    threshold_0 = min(score) - 0.001,  threshold_k = k-th smallest score (k >= 1)

The EER point is the first ``k`` minimising ``|FRR_k - FAR_k|``; the function
returns ``((FRR_k + FAR_k) / 2, threshold_k)`` - no interpolation. With tied
scores the points inside a tie group are not reachable by any threshold (bona
fide of the group are rejected before its spoofs: a pessimistic tie break; all
scores equal gives EER 1.0, not 0.5); this is kept on purpose so that the values
equal the published ones. :func:`cm_eer` is exact and O(n log n) (two sorts and
``searchsorted``, not the Python loop of a brute force).

:func:`cm_eer_interpolated` is the speaker-verification convention of
:func:`spkpeft.eval.metrics.compute_eer` (accept iff ``score >= t``, thresholds
between distinct scores, linear interpolation of the crossing ``P_miss = P_fa``).

ASV error rates
---------------
:func:`asv_error_rates`, as ``obtain_asv_error_rates`` of the official code: the
ASV threshold ``t`` is :func:`cm_eer`'s threshold for (target, nontarget) ASV
scores, then (accept iff ``score >= t``)::

    Pfa_asv = #{nontarget >= t} / n_non     Pmiss_asv = #{target < t} / n_tar
    Pmiss_spoof_asv = #{spoof < t} / n_spoof     Pfa_spoof_asv = #{spoof >= t} / n_spoof

t-DCF
-----
Both t-DCFs are linear in ``(P_miss_cm, P_fa_cm)`` with non-negative weights, so
their minimum over the official position-wise DET curve is reached at a point
that a threshold can reach (between tie groups): the minimum is taken over the
tie-grouped operating points of :func:`spkpeft.eval.metrics.det_points` and
equals the official value.

* :func:`min_tdcf_2019`: the ASVspoof 2019 t-DCF (Kinnunen et al., Odyssey 2018;
  ``compute_tDCF`` of ``tDCF_python`` v1 = ``compute_tDCF_legacy`` of v2 and of the
  2021 eval-package)::

      C1 = P_tar (C_miss_cm - C_miss_asv Pmiss_asv) - P_non C_fa_asv Pfa_asv
      C2 = C_fa_cm P_spoof (1 - Pmiss_spoof_asv)
      min t-DCF = min_s (C1 P_miss_cm(s) + C2 P_fa_cm(s)) / min(C1, C2)

  Costs (:data:`TDCF_2019_COSTS`, ASVspoof 2019 evaluation plan and
  ``evaluate_tDCF_asvspoof19.py``): ``P_spoof = 0.05``, ``P_tar = (1 - 0.05) * 0.99``,
  ``P_non = (1 - 0.05) * 0.01``, ``C_miss_asv = 1``, ``C_fa_asv = 10``,
  ``C_miss_cm = 1``, ``C_fa_cm = 10``.
* :func:`min_tdcf_2021`: the revised t-DCF (Kinnunen et al., "Tandem assessment
  of spoofing countermeasures and automatic speaker verification: fundamentals",
  IEEE/ACM TASLP 2020; ASVspoof 2021 evaluation plan; ``compute_tDCF`` of
  ``tDCF_python`` v2 and of the 2021 eval-package)::

      C0 = P_tar C_miss Pmiss_asv + P_non C_fa Pfa_asv
      C1 = P_tar C_miss - C0
      C2 = P_spoof C_fa_spoof Pfa_spoof_asv
      min t-DCF = min_s (C0 + C1 P_miss_cm(s) + C2 P_fa_cm(s)) / (C0 + min(C1, C2))

  Costs (:data:`TDCF_2021_COSTS`, ``evaluate.py`` of the 2021 eval-package):
  ``P_spoof = 0.05``, ``P_tar = (1 - 0.05) * 0.99``, ``P_non = (1 - 0.05) * 0.01``,
  ``C_miss = 1``, ``C_fa = 10``, ``C_fa_spoof = 10``.

Both normalisations make 1.0 the cost of the better trivial CM (accept all or
reject all). Unlike the official code, fewer than 3 distinct CM scores are not
refused (the official package exits, asking for soft scores).

Per attack, per condition
-------------------------
* :func:`per_attack_eer`: each attack's spoofs against **all** bona fide
  (``EER_a = cm_eer(bona, {spoof of attack a})``; bona fide have no attack).
* :func:`per_condition_eer`: each condition's bona fide against the same
  condition's spoofs, pooled over attacks
  (``EER_c = cm_eer({bona of condition c}, {spoof of condition c})``), as the
  official ASVspoof 2021 evaluation package computes its per-condition pooled
  EERs (``main.py``: a factor of type ``both`` restricts bona fide and spoof
  trials alike; LA conditions C1..C7 are the codecs, DF C1..C9 the
  compressions, ``config.py``). A condition without bona fide or without
  spoofs has no EER and is left out.

Files
-----
(UTF-8, whitespace-separated fields; every line, blank ones included, is a record,
so errors name ``path:line``; an utterance may appear once per file.)

* CM protocol (ASVspoof 2019 LA/PA ``cm.*.trl.txt``): ``SPEAKER UTT ENV ATTACK KEY``
  with ``KEY`` ``bonafide`` or ``spoof``; ``ATTACK`` is ``-`` exactly for bona fide;
  ``ENV`` (``-`` in LA, the environment id in PA) is not used.
  :func:`read_cm_protocol`.
* ASV score file (the organisers' ``asv.*.scores.txt``): ``SOURCE KEY SCORE`` with
  ``KEY`` ``target``, ``nontarget`` or ``spoof``. :func:`read_asv_scores`.
* CM score file (``EXP/cm_scores/<set>/scores.txt`` of the ``cm`` task):
  ``UTT SCORE``. :func:`read_cm_scores`.
* Condition file (a data directory's ``utt2condition``, any order here):
  ``UTT CONDITION``. :func:`read_conditions`.
"""

from __future__ import annotations

import codecs
import math
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np

try:  # numpy >= 2
    from numpy._core import multiarray as np_multiarray
except ImportError:  # pragma: no cover  (numpy 1)
    from numpy.core import multiarray as np_multiarray

from spkpeft.errors import SpkpeftError, file_error
from spkpeft.io.records import read_records
from spkpeft.io.trials import parse_score
from spkpeft.eval.metrics import compute_eer, det_points

# ---------------------------------------------------------------- cost models


@dataclass(frozen=True)
class Tdcf2019Costs:
    """Parameters of the ASVspoof 2019 (legacy) t-DCF; names follow the official ``cost_model``."""

    p_spoof: float
    p_tar: float
    p_non: float
    c_miss_asv: float
    c_fa_asv: float
    c_miss_cm: float
    c_fa_cm: float


@dataclass(frozen=True)
class Tdcf2021Costs:
    """Parameters of the revised (ASVspoof 2021) t-DCF; names follow the official ``cost_model``."""

    p_spoof: float
    p_tar: float
    p_non: float
    c_miss: float
    c_fa: float
    c_fa_spoof: float


_P_SPOOF = 0.05
#: ASVspoof 2019 evaluation plan / ``evaluate_tDCF_asvspoof19.py``
TDCF_2019_COSTS = Tdcf2019Costs(p_spoof=_P_SPOOF, p_tar=(1 - _P_SPOOF) * 0.99, p_non=(1 - _P_SPOOF) * 0.01,
                                c_miss_asv=1.0, c_fa_asv=10.0, c_miss_cm=1.0, c_fa_cm=10.0)
#: ASVspoof 2021 evaluation plan / ``evaluate.py`` of the 2021 eval-package
TDCF_2021_COSTS = Tdcf2021Costs(p_spoof=_P_SPOOF, p_tar=(1 - _P_SPOOF) * 0.99, p_non=(1 - _P_SPOOF) * 0.01,
                                c_miss=1.0, c_fa=10.0, c_fa_spoof=10.0)


def _check_cost_model(costs: Tdcf2019Costs | Tdcf2021Costs) -> None:
    priors = (costs.p_tar, costs.p_non, costs.p_spoof)
    if any(not math.isfinite(p) or p < 0 for p in priors) or abs(sum(priors) - 1.0) > 1e-10:
        raise SpkpeftError(f"t-DCF priors must be non-negative and sum to 1, got p_tar={costs.p_tar:g}, "
                           f"p_non={costs.p_non:g}, p_spoof={costs.p_spoof:g}")
    for name, value in vars(costs).items():
        if name.startswith("c_") and not (math.isfinite(value) and value >= 0):
            raise SpkpeftError(f"t-DCF cost {name} must be a non-negative number, got {value!r}")


# ---------------------------------------------------------------- validation


def _as_class_scores(bona_scores: Sequence[float] | np.ndarray, spoof_scores: Sequence[float] | np.ndarray,
                     names: tuple[str, str] = ("bona fide", "spoof")) -> tuple[np.ndarray, np.ndarray]:
    """Two non-empty 1-D finite float64 arrays; raise SpkpeftError."""
    out = []
    for name, values in zip(names, (bona_scores, spoof_scores)):
        array = np.asarray(values, dtype=np.float64)
        if array.ndim != 1:
            raise SpkpeftError(f"{name} scores must be 1-D, got shape {array.shape}")
        if array.size == 0:
            raise SpkpeftError(f"need at least one {name} score")
        bad = ~np.isfinite(array)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise SpkpeftError(f"{int(bad.sum())} non-finite {name} score(s), the first is {array[i]!r} at index {i}")
        out.append(array)
    return out[0], out[1]


# ---------------------------------------------------------------- EER


def _official_det(bona: np.ndarray, spoof: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The official position-wise DET curve ``(frr, far, thresholds)``, ``n + 1`` points each.

    Without sorting the concatenation: in the stable order of ``[bona, spoof]``
    the bona fide ``T[i]`` sits after ``i`` bona fide and ``#{N < T[i]}`` spoofs,
    the spoof ``N[j]`` after ``j`` spoofs and ``#{T <= N[j]}`` bona fide.
    """
    tar, non = np.sort(bona), np.sort(spoof)
    n_tar, n_non = tar.size, non.size
    spoof_before_tar = np.searchsorted(non, tar, side="left")
    tar_before_spoof = np.searchsorted(tar, non, side="right")
    pos_tar = np.arange(1, n_tar + 1) + spoof_before_tar      # 1-based position of each bona fide
    pos_non = np.arange(1, n_non + 1) + tar_before_spoof
    n = n_tar + n_non
    rejected_tar = np.zeros(n + 1, dtype=np.int64)
    rejected_non = np.zeros(n + 1, dtype=np.int64)
    thresholds = np.empty(n + 1, dtype=np.float64)
    rejected_tar[pos_tar] = np.arange(1, n_tar + 1)
    rejected_non[pos_tar] = spoof_before_tar
    thresholds[pos_tar] = tar
    rejected_tar[pos_non] = tar_before_spoof
    rejected_non[pos_non] = np.arange(1, n_non + 1)
    thresholds[pos_non] = non
    thresholds[0] = min(tar[0], non[0]) - 0.001
    return rejected_tar / n_tar, (n_non - rejected_non) / n_non, thresholds


def cm_eer(bona_scores: Sequence[float] | np.ndarray,
           spoof_scores: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """ASVspoof EER ``(eer, threshold)``, exactly as the official ``compute_eer``.

    Official convention (see the module docstring): over the position-wise DET
    curve of the stable-sorted scores (bona fide first among equal scores), take
    the first point minimising ``|FRR - FAR|`` and return ``(FRR + FAR) / 2``
    there (no interpolation) and its threshold (the largest score rejected at
    that point, or ``min(score) - 0.001`` for accept-all). EER is a fraction.
    """
    bona, spoof = _as_class_scores(bona_scores, spoof_scores)
    frr, far, thresholds = _official_det(bona, spoof)
    k = int(np.argmin(np.abs(frr - far)))
    return float(np.mean((frr[k], far[k]))), float(thresholds[k])


def cm_eer_interpolated(bona_scores: Sequence[float] | np.ndarray,
                        spoof_scores: Sequence[float] | np.ndarray) -> float:
    """EER (fraction) with the interpolated-crossing convention of :func:`spkpeft.eval.metrics.compute_eer`.

    Accept iff ``score >= t``, thresholds between distinct scores (a tie group
    moves as a whole), linear interpolation where ``P_miss = P_fa``; all scores
    tied gives 0.5.
    """
    bona, spoof = _as_class_scores(bona_scores, spoof_scores)
    return compute_eer(np.concatenate([bona, spoof]),
                       np.concatenate([np.ones(bona.size, dtype=np.bool_), np.zeros(spoof.size, dtype=np.bool_)]))


# ---------------------------------------------------------------- ASV


class AsvErrorRates(NamedTuple):
    """ASV error rates at the ASV EER threshold (fractions), in the order the official code returns them."""

    pfa_asv: float
    pmiss_asv: float
    pmiss_spoof_asv: float
    pfa_spoof_asv: float
    threshold: float


def asv_error_rates(asv_target: Sequence[float] | np.ndarray, asv_nontarget: Sequence[float] | np.ndarray,
                    asv_spoof: Sequence[float] | np.ndarray) -> AsvErrorRates:
    """ASV false-alarm and miss rates at the threshold of :func:`cm_eer` of (target, nontarget).

    As the official ``obtain_asv_error_rates``: accept iff ``score >= threshold``;
    ``Pfa_asv = #{non >= t}/n_non``, ``Pmiss_asv = #{tar < t}/n_tar``,
    ``Pmiss_spoof_asv = #{spoof < t}/n_spoof``, ``Pfa_spoof_asv = 1 - Pmiss_spoof_asv``
    (counted as ``#{spoof >= t}/n_spoof``). Spoof trials are required.
    """
    tar, non = _as_class_scores(asv_target, asv_nontarget, ("ASV target", "ASV nontarget"))
    _, spoof = _as_class_scores(tar, asv_spoof, ("ASV target", "ASV spoof"))
    _, t = cm_eer(tar, non)
    return AsvErrorRates(pfa_asv=int(np.count_nonzero(non >= t)) / non.size,
                         pmiss_asv=int(np.count_nonzero(tar < t)) / tar.size,
                         pmiss_spoof_asv=int(np.count_nonzero(spoof < t)) / spoof.size,
                         pfa_spoof_asv=int(np.count_nonzero(spoof >= t)) / spoof.size,
                         threshold=t)


# ---------------------------------------------------------------- t-DCF


def _cm_operating_points(bona_scores, spoof_scores) -> tuple[np.ndarray, np.ndarray]:
    """``(P_miss_cm, P_fa_cm)`` at every threshold between tie groups (accept all ... reject all)."""
    bona, spoof = _as_class_scores(bona_scores, spoof_scores)
    p_fa, p_miss = det_points(np.concatenate([bona, spoof]),
                              np.concatenate([np.ones(bona.size, dtype=np.bool_),
                                              np.zeros(spoof.size, dtype=np.bool_)]))
    return p_miss, p_fa


def _check_rates(asv: AsvErrorRates, names: Sequence[str]) -> None:
    for name in names:
        value = getattr(asv, name)
        if value is None or not (0.0 <= value <= 1.0):
            raise SpkpeftError(f"ASV error rate {name} must be a fraction in [0, 1], got {value!r}")


def min_tdcf_2019(bona_scores: Sequence[float] | np.ndarray, spoof_scores: Sequence[float] | np.ndarray,
                  asv: AsvErrorRates, costs: Tdcf2019Costs = TDCF_2019_COSTS) -> float:
    """ASVspoof 2019 normalised minimum t-DCF (official ``compute_tDCF`` v1 / ``compute_tDCF_legacy``).

    ``min_s (C1 P_miss_cm(s) + C2 P_fa_cm(s)) / min(C1, C2)`` with
    ``C1 = P_tar (C_miss_cm - C_miss_asv Pmiss_asv) - P_non C_fa_asv Pfa_asv`` and
    ``C2 = C_fa_cm P_spoof (1 - Pmiss_spoof_asv)``; uses ``asv.pfa_asv``,
    ``asv.pmiss_asv``, ``asv.pmiss_spoof_asv``. Negative or zero weights are an error.
    """
    _check_cost_model(costs)
    _check_rates(asv, ("pfa_asv", "pmiss_asv", "pmiss_spoof_asv"))
    c1 = costs.p_tar * (costs.c_miss_cm - costs.c_miss_asv * asv.pmiss_asv) - costs.p_non * costs.c_fa_asv * asv.pfa_asv
    c2 = costs.c_fa_cm * costs.p_spoof * (1 - asv.pmiss_spoof_asv)
    if c1 < 0 or c2 < 0:
        raise SpkpeftError(f"t-DCF weights must be non-negative, got C1={c1:g}, C2={c2:g}; "
                           f"check the ASV error rates")
    if min(c1, c2) == 0:
        raise SpkpeftError(f"the 2019 t-DCF is undefined when C1 or C2 is 0 (C1={c1:g}, C2={c2:g})")
    p_miss, p_fa = _cm_operating_points(bona_scores, spoof_scores)
    return float(np.min((c1 * p_miss + c2 * p_fa) / min(c1, c2)))


@dataclass(frozen=True)
class Tdcf2021Coefficients:
    """``C0, C1, C2`` of the revised t-DCF (the official package's "C012"); ``source``:
    ``asv_scores`` (computed here from ASV scores) or ``official`` (the organisers'
    pre-computed ``LA-C012-<subset>.npy``, :func:`read_c012`)."""

    c0: float
    c1: float
    c2: float
    source: str = "asv_scores"

    def close_to(self, other: "Tdcf2021Coefficients", rtol: float = 1e-9) -> bool:
        return bool(np.allclose([self.c0, self.c1, self.c2], [other.c0, other.c1, other.c2], rtol=rtol, atol=0.0))


def tdcf_2021_coefficients(asv: AsvErrorRates, costs: Tdcf2021Costs = TDCF_2021_COSTS) -> Tdcf2021Coefficients:
    """``C0 = P_tar C_miss Pmiss_asv + P_non C_fa Pfa_asv``, ``C1 = P_tar C_miss - C0``,
    ``C2 = P_spoof C_fa_spoof Pfa_spoof_asv`` (``get_tDCF_C012`` of the 2021 eval-package's
    ``eval_wrapper.py``); uses ``asv.pfa_asv``, ``asv.pmiss_asv``, ``asv.pfa_spoof_asv``."""
    _check_cost_model(costs)
    _check_rates(asv, ("pfa_asv", "pmiss_asv", "pfa_spoof_asv"))
    c0 = costs.p_tar * costs.c_miss * asv.pmiss_asv + costs.p_non * costs.c_fa * asv.pfa_asv
    c1 = costs.p_tar * costs.c_miss - c0
    c2 = costs.p_spoof * costs.c_fa_spoof * asv.pfa_spoof_asv
    return Tdcf2021Coefficients(c0, c1, c2)


def min_tdcf_2021_from(bona_scores: Sequence[float] | np.ndarray, spoof_scores: Sequence[float] | np.ndarray,
                       coefficients: Tdcf2021Coefficients) -> float:
    """``min_s (C0 + C1 P_miss_cm(s) + C2 P_fa_cm(s)) / (C0 + min(C1, C2))`` (``get_mintDCF_eer``
    of the 2021 eval-package, given its C012). Negative weights are an error."""
    c0, c1, c2 = coefficients.c0, coefficients.c1, coefficients.c2
    if not all(math.isfinite(c) for c in (c0, c1, c2)):
        raise SpkpeftError(f"t-DCF weights must be finite, got C0={c0:g}, C1={c1:g}, C2={c2:g}")
    if c0 < 0 or c1 < 0 or c2 < 0:
        raise SpkpeftError(f"t-DCF weights must be non-negative, got C0={c0:g}, C1={c1:g}, C2={c2:g}; "
                           f"check the ASV error rates")
    default = c0 + min(c1, c2)
    if default == 0:
        raise SpkpeftError("the 2021 t-DCF is undefined when C0 + min(C1, C2) is 0")
    p_miss, p_fa = _cm_operating_points(bona_scores, spoof_scores)
    return float(np.min((c0 + c1 * p_miss + c2 * p_fa) / default))


def min_tdcf_2021(bona_scores: Sequence[float] | np.ndarray, spoof_scores: Sequence[float] | np.ndarray,
                  asv: AsvErrorRates, costs: Tdcf2021Costs = TDCF_2021_COSTS) -> float:
    """Revised (ASVspoof 2021) normalised minimum t-DCF (official ``compute_tDCF`` v2 / 2021 eval-package)
    with the coefficients of :func:`tdcf_2021_coefficients` (:func:`min_tdcf_2021_from`)."""
    return min_tdcf_2021_from(bona_scores, spoof_scores, tdcf_2021_coefficients(asv, costs))


# ---------------------------------------------------------------- per attack

BONAFIDE, SPOOF = "bonafide", "spoof"


def _split_by_key(scores: Sequence[float] | np.ndarray, keys: Sequence[str], groups: Sequence[str],
                  what: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(scores float64, is_bona bool, groups object)`` after checking lengths and keys."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1 or not (s.size == len(keys) == len(groups)):
        raise SpkpeftError(f"per_{what}_eer needs 1-D scores, keys and {what}s of equal lengths, got "
                           f"{s.size}, {len(keys)} and {len(groups)}")
    k = np.asarray(keys, dtype=object)
    bad = ~np.isin(k, (BONAFIDE, SPOOF))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise SpkpeftError(f"key must be '{BONAFIDE}' or '{SPOOF}', got {k[i]!r} at index {i}")
    return s, k == BONAFIDE, np.asarray(groups, dtype=object)


def _eer_function(interpolated: bool):
    return cm_eer_interpolated if interpolated else (lambda b, sp: cm_eer(b, sp)[0])


def per_attack_eer(scores: Sequence[float] | np.ndarray, keys: Sequence[str], attacks: Sequence[str],
                   interpolated: bool = False) -> dict[str, float]:
    """EER (fraction) of each attack's spoofs against **all** bona fide utterances.

    ``keys[i]`` is ``bonafide`` or ``spoof``, ``attacks[i]`` the attack id of a
    spoof (ignored for bona fide). Returns ``{attack: eer}`` sorted by attack id;
    :func:`cm_eer` (official) unless ``interpolated`` (:func:`cm_eer_interpolated`).
    """
    s, is_bona, a = _split_by_key(scores, keys, attacks, "attack")
    bona = s[is_bona]
    eer = _eer_function(interpolated)
    return {attack: eer(bona, s[~is_bona & (a == attack)]) for attack in sorted(set(a[~is_bona].tolist()))}


def per_condition_eer(scores: Sequence[float] | np.ndarray, keys: Sequence[str], conditions: Sequence[str],
                      interpolated: bool = False) -> dict[str, float]:
    """EER (fraction) of each condition: its bona fide against its spoofs (official ASVspoof 2021 grouping).

    ``EER_c = cm_eer({s_i: key_i = bonafide, cond_i = c}, {s_i: key_i = spoof, cond_i = c})``,
    all attacks pooled. Returns ``{condition: eer}`` sorted by condition id; a condition
    without bona fide or without spoof utterances is left out. :func:`cm_eer` (official)
    unless ``interpolated`` (:func:`cm_eer_interpolated`).
    """
    s, is_bona, c = _split_by_key(scores, keys, conditions, "condition")
    eer = _eer_function(interpolated)
    out = {}
    for condition in sorted(set(c.tolist())):
        here = c == condition
        if (here & is_bona).any() and (here & ~is_bona).any():
            out[condition] = eer(s[here & is_bona], s[here & ~is_bona])
    return out


# ---------------------------------------------------------------- readers


class CmProtocol(NamedTuple):
    """A CM protocol file, in file order: utterance ids, keys, attack ids, speakers."""

    utts: list[str]
    keys: list[str]
    attacks: list[str]
    speakers: list[str]


class AsvScores(NamedTuple):
    """ASV scores split by key (float64 arrays in file order)."""

    target: np.ndarray
    nontarget: np.ndarray
    spoof: np.ndarray


def _check_new(seen: dict[str, int], utt: str, path: str | Path, number: int) -> None:
    first = seen.setdefault(utt, number)
    if first != number:
        raise file_error(path, f"duplicate utterance '{utt}' (first on line {first})", number)


def read_cm_protocol(path: str | Path) -> CmProtocol:
    """Read a CM protocol ``SPEAKER UTT ENV ATTACK KEY`` (ASVspoof 2019 ``cm.*.trl.txt``).

    Errors (naming path:line): unreadable or empty file, a line without 5 fields,
    a key other than ``bonafide``/``spoof``, a bona fide line whose attack is not
    ``-``, a spoof line whose attack is ``-``, a duplicate utterance.
    """
    out = CmProtocol([], [], [], [])
    seen: dict[str, int] = {}
    layout = "SPEAKER UTT ENV ATTACK bonafide|spoof"
    for number, (speaker, utt, _env, attack, key) in read_records(path, "CM protocol", 5, layout):
        if key not in (BONAFIDE, SPOOF):
            raise file_error(path, f"key must be '{BONAFIDE}' or '{SPOOF}', found '{key}'", number)
        if key == BONAFIDE and attack != "-":
            raise file_error(path, f"a bona fide utterance must have attack '-', found '{attack}'", number)
        if key == SPOOF and attack == "-":
            raise file_error(path, "a spoof utterance needs an attack id, found '-'", number)
        _check_new(seen, utt, path, number)
        out.utts.append(utt)
        out.keys.append(key)
        out.attacks.append(attack)
        out.speakers.append(speaker)
    return out


_ASV_KEYS = ("target", "nontarget", "spoof")


def read_asv_scores(path: str | Path) -> AsvScores:
    """Read an ASV score file ``SOURCE KEY SCORE`` (``KEY`` target|nontarget|spoof).

    Errors (naming path:line): unreadable or empty file, a line without 3 fields,
    an unknown key, a score that is not a finite number; a file without target,
    nontarget or spoof trials is an error naming the file.
    """
    groups: dict[str, list[float]] = {key: [] for key in _ASV_KEYS}
    for number, (_source, key, text) in read_records(path, "ASV score", 3, "SOURCE target|nontarget|spoof SCORE"):
        if key not in groups:
            raise file_error(path, f"key must be 'target', 'nontarget' or 'spoof', found '{key}'", number)
        groups[key].append(parse_score(text, path, number))
    for key in _ASV_KEYS:
        if not groups[key]:
            raise file_error(path, f"no '{key}' trials (the t-DCF needs target, nontarget and spoof ASV scores)")
    return AsvScores(*(np.array(groups[key], dtype=np.float64) for key in _ASV_KEYS))


def read_cm_scores(path: str | Path) -> dict[str, float]:
    """Read a CM score file ``UTT SCORE`` -> ``{utt: score}`` in file order.

    Errors (naming path:line): unreadable or empty file, a line without 2 fields,
    a score that is not a finite number, a duplicate utterance.
    """
    scores: dict[str, float] = {}
    seen: dict[str, int] = {}
    for number, (utt, text) in read_records(path, "CM score", 2, "UTT SCORE"):
        value = parse_score(text, path, number)
        _check_new(seen, utt, path, number)
        scores[utt] = value
    return scores


#: the classes a pickled numpy object array of a dict of floats refers to (``ndarray.dump``)
_C012_PICKLE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
}


class _C012Unpickler(pickle.Unpickler):
    """Unpickles only numpy arrays, dtypes and scalars (:data:`_C012_PICKLE_GLOBALS`): a C012
    file can hold nothing that runs code."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _C012_PICKLE_GLOBALS:
            raise pickle.UnpicklingError(f"refers to {module}.{name}, which a C012 file does not hold")
        if module.endswith("multiarray"):
            return getattr(np_multiarray, name)
        return getattr(np if module == "numpy" else codecs, name)


def read_official_c012(path: str | Path, condition: tuple[str, str] = ("Pooled", "Pooled")) -> Tdcf2021Coefficients:
    """The pooled ``C0, C1, C2`` of an official pre-computed C012 file of the ASVspoof 2021
    eval-package (``keys/LA/LA-C012-{eval,prog,hidden}.npy``: ``np.array(C012).dump(path)`` of
    ``C012[attack][codec] = {"C0", "C1", "C2"}``, ``config.py``/``eval_wrapper.py``), read
    without running code from the file.  ``condition``: the ``(attack, codec)`` entry (the
    official pooled result reads ``("Pooled", "Pooled")``)."""
    try:
        with open(path, "rb") as f:
            table = _C012Unpickler(f).load()
    except OSError as err:
        raise file_error(path, f"cannot read the C012 file: {err.strerror or err}") from err
    except Exception as err:  # noqa: BLE001  (any malformed pickle)
        raise file_error(path, f"not an ASVspoof 2021 C012 file ({err})") from err
    table = table.tolist() if isinstance(table, np.ndarray) else table
    try:
        entry = table[condition[0]][condition[1]]
        values = [float(entry[key]) for key in ("C0", "C1", "C2")]
    except (KeyError, TypeError, ValueError) as err:
        raise file_error(path, f"has no C0, C1, C2 for {condition[0]}/{condition[1]} ({err!r})") from err
    return Tdcf2021Coefficients(*values, source="official")


def read_c012(path: str | Path) -> Tdcf2021Coefficients:
    """Read ``asv/<set>.c012`` (one line ``C0 C1 C2``: the official pooled coefficients, written
    by stage 1 from :func:`read_official_c012`)."""
    records = list(read_records(path, "C012", 3, "C0 C1 C2"))
    if len(records) != 1:
        raise file_error(path, f"expected one line 'C0 C1 C2', found {len(records)}")
    number, fields = records[0]
    return Tdcf2021Coefficients(*(parse_score(text, path, number) for text in fields), source="official")


def read_any_c012(path: str | Path) -> Tdcf2021Coefficients:
    """:func:`read_official_c012` of a pickled C012 file (``.npy``), else :func:`read_c012`."""
    return read_official_c012(path) if str(path).endswith(".npy") else read_c012(path)


def read_conditions(path: str | Path) -> dict[str, str]:
    """Read a condition file ``UTT CONDITION`` (a data directory's ``utt2condition``) -> ``{utt: condition}``.

    Errors (naming path:line): unreadable or empty file, a line without 2 fields, a duplicate utterance.
    """
    conditions: dict[str, str] = {}
    seen: dict[str, int] = {}
    for number, (utt, condition) in read_records(path, "condition", 2, "UTT CONDITION"):
        _check_new(seen, utt, path, number)
        conditions[utt] = condition
    return conditions


def _align(protocol: CmProtocol, table: dict, what: str, protocol_path: str | Path, path: str | Path) -> list:
    """``table``'s values in protocol order; an utterance of ``table`` not in the protocol or vice versa is an error."""
    wanted = set(protocol.utts)
    for number, utt in enumerate(table, start=1):
        if utt not in wanted:
            raise file_error(path, f"utterance '{utt}' is not in the protocol {protocol_path}", number)
    out = []
    for index, utt in enumerate(protocol.utts):
        if utt not in table:
            raise file_error(protocol_path, f"utterance '{utt}' has no {what} in {path}", index + 1)
        out.append(table[utt])
    return out


def align_cm_scores(protocol: CmProtocol, scores: dict[str, float],
                    protocol_path: str | Path, scores_path: str | Path) -> np.ndarray:
    """Scores in protocol order (float64); a scored utterance not in the protocol or vice versa is an error."""
    return np.array(_align(protocol, scores, "score", protocol_path, scores_path), dtype=np.float64)


def align_conditions(protocol: CmProtocol, conditions: dict[str, str],
                     protocol_path: str | Path, conditions_path: str | Path) -> list[str]:
    """Conditions in protocol order; an utterance of one file missing from the other is an error."""
    return _align(protocol, conditions, "condition", protocol_path, conditions_path)


# ---------------------------------------------------------------- all at once


def compute_cm_metrics(scores: np.ndarray, keys: Sequence[str], attacks: Sequence[str],
                       asv: AsvScores | None = None, conditions: Sequence[str] | None = None,
                       c012: Tdcf2021Coefficients | None = None) -> dict:
    """The CLI's result: ``n_bonafide``, ``n_spoof``, ``eer_pct`` (:func:`cm_eer`), with ``asv``
    also ``min_tdcf`` (:func:`min_tdcf_2019`), with ``asv`` or ``c012`` ``min_tdcf_2021`` (with
    ``c012``, the organisers' pre-computed pooled coefficients, as the official package uses them
    by default, and then ``tdcf_2021_coefficients: "official"``; else computed from ``asv`` by
    :func:`tdcf_2021_coefficients`), ``per_attack``
    (``{attack: eer_pct}``, :func:`per_attack_eer`) and, with ``conditions`` (one per score),
    ``per_condition`` (``{condition: eer_pct}``, :func:`per_condition_eer`). Plain Python
    numbers, JSON-ready."""
    s = np.asarray(scores, dtype=np.float64)
    is_bona = np.asarray(keys, dtype=object) == BONAFIDE
    bona, spoof = s[is_bona], s[~is_bona]
    out: dict = {"n_bonafide": int(bona.size), "n_spoof": int(spoof.size), "eer_pct": 100.0 * cm_eer(bona, spoof)[0]}
    if asv is not None:
        rates = asv_error_rates(asv.target, asv.nontarget, asv.spoof)
        out["min_tdcf"] = min_tdcf_2019(bona, spoof, rates)
        c012 = c012 or tdcf_2021_coefficients(rates)
    if c012 is not None:
        out["min_tdcf_2021"] = min_tdcf_2021_from(bona, spoof, c012)
        if c012.source == "official":
            out["tdcf_2021_coefficients"] = "official"
    out["per_attack"] = {a: 100.0 * e for a, e in per_attack_eer(s, keys, attacks).items()}
    if conditions is not None:
        out["per_condition"] = {c: 100.0 * e for c, e in per_condition_eer(s, keys, conditions).items()}
    return out
