"""K-fold cross-validation summary of classification experiments (ESC-50's five folds).

Each fold is an experiment directory (``EXP/fold<k>``) whose ``results.json`` holds a cls row
for the evaluated ``set`` (``test``: the held-out fold).  The summary is, for accuracy (%)
and macro-F1, the per-fold values, their mean and their standard deviation
``sqrt(sum (x_k - mean)^2 / K)`` (population, ``ddof = 0``, as ``np.std`` in the PETL-AST
code, Cappellazzo et al., arXiv 2312.03694, which reports mean and std over the folds).

``EXP/cv_results.json``::

    {"task": "cls", "set": "test", "n_folds": 5, "std_ddof": 0,
     "folds": [{"fold": "fold1", "n": 400, "accuracy_pct": 91.0, "macro_f1": 0.905}, ...],
     "mean": {"accuracy_pct": ..., "macro_f1": ...}, "std": {"accuracy_pct": ..., "macro_f1": ...},
     "n": 2000, "config": ..., "upstream": ..., "trainable_params": ..., "total_params": ...}

(``n``: utterances over all folds; the information keys are those of the first fold, the
same model for every fold).  ``EXP/cv_results.md``: one row per fold, then ``mean +- std``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from spkpeft.errors import SpkpeftError, file_error
from spkpeft.eval.report import INFO_KEYS, markdown_table
from spkpeft.tasks.results import read_results, task_of

CV_FILE = "cv_results.json"
METRICS = (("accuracy_pct", "accuracy (%)", "{:.2f}"), ("macro_f1", "macro-F1", "{:.4f}"))


def fold_row(exp: Path, set_name: str) -> dict[str, Any]:
    """The cls row of ``set_name`` in ``EXP/results.json`` (an error naming the file when absent)."""
    path = exp / "results.json"
    rows = [r for r in read_results(path) if task_of(r) == "cls" and r.get("set") == set_name]
    if not rows:
        raise file_error(path, f"no classification result for the set '{set_name}'")
    return rows[0]


def summarize_folds(exps: Sequence[Path], set_name: str = "test") -> dict[str, Any]:
    """The summary object of the module docstring for fold experiments ``exps`` (fold = directory name)."""
    if len(exps) < 2:
        raise SpkpeftError(f"cross-validation needs at least 2 folds, got {len(exps)}")
    names = [exp.name for exp in exps]
    if len(set(names)) != len(names):
        raise SpkpeftError(f"fold directories need distinct names, got {' '.join(names)}")
    rows = [fold_row(exp, set_name) for exp in exps]
    folds = [{"fold": exp.name, "n": row["n"], **{key: row[key] for key, _, _ in METRICS}}
             for exp, row in zip(exps, rows)]
    values = {key: np.array([f[key] for f in folds], dtype=np.float64) for key, _, _ in METRICS}
    summary = {"task": "cls", "set": set_name, "n_folds": len(folds), "std_ddof": 0, "folds": folds,
               "mean": {key: float(v.mean()) for key, v in values.items()},
               "std": {key: float(v.std(ddof=0)) for key, v in values.items()},
               "n": int(sum(f["n"] for f in folds))}
    summary.update({key: rows[0][key] for key in INFO_KEYS if key in rows[0]})
    return summary


def mean_std(summary: dict[str, Any], key: str, fmt: str) -> str:
    """``mean +- std`` of one metric, both in ``fmt``."""
    return f"{fmt.format(summary['mean'][key])} +- {fmt.format(summary['std'][key])}"


def cv_table(summary: dict[str, Any]) -> str:
    """Markdown: one row per fold (fold, n, accuracy, macro-F1), then the mean +- std row."""
    rows = [[f["fold"], str(f["n"]), *(fmt.format(f[key]) for key, _, fmt in METRICS)] for f in summary["folds"]]
    rows.append(["mean +- std", str(summary["n"]), *(mean_std(summary, key, fmt) for key, _, fmt in METRICS)])
    return markdown_table(["fold", "n", *(title for _, title, _ in METRICS)], rows)
