"""``results.json``, the per-class files of classification and the result tables (stages 5 and 6).

``$exp/results.json`` is a JSON list of objects, one per evaluated set; ``task``
says which task wrote it, and that task names the keys its rows must have
(:mod:`spkpeft.tasks.results` reads and checks the file through :func:`read_results`)::

    [{"trials": "vox1_o", "n_trials": 37611, "eer_pct": 1.23, "mindcf_p0.01": 0.123,
      "mindcf_p0.05": 0.089, "norm": "none", "task": "sv", ...},          # one per trial list x norm
     {"task": "cls", "set": "test", "n": 1200, "accuracy_pct": 91.5,
      "macro_f1": 0.903, ...}]                                           # one per data directory

both followed by the experiment's :data:`INFO_KEYS` when known.

Classification (stage 5, :mod:`spkpeft.tasks.cls.evaluate`) also writes, per set,
``per_class.tsv`` (:func:`per_class_lines`: ``class n precision recall f1``, one row
per class of ``classes.txt``) and ``confusion.tsv`` (:func:`confusion_lines`: a header
row of predicted classes, one row of counts per true class); stage 6 reads them back
(:func:`per_class_table`, :func:`read_confusion`).

Spoofing countermeasures (stage 5, :mod:`spkpeft.tasks.cm.evaluate`) keep their breakdowns
in the row itself: ``per_attack`` (``{attack: eer_pct}``) and, for ASVspoof 2021 sets,
``per_condition`` (``{condition: eer_pct}``); :func:`cm_breakdown_tables` renders them.

Tables are Markdown (pipe tables) rendered by pandas' ``DataFrame.to_markdown``
(through ``tabulate``) with alignment off: cells are written as given, ``| a | b |``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from spkpeft.errors import SpkpeftError, file_error
from spkpeft.eval.metrics import per_class_scores
from spkpeft.io.atomic import write_json_atomic  # noqa: F401  (results.json is written through it)

TASK_KEY = "task"
INFO_KEYS = ("config", "upstream", "trainable_params", "total_params", "train_seconds", "peak_memory_mb")
#: Markdown titles of the result keys (other keys are titled by their name)
TITLES = {"eer_pct": "EER (%)", "mindcf_p0.01": "minDCF (p=0.01)", "mindcf_p0.05": "minDCF (p=0.05)",
          "eer_ci95": "EER 95% CI", "mindcf_p0.01_ci95": "minDCF (p=0.01) 95% CI",
          "mindcf_p0.05_ci95": "minDCF (p=0.05) 95% CI", "actdcf_p0.01": "actDCF (p=0.01)",
          "actdcf_p0.05": "actDCF (p=0.05)", "cllr": "Cllr", "min_cllr": "min Cllr",
          "accuracy_pct": "accuracy (%)", "macro_f1": "macro-F1", "min_tdcf": "min t-DCF (2019)",
          "min_tdcf_2021": "min t-DCF (2021)"}
#: cell formats of keys whose values should not follow :func:`_format`'s size rule
FORMATS = {"accuracy_pct": "{:.2f}", "macro_f1": "{:.4f}", "min_tdcf": "{:.4f}", "min_tdcf_2021": "{:.4f}"}
PER_CLASS_HEADER = ("class", "n", "precision", "recall", "f1")
#: suffix of the keys of 95 % intervals ``[lo, hi]``, rendered ``[lo, hi]`` in the tables
CI_SUFFIX = "_ci95"
CONFUSION_CORNER = "true\\predicted"


#: ``required(task) -> keys`` every row of ``task`` has, in table order; raises
#: :class:`SpkpeftError` for an unknown task (:func:`spkpeft.tasks.results.required_keys`)
RequiredKeys = Callable[[str], Sequence[str]]


def read_results(path: str | Path, task_of: Callable[[dict[str, Any]], str], required: RequiredKeys) -> list[dict[str, Any]]:
    """Read and check a ``results.json``: every row has the ``required`` keys of its task
    (``task_of(row)``).  The tasks layer supplies both (:func:`spkpeft.tasks.results.read_results`)."""
    path = Path(path)
    if not path.is_file():
        raise file_error(path, "results file does not exist")
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise file_error(path, f"not valid JSON ({err.msg})", err.lineno) from None
    if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
        raise file_error(path, "expected a JSON list of objects")
    for number, row in enumerate(results, 1):
        try:
            keys = required(task_of(row))
        except SpkpeftError as err:
            raise file_error(path, f"entry {number} {err}") from None
        missing = [k for k in keys if k not in row]
        if missing:
            raise file_error(path, f"entry {number} lacks key '{missing[0]}'")
    return results


def read_experiment_info(path: str | Path) -> dict[str, Any]:
    """The :data:`INFO_KEYS` of an experiment's ``train_done.json`` (written at the end of training)."""
    path = Path(path)
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise file_error(path, f"cannot read experiment summary ({err})") from None
    missing = [k for k in INFO_KEYS if k not in info]
    if missing:
        raise file_error(path, f"lacks key '{missing[0]}'")
    return {k: info[k] for k in INFO_KEYS}


def _format(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1 else f"{value:.2f}"
    return str(value)


def is_interval(key: str, value: Any) -> bool:
    """A ``*_ci95`` value: ``[lo, hi]`` (the bootstrap intervals of :mod:`spkpeft.eval.bootstrap`)."""
    return key.endswith(CI_SUFFIX) and isinstance(value, list) and len(value) == 2


def _cell(key: str, value: Any) -> str:
    if is_interval(key, value):
        return f"[{_format(float(value[0]))}, {_format(float(value[1]))}]"
    if isinstance(value, (int, float)) and not isinstance(value, bool) and key in FORMATS:
        return FORMATS[key].format(value)
    return _format(value)


def markdown_table(titles: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown (pipe) table from column titles and rows of already formatted cells, through pandas.

    Cells are written as given (no padding, no number parsing), ``| a | b |``; the rule under
    the titles has as many dashes as the widest cell of its column, plus two.
    """
    frame = pd.DataFrame([list(cells) for cells in rows], columns=list(titles), dtype=object)
    return frame.to_markdown(index=False, tablefmt="pipe", stralign=None, numalign=None, disable_numparse=True)


def _task_table(keys: Sequence[str], rows: Sequence[dict[str, Any]], titles: dict[str, str] | None = None) -> str:
    """One task's rows: its required ``keys``, then the other scalar keys in order of appearance
    (column titles: the task's ``titles``, then :data:`TITLES`)."""
    titles = {**TITLES, **(titles or {})}
    headers = list(keys)
    for row in rows:
        headers += [k for k in row if k not in headers and k != TASK_KEY
                    and (not isinstance(row[k], (dict, list)) or is_interval(k, row[k]))]
    return markdown_table([titles.get(h, h) for h in headers],
                          [[_cell(h, row.get(h)) for h in headers] for row in rows])


def results_table(results: Sequence[dict[str, Any]], task_of: Callable[[dict[str, Any]], str],
                  required: RequiredKeys, titles: Callable[[str], dict[str, str]] | None = None) -> str:
    """Markdown table(s) of ``results`` rows: one table per task, in order of first appearance.

    Each table has the task's required keys first (e.g. speaker verification: trials,
    n_trials, EER (%), minDCF (p=0.01), minDCF (p=0.05); classification: set, n,
    accuracy (%), macro-F1; countermeasures: set, n_bonafide, n_spoof, EER (%)), then the
    other scalar keys (``norm``, the experiment info, min t-DCFs, ...; dict-valued keys
    such as the per-attack EERs are :func:`cm_breakdown_tables`); ``*_ci95`` intervals are
    rendered ``[lo, hi]``. ``task`` itself is not a column; with several tasks each table
    follows a ``### <task>`` line.
    """
    if not results:
        raise SpkpeftError("no results to report")
    by_task: dict[str, list[dict[str, Any]]] = {}
    for row in results:
        by_task.setdefault(task_of(row), []).append(row)
    tables = {task: _task_table(required(task), rows, titles(task) if titles else None)
              for task, rows in by_task.items()}
    if len(tables) == 1:
        return next(iter(tables.values()))
    return "\n\n".join(f"### {task}\n\n{table}" for task, table in tables.items())


# ---------------------------------------------------------------- countermeasure breakdowns

#: dict-valued keys of a ``cm`` row -> (section title, first column title)
CM_BREAKDOWNS = {"per_attack": ("per attack", "attack"), "per_condition": ("per condition", "condition")}


def cm_breakdown_tables(row: dict[str, Any]) -> list[str]:
    """Markdown sections of a ``cm`` row's EER breakdowns, ``### per attack: <set>`` then (only when
    the row has ``per_condition``) ``### per condition: <set>``, each a table ``<attack|condition> |
    EER (%)`` (2 decimals) in the row's order. ``per_attack`` is always rendered (empty when absent)."""
    sections = []
    for key, (title, column) in CM_BREAKDOWNS.items():
        if key not in row and key != "per_attack":
            continue
        values = row.get(key) or {}
        table = markdown_table([column, "EER (%)"], [[k, f"{v:.2f}"] for k, v in values.items()])
        sections.append(f"### {title}: {row['set']}\n\n{table}")
    return sections


# ---------------------------------------------------------------- classification files


def per_class_lines(confusion: np.ndarray, class_names: Sequence[str]) -> list[str]:
    """``per_class.tsv``: header :data:`PER_CLASS_HEADER`, then per class its name, its number of
    utterances (row sum of ``confusion``) and precision, recall, F1 (:func:`spkpeft.eval.metrics.per_class_scores`)."""
    confusion = np.asarray(confusion)
    precision, recall, f1 = per_class_scores(confusion)
    lines = ["\t".join(PER_CLASS_HEADER)]
    for k, name in enumerate(class_names):
        lines.append(f"{name}\t{int(confusion[k].sum())}\t{precision[k]:.6f}\t{recall[k]:.6f}\t{f1[k]:.6f}")
    return lines


def confusion_lines(confusion: np.ndarray, class_names: Sequence[str]) -> list[str]:
    """``confusion.tsv``: ``true\\predicted <class> ...`` then ``<true class> <count> ...`` per class."""
    confusion = np.asarray(confusion)
    lines = ["\t".join([CONFUSION_CORNER, *class_names])]
    lines += ["\t".join([name, *(str(int(v)) for v in confusion[k])]) for k, name in enumerate(class_names)]
    return lines


def read_confusion(path: str | Path) -> tuple[np.ndarray, list[str]]:
    """``(counts (K, K) int64, class names)`` of a ``confusion.tsv`` (see :func:`confusion_lines`)."""
    path = Path(path)
    if not path.is_file():
        raise file_error(path, "confusion matrix does not exist (stage 5 writes it)")
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or not lines[0].strip():
        raise file_error(path, "empty file", 1)
    header = lines[0].split("\t")
    names = header[1:]
    if not names:
        raise file_error(path, "header names no class", 1)
    rows = lines[1:]
    if len(rows) != len(names):
        raise file_error(path, f"{len(names)} predicted classes in the header but {len(rows)} rows")
    counts = np.zeros((len(names), len(names)), dtype=np.int64)
    for k, line in enumerate(rows):
        fields = line.split("\t")
        if fields[0] != names[k]:
            raise file_error(path, f"row of '{fields[0]}' where class '{names[k]}' (column {k + 1}) was expected",
                             k + 2)
        try:
            values = [int(v) for v in fields[1:]]
        except ValueError:
            raise file_error(path, "counts must be integers", k + 2) from None
        if len(values) != len(names) or min(values) < 0:
            raise file_error(path, f"expected {len(names)} non-negative counts, got {fields[1:]}", k + 2)
        counts[k] = values
    return counts, names


def per_class_table(path: str | Path) -> str:
    """Markdown table of a ``per_class.tsv``: class, n, precision, recall, F1 (4 decimals)."""
    path = Path(path)
    if not path.is_file():
        raise file_error(path, "per-class scores do not exist (stage 5 writes them)")
    try:
        frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise file_error(path, f"not a tab-separated table ({err})") from None
    if tuple(frame.columns) != PER_CLASS_HEADER:
        raise file_error(path, f"header must be {' '.join(PER_CLASS_HEADER)}, got {' '.join(frame.columns)}", 1)
    cells = []
    for number, row in enumerate(frame.itertuples(index=False), 2):
        try:
            cells.append([row[0], str(int(row[1])), *(f"{float(v):.4f}" for v in row[2:])])
        except ValueError:
            raise file_error(path, "n must be an integer and precision, recall, f1 numbers", number) from None
    return markdown_table(["class", "n", "precision", "recall", "F1"], cells)
