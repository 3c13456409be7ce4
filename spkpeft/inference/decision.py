"""Scores that mean something: the calibration an experiment may carry, and decisions.

``EXP/calibration.json`` (written by ``python -m spkpeft.bin.calibrate``, read by
:mod:`spkpeft.eval.calibration`; copied into exported packages) holds ``method``, ``scale`` ``a``,
``offset`` ``b``, ``norm``, ``p_target`` and the derived ``threshold_llr`` (the Bayes threshold
``log((1 - p_target) / p_target)``) and ``threshold_raw``.  The calibrated log-likelihood ratio
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

import math
from pathlib import Path

import numpy as np

from spkpeft.errors import SpkpeftError, file_error
from spkpeft.eval.calibration import Calibration, load_calibration

CALIBRATION_FILE = "calibration.json"


def read_calibration(path: str | Path) -> Calibration:
    """Read a ``calibration.json`` (:func:`spkpeft.eval.calibration.load_calibration`: errors name
    the file and the key) that the API can apply: one of raw scores (``norm: none``)."""
    path = Path(path)
    calibration = load_calibration(path)
    if calibration is None:
        raise file_error(path, "calibration file not found")
    if calibration.norm != "none":
        raise file_error(path, f"calibrated on '{calibration.norm}' scores; only raw-score calibrations (norm: none) "
                               f"can be applied by the API")
    return calibration


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
