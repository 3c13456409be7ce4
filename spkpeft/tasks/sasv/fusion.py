"""Score-level fusion of a speaker-verification (ASV) score and a countermeasure (CM) score into one SASV score.

A fusion is fitted on **development trials only** and then scores any trials from their two
scores alone:

* :meth:`ScoreFusion.fit` takes one :class:`DevTrials` (ASV score, CM score and key of every
  development trial) and nothing else: there is no argument through which an evaluation key,
  score or threshold could enter.  A fit refuses anything that is not a :class:`DevTrials`.
* :meth:`FittedFusion.score` takes the two per-trial score arrays and no key.

So no threshold or fusion weight is ever fitted on evaluation trials (tested on the signatures).
Inputs: ``asv`` a cosine of the enrollment model and the test embedding (higher = same speaker),
``cm`` a CM score of the test utterance (higher = more bona fide; the ``cm`` task's log
posterior ratio).  Output: higher = accept (target).

Fusions (:data:`FUSIONS`)
-------------------------
* ``score_sum`` -- the sum of the two scores after each is calibrated to a log-likelihood ratio
  (:func:`spkpeft.eval.calibration.fit_calibration`, prior-weighted logistic regression, ``p_eff
  = 0.5``): ``llr_asv`` from the development target vs nontarget trials, ``llr_cm`` from the
  bona fide (target + nontarget) vs spoof trials::

      s = (a_asv asv + b_asv) + (a_cm cm + b_cm)

  Summing LLRs is the naive-Bayes combination of the two detectors (Wang et al., "Revisiting and
  improving scoring fusion for spoofing-aware speaker verification using compositional data
  analysis", Interspeech 2024, and the ``Tool-score-fusion`` of the asvspoof5 repository, whose
  linear fusion adds calibrated LLRs).
* ``raw_sum`` -- ``s = asv + cm`` without calibration: Baseline 1 of SASV 2022 (Jung et al.,
  "SASV 2022: the first spoofing-aware speaker verification challenge", Interspeech 2022: the sum
  of the ECAPA-TDNN cosine and the AASIST score).  Nothing is fitted.
* ``product_rule`` -- the probabilistic product rule of Zhang, Zhu & Duan ("A probabilistic
  fusion framework for spoofing aware speaker verification", Odyssey 2022; ``SASV_PR``):
  ``P(target bona fide | x) = P_sv P_cm`` with ``P_sv = sigmoid(llr_asv)`` and ``P_cm =
  sigmoid(llr_cm)``, the probabilities of the calibrated scores at equal priors (their
  ``pr_c`` variant calibrates the SV cosine by Platt scaling on development trials; here both
  sides are calibrated the same way).  Scored as ``log P_sv + log P_cm = -softplus(-llr_asv) -
  softplus(-llr_cm)``, the same order as the product without underflow.
* ``logistic_regression`` -- ``s = w_asv asv + w_cm cm + b`` with the weights of a prior-weighted
  logistic regression (``p_eff = 0.5``, the classes weighted to equal total weight) of target
  against nontarget + spoof development trials (the linear fusion of the SASV literature, e.g.
  Shim et al., "Baseline systems for the first spoofing-aware speaker verification challenge",
  Odyssey 2022), the scores standardised on the development trials first.
* ``cascade`` -- the CM gates, then ASV decides (the tandem system of the t-DCF): a trial whose
  CM score is below the gate ``tau`` is rejected whatever its ASV score.  ``tau`` is the
  development CM score (from a grid of 200 quantiles of the development trials' CM scores) that
  minimises the cascade's development SASV-EER.  Scored as ``asv + GATE`` for trials that pass
  and ``asv`` for the others (``GATE = 1e6``, far above any cosine), so that every passing trial
  ranks above every rejected one and ASV orders each group.

The embedding fusion of SASV 2022 Baseline 2 needs embeddings, not scores:
:mod:`spkpeft.tasks.sasv.embedding_fusion`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from spkpeft.errors import SpkpeftError
from spkpeft.eval.calibration import fit_calibration
from spkpeft.eval.sasv_metrics import NONTARGET, TARGET, keyed_scores, sasv_eers

GATE = 1.0e6
CASCADE_GRID = 200


# ---------------------------------------------------------------- the only data a fusion is fitted on


@dataclass(frozen=True)
class DevTrials:
    """Development trials: ASV and CM score and key (``target|nontarget|spoof``) of each one.

    The only argument of every :meth:`ScoreFusion.fit`; ``set_name`` says where they came from
    (reports name it)."""

    asv: np.ndarray
    cm: np.ndarray
    keys: tuple[str, ...]
    set_name: str = "dev"

    def __post_init__(self) -> None:
        asv = np.asarray(self.asv, dtype=np.float64)
        cm = np.asarray(self.cm, dtype=np.float64)
        keys = tuple(self.keys)
        if not (asv.ndim == cm.ndim == 1 and asv.size == cm.size == len(keys)):
            raise SpkpeftError(f"development trials need one ASV score, CM score and key each, got "
                               f"{asv.size}, {cm.size} and {len(keys)}")
        for scores in (asv, cm):
            keyed_scores(scores, keys)  # checks keys, finiteness, all three classes present
        object.__setattr__(self, "asv", asv)
        object.__setattr__(self, "cm", cm)
        object.__setattr__(self, "keys", keys)

    def mask(self, *keys: str) -> np.ndarray:
        k = np.asarray(self.keys, dtype=object)
        return np.isin(k, keys)


def _require_dev(dev: object) -> DevTrials:
    if not isinstance(dev, DevTrials):
        raise SpkpeftError(f"a fusion is fitted on development trials (DevTrials) only, got {type(dev).__name__}")
    return dev


# ---------------------------------------------------------------- fitted fusions


@dataclass(frozen=True)
class FittedFusion:
    """A fusion with its parameters (JSON-ready): ``score(asv, cm)`` for any trials (no keys involved)."""

    name: str
    params: dict

    def score(self, asv: Sequence[float] | np.ndarray, cm: Sequence[float] | np.ndarray) -> np.ndarray:
        """Fused scores (float64), higher = accept."""
        a, c = np.asarray(asv, dtype=np.float64), np.asarray(cm, dtype=np.float64)
        if a.shape != c.shape or a.ndim != 1:
            raise SpkpeftError(f"fusion needs 1-D ASV and CM scores of equal lengths, got {a.shape} and {c.shape}")
        return fusion_named(self.name).apply(self.params, a, c)


class ScoreFusion:
    """A score-level fusion (module docstring): ``fit(dev) -> FittedFusion``; ``apply(params, asv, cm)``
    scores with stored parameters."""

    name = ""

    def fit(self, dev: DevTrials) -> FittedFusion:
        raise NotImplementedError

    def apply(self, params: dict, asv: np.ndarray, cm: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def calibrate_components(dev: DevTrials) -> dict:
    """LLR calibrations of the ASV score (target vs nontarget) and the CM score (bona fide vs spoof)
    on the development trials, as ``{asv_scale, asv_offset, cm_scale, cm_offset}``."""
    bona = dev.mask(TARGET, NONTARGET)
    asv = fit_calibration(dev.asv[bona], dev.mask(TARGET)[bona])
    cm = fit_calibration(dev.cm, bona)
    return {"asv_scale": asv.scale, "asv_offset": asv.offset, "cm_scale": cm.scale, "cm_offset": cm.offset}


def _llrs(p: dict, asv: np.ndarray, cm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return p["asv_scale"] * asv + p["asv_offset"], p["cm_scale"] * cm + p["cm_offset"]


class ScoreSum(ScoreFusion):
    name = "score_sum"

    def fit(self, dev: DevTrials) -> FittedFusion:
        return FittedFusion(self.name, calibrate_components(_require_dev(dev)))

    def apply(self, params: dict, asv: np.ndarray, cm: np.ndarray) -> np.ndarray:
        llr_asv, llr_cm = _llrs(params, asv, cm)
        return llr_asv + llr_cm


class RawSum(ScoreFusion):
    name = "raw_sum"

    def fit(self, dev: DevTrials) -> FittedFusion:
        _require_dev(dev)
        return FittedFusion(self.name, {})

    def apply(self, params: dict, asv: np.ndarray, cm: np.ndarray) -> np.ndarray:
        return asv + cm


def log_sigmoid(x: np.ndarray) -> np.ndarray:
    """``log(1 / (1 + e^-x)) = -softplus(-x)``, stable for any ``x``."""
    return -np.logaddexp(0.0, -x)


class ProductRule(ScoreFusion):
    name = "product_rule"

    def fit(self, dev: DevTrials) -> FittedFusion:
        return FittedFusion(self.name, calibrate_components(_require_dev(dev)))

    def apply(self, params: dict, asv: np.ndarray, cm: np.ndarray) -> np.ndarray:
        llr_asv, llr_cm = _llrs(params, asv, cm)
        return log_sigmoid(llr_asv) + log_sigmoid(llr_cm)


class LogisticRegressionFusion(ScoreFusion):
    name = "logistic_regression"

    def fit(self, dev: DevTrials) -> FittedFusion:
        from sklearn.linear_model import LogisticRegression

        dev = _require_dev(dev)
        x = np.stack([dev.asv, dev.cm], axis=1)
        centre, spread = x.mean(axis=0), x.std(axis=0)
        if not np.all(spread > 0):
            raise SpkpeftError(f"{dev.set_name}: the ASV or CM development scores are all equal; nothing to fit")
        y = dev.mask(TARGET)
        weight = np.where(y, 0.5 / np.count_nonzero(y), 0.5 / np.count_nonzero(~y))
        model = LogisticRegression(C=1.0e4, tol=1e-10, max_iter=10000)
        model.fit((x - centre) / spread, y.astype(np.int64), sample_weight=weight)
        w = model.coef_[0] / spread
        b = float(model.intercept_[0] - np.dot(model.coef_[0], centre / spread))
        return FittedFusion(self.name, {"w_asv": float(w[0]), "w_cm": float(w[1]), "bias": b})

    def apply(self, params: dict, asv: np.ndarray, cm: np.ndarray) -> np.ndarray:
        return params["w_asv"] * asv + params["w_cm"] * cm + params["bias"]


def cascade_scores(asv: np.ndarray, cm: np.ndarray, tau: float) -> np.ndarray:
    """``asv + GATE`` where ``cm >= tau`` (the CM lets the trial through), ``asv`` elsewhere."""
    if asv.size and np.max(np.abs(asv)) >= GATE / 2:
        raise SpkpeftError(f"cascade: ASV scores must stay below {GATE / 2:g} in magnitude (cosines do)")
    return asv + np.where(cm >= tau, GATE, 0.0)


class Cascade(ScoreFusion):
    name = "cascade"

    def fit(self, dev: DevTrials) -> FittedFusion:
        dev = _require_dev(dev)
        grid = np.unique(np.quantile(dev.cm, np.linspace(0.0, 1.0, CASCADE_GRID)))
        best_tau, best_eer = -math.inf, math.inf
        for tau in grid:
            eer = sasv_eers(keyed_scores(cascade_scores(dev.asv, dev.cm, tau), dev.keys)).sasv
            if eer < best_eer:
                best_tau, best_eer = float(tau), eer
        return FittedFusion(self.name, {"cm_threshold": best_tau, "dev_sasv_eer_pct": 100.0 * best_eer})

    def apply(self, params: dict, asv: np.ndarray, cm: np.ndarray) -> np.ndarray:
        return cascade_scores(asv, cm, params["cm_threshold"])


#: ``name -> fusion`` (score-level; ``embedding`` lives in :mod:`spkpeft.tasks.sasv.embedding_fusion`)
FUSIONS: dict[str, ScoreFusion] = {f.name: f for f in (ScoreSum(), RawSum(), ProductRule(),
                                                       LogisticRegressionFusion(), Cascade())}

#: the components alone, scored like fusions (for the reports' "each component alone" rows)
COMPONENTS = {"asv_only": lambda a, c: a, "cm_only": lambda a, c: c}


def fusion_named(name: str) -> ScoreFusion:
    """The score-level fusion called ``name``; an unknown name lists the known ones."""
    if name not in FUSIONS:
        raise SpkpeftError(f"unknown score fusion '{name}' (expected one of: {', '.join(FUSIONS)})")
    return FUSIONS[name]
