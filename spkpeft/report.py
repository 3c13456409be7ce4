"""``results.json`` and the result tables printed by stage 6.

``$exp/results.json`` is a JSON list with one object per trial list (and, later,
per score normalisation)::

    [{"trials": "vox1_o", "n_trials": 37611, "eer_pct": 1.23,
      "mindcf_p0.01": 0.123, "mindcf_p0.05": 0.089, ...}, ...]
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

from spkpeft.errors import SpkpeftError, file_error

RESULT_KEYS = ("trials", "n_trials", "eer_pct", "mindcf_p0.01", "mindcf_p0.05")
INFO_KEYS = ("config", "upstream", "trainable_params", "total_params", "train_seconds", "peak_memory_mb")


def write_json_atomic(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def read_results(path: str | Path) -> list[dict[str, Any]]:
    """Read and check a ``results.json``."""
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
        missing = [k for k in RESULT_KEYS if k not in row]
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
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1 else f"{value:.2f}"
    return str(value)


def markdown_table(titles: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table from column titles and rows of already formatted cells."""
    lines = ["| " + " | ".join(titles) + " |", "|" + "|".join("---" for _ in titles) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines)


def results_table(results: Sequence[dict[str, Any]]) -> str:
    """Markdown table: one row per entry; columns the standard keys, then any others in order of appearance."""
    if not results:
        raise SpkpeftError("no results to report")
    headers = list(RESULT_KEYS)
    for row in results:
        headers += [k for k in row if k not in headers and not isinstance(row[k], (dict, list))]
    titles = {"eer_pct": "EER (%)", "mindcf_p0.01": "minDCF (p=0.01)", "mindcf_p0.05": "minDCF (p=0.05)"}
    return markdown_table([titles.get(h, h) for h in headers],
                          [[_format(row.get(h, "")) for h in headers] for row in results])
