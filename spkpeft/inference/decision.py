"""Scores that mean something: the calibration an experiment may carry, and decisions.

``EXP/calibration.json`` (written by the calibration tool; copied into exported packages) is a
JSON object with at least ``method``, ``scale`` ``a``, ``offset`` ``b``, ``norm``,
``p_target``, ``threshold_llr`` and ``threshold_raw``.  The calibrated log-likelihood ratio
of a raw cosine score ``s`` is::

    llr = a * s + b

(linear logistic-regression calibration, Brümmer and du Preez, "Application-independent
evaluation of speaker detection", Computer Speech and Language 20, 2006).  A trial is
accepted when ``llr >= threshold_llr``; without a calibration a decision needs an explicit
threshold, compared with the value :meth:`Calibration.apply` would give (the raw cosine).
Only calibrations of raw scores (``norm: none``) apply here: the API has no score-normalisation
cohort.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spkpeft.errors import SpkpeftError, file_error

CALIBRATION_FILE = "calibration.json"
REQUIRED = ("scale", "offset", "threshold_llr")


@dataclass(frozen=True)
class Calibration:
    """``llr = scale * s + offset``; accept when ``llr >= threshold_llr``."""

    scale: float
    offset: float
    threshold_llr: float
    path: Path

    def apply(self, raw: np.ndarray) -> np.ndarray:
        """Calibrated LLRs of raw cosine scores."""
        return self.scale * np.asarray(raw, dtype=np.float64) + self.offset


def read_calibration(path: str | Path) -> Calibration:
    """Read and check a ``calibration.json`` (errors name the file and the key)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise file_error(path, f"cannot read the calibration ({err})") from None
    if not isinstance(data, dict):
        raise file_error(path, "a calibration is a JSON object")
    for key in REQUIRED:
        value = data.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise file_error(path, f"key '{key}' must be a finite number, got {value!r}")
    if data.get("norm", "none") != "none":
        raise file_error(path, f"calibrated on '{data['norm']}' scores; only raw-score calibrations (norm: none) "
                               f"can be applied by the API")
    return Calibration(float(data["scale"]), float(data["offset"]), float(data["threshold_llr"]), path)


def find_calibration(directory: str | Path) -> Calibration | None:
    """``directory/calibration.json`` when it exists."""
    path = Path(directory) / CALIBRATION_FILE
    return read_calibration(path) if path.is_file() else None


def decide(values: np.ndarray, calibration: Calibration | None, threshold: float | None,
           where: str | Path) -> tuple[np.ndarray, float]:
    """``(accept, threshold)``: ``values >= threshold`` with ``threshold`` given, else the
    calibration's ``threshold_llr``; without either an error naming the missing file."""
    if threshold is None:
        if calibration is None:
            raise SpkpeftError(f"{Path(where) / CALIBRATION_FILE}: missing; a decision needs a calibrated model "
                               f"(python -m spkpeft.bin.calibrate) or an explicit threshold")
        threshold = calibration.threshold_llr
    if not math.isfinite(threshold):
        raise SpkpeftError(f"threshold must be a finite number, got {threshold}")
    return np.asarray(values) >= threshold, float(threshold)
