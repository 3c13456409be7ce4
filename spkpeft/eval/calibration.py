"""Score calibration: an affine map of scores to log-likelihood ratios, fitted by logistic regression.

Model (Brümmer & du Preez 2006, Sec. 5; Brümmer's BOSARIS toolkit ``train_linear_calibration``)
-------------------------------------------------------------------------------------------------
The calibrated log-likelihood ratio of a score ``s`` (raw cosine or S-/AS-normalised) is::

    llr(s) = a s + b

fitted on a calibration trial list (held-out training speakers, never the test
trials) by prior-weighted logistic regression: ``a s + b + logit(p_eff)`` models the
log posterior odds of a target at the effective prior ``p_eff`` (default 0.5), i.e.
``(a, b)`` minimise::

    p_eff mean_tar log(1 + e^{-(a s + b + logit p_eff)})
      + (1 - p_eff) mean_non log(1 + e^{a s + b + logit p_eff}) + a_z^2 / (2 C)

(the ``Cllr``-type objective of Brümmer's "prior-weighted" calibration, with a
weak ridge, ``C`` = :data:`DEFAULT_C`, that keeps ``a`` finite when the calibration
trials happen to be separable). The ridge acts on the scale of the standardised
scores ``z = (s - mean) / sd`` (fit ``a_z z + b_z``, then ``a = a_z / sd``,
``b = b_z - a_z mean / sd``), so its (negligible) pull does not depend on the score
range (cosines, normalised scores). It is solved with scikit-learn's
``LogisticRegression`` with sample weights ``p_eff / n_tar`` (targets) and
``(1 - p_eff) / n_non`` (non-targets) so that each class carries its prior whatever
the trial counts, and ``b = intercept - logit(p_eff)``.

Decision: accept a trial when ``llr >= threshold_llr``, the Bayes threshold
``log((1 - p) / p)`` of the operating point ``p = p_target`` (default 0.01, unit
costs); for ``a > 0`` that is ``s >= threshold_raw = (threshold_llr - b) / a``.

Stored calibration (``EXP/calibration.json``; ``EXP/calibration/<norm>.json`` per normalisation)
--------------------------------------------------------------------------------------------
A JSON object written atomically::

    {"method": "logistic_regression", "scale": a, "offset": b,
     "norm": "none"|"snorm"|"asnorm", "p_target": p, "threshold_llr": t_llr,
     "threshold_raw": t_raw (null when a <= 0), "p_eff": 0.5, ...}

Further keys (the calibration trial list, counts, Cllr before and after) are kept
as ``extra`` and written back unchanged.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from spkpeft.errors import SpkpeftError, file_error
from spkpeft.eval.metrics import _as_scores_labels, bayes_threshold
from spkpeft.io.atomic import write_json_atomic
from spkpeft.io.trials import NORMS

METHOD = "logistic_regression"
DEFAULT_P_EFF = 0.5
DEFAULT_P_TARGET = 0.01
DEFAULT_C = 1.0e4
#: keys a stored calibration must have, with their types
REQUIRED = {"method": str, "scale": (int, float), "offset": (int, float), "norm": str, "p_target": (int, float)}
#: keys derived from the others (recomputed on loading, checked for consistency)
DERIVED = ("threshold_llr", "threshold_raw")


def _logit(p: float) -> float:
    return math.log(p) - math.log1p(-p)


@dataclass
class Calibration:
    """``llr = scale * score + offset`` for scores of normalisation ``norm``; decisions at ``p_target``."""

    scale: float
    offset: float
    norm: str = "none"
    p_target: float = DEFAULT_P_TARGET
    method: str = METHOD
    extra: dict[str, Any] = field(default_factory=dict)

    def llr(self, scores: Sequence[float] | np.ndarray) -> np.ndarray:
        """Calibrated log-likelihood ratios ``scale * s + offset`` (float64)."""
        return self.scale * np.asarray(scores, dtype=np.float64) + self.offset

    @property
    def threshold_llr(self) -> float:
        """Bayes threshold ``log((1 - p) / p)`` of ``p_target`` (unit costs)."""
        return bayes_threshold(self.p_target)

    @property
    def threshold_raw(self) -> float | None:
        """The score threshold equivalent to :attr:`threshold_llr` (None unless ``scale > 0``)."""
        return (self.threshold_llr - self.offset) / self.scale if self.scale > 0 else None

    def to_json(self) -> dict[str, Any]:
        """The stored form (module docstring)."""
        return {"method": self.method, "scale": self.scale, "offset": self.offset, "norm": self.norm,
                "p_target": self.p_target, "threshold_llr": self.threshold_llr,
                "threshold_raw": self.threshold_raw, **self.extra}

    @classmethod
    def from_json(cls, data: Any, source: str | Path = "<calibration>") -> "Calibration":
        """Check and read the stored form; errors name ``source``."""
        if not isinstance(data, dict):
            raise file_error(source, "a calibration is a JSON object")
        for key, types in REQUIRED.items():
            if key not in data:
                raise file_error(source, f"calibration lacks key '{key}'")
            if not isinstance(data[key], types) or isinstance(data[key], bool):
                raise file_error(source, f"calibration key '{key}' has the wrong type ({type(data[key]).__name__})")
        if data["method"] != METHOD:
            raise file_error(source, f"unknown calibration method '{data['method']}' (expected {METHOD})")
        if data["norm"] not in NORMS:
            raise file_error(source, f"unknown norm '{data['norm']}' (expected one of {', '.join(NORMS)})")
        if not all(math.isfinite(data[k]) for k in ("scale", "offset")):
            raise file_error(source, "calibration scale and offset must be finite numbers")
        if not 0.0 < data["p_target"] < 1.0:
            raise file_error(source, f"p_target must lie strictly between 0 and 1, got {data['p_target']}")
        cal = cls(float(data["scale"]), float(data["offset"]), data["norm"], float(data["p_target"]),
                  extra={k: v for k, v in data.items() if k not in REQUIRED and k not in DERIVED})
        stored = data.get("threshold_llr")
        if stored is not None and not (isinstance(stored, (int, float)) and math.isclose(stored, cal.threshold_llr,
                                                                                           rel_tol=1e-9, abs_tol=1e-12)):
            raise file_error(source, f"threshold_llr {stored!r} disagrees with p_target {cal.p_target} "
                                     f"(expected {cal.threshold_llr})")
        return cal


def fit_calibration(scores: Sequence[float] | np.ndarray, labels: Sequence[bool] | np.ndarray,
                    norm: str = "none", p_target: float = DEFAULT_P_TARGET, p_eff: float = DEFAULT_P_EFF,
                    c: float = DEFAULT_C) -> Calibration:
    """Prior-weighted logistic-regression calibration (module docstring) of ``scores`` with target ``labels``."""
    from sklearn.linear_model import LogisticRegression

    if not 0.0 < p_eff < 1.0:
        raise SpkpeftError(f"p_eff must lie strictly between 0 and 1, got {p_eff}")
    if not c > 0:
        raise SpkpeftError(f"the inverse regularisation C must be > 0, got {c}")
    bayes_threshold(p_target)  # checks p_target
    s, y = _as_scores_labels(scores, labels)
    n_tar = np.count_nonzero(y)
    weight = np.where(y, p_eff / n_tar, (1.0 - p_eff) / (y.size - n_tar))
    centre, spread = float(s.mean()), float(s.std())
    if not spread > 0:
        raise SpkpeftError("all calibration scores are equal; there is nothing to calibrate")
    model = LogisticRegression(C=c, tol=1e-10, max_iter=10000)
    model.fit(((s - centre) / spread)[:, None], y.astype(np.int64), sample_weight=weight)
    a_z, b_z = float(model.coef_[0, 0]), float(model.intercept_[0])
    return Calibration(a_z / spread, b_z - a_z * centre / spread - _logit(p_eff), norm, float(p_target),
                       extra={"p_eff": float(p_eff)})


def write_calibration(path: str | Path, calibration: Calibration) -> None:
    """Write the stored form atomically (temporary name, fsync, rename)."""
    write_json_atomic(path, calibration.to_json())


def load_calibration(path: str | Path) -> Calibration | None:
    """The calibration stored at ``path``; None when there is no such file; a bad file is an error naming it."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise file_error(path, f"cannot read calibration ({err})") from None
    except json.JSONDecodeError as err:
        raise file_error(path, f"not valid JSON ({err.msg})", err.lineno) from None
    return Calibration.from_json(data, path)
