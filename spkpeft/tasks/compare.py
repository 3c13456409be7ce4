"""Comparing experiments (``spkpeft.bin.compare``): one table across variants of one task.

Each experiment directory holds ``results.json`` (stage 5) and ``config.yaml`` (stage 3); its
variant name is the directory name.  Every row of the table is one variant x one group of its
results (:attr:`~spkpeft.tasks.base.Task.compare_group_keys`: speaker verification a trial list
and normalisation, classification and countermeasures an evaluated set), grouped in order of
first appearance (a key with a fixed order, :attr:`~spkpeft.tasks.base.Task.compare_key_order`,
follows it), then variants in the order given.  The columns are the task's
(:attr:`~spkpeft.tasks.base.Task.compare_columns`): :data:`LEAD_COLUMNS`, the task's own, then
:data:`TAIL_COLUMNS`; values an experiment does not record stay empty.  The CSV uses the keys
as column names and full precision; the Markdown table uses the titles and rounded values.

Several runs per variant (``--seeds N``: the experiments come in consecutive groups of ``N``,
the variant named after its first run) average the task's
:attr:`~spkpeft.tasks.base.Task.seed_metrics`: ``<metric>_mean`` and ``<metric>_sd`` (sample
sd over the runs), and the runs' mean training time and peak memory.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from spkpeft.config import read_yaml
from spkpeft.errors import SpkpeftError, file_error
from spkpeft.eval.report import markdown_table
from spkpeft.tasks.base import LEAD_COLUMNS, TAIL_COLUMNS, Column, Task
from spkpeft.tasks.registered import task_named
from spkpeft.tasks.results import read_results, task_of

#: averaged (not mean and sd) over the runs of a variant
RESOURCE_METRICS = ("train_seconds", "peak_memory_mb")


def _cell(value: Any, fmt: str) -> str:
    """A table cell: empty for None, both bounds formatted for an interval ``[lo, hi]``."""
    if value is None:
        return ""
    return fmt.format(*value) if isinstance(value, (list, tuple)) else fmt.format(value)


def read_config_upstream(exp: Path) -> str | None:
    """``upstream.name`` of ``EXP/config.yaml`` (None when the file is absent)."""
    path = exp / "config.yaml"
    if not path.is_file():
        return None
    try:
        return read_yaml(path).get("upstream", {}).get("name")
    except AttributeError as err:
        raise file_error(path, f"cannot read the upstream name ({err})") from None


def experiment_rows(exp: Path) -> list[dict[str, Any]]:
    """The table rows of one experiment (``task`` and the keys of its task's columns; unknown values None)."""
    upstream = read_config_upstream(exp)
    rows = []
    for result in read_results(exp / "results.json"):
        name = task_of(result)
        task = task_named(name)
        trainable, total = result.get("trainable_params"), result.get("total_params")
        row = {key: result.get(key, task.compare_defaults.get(key)) for key, _, _ in task.compare_columns}
        row.update(task=name, variant=exp.name, upstream=result.get("upstream") or upstream,
                   trainable_pct=100.0 * trainable / total if trainable is not None and total else None)
        rows.append(row)
    return rows


def check_names(names: Sequence[str]) -> None:
    """Variant names must differ."""
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise SpkpeftError(f"two experiments are named '{duplicate}'; variants need distinct directory names")


def rows_task(rows: Sequence[dict[str, Any]]) -> Task | None:
    """The one task of ``rows`` (None for no rows); rows of several tasks are an error."""
    tasks = list(dict.fromkeys(row["task"] for row in rows))
    if len(tasks) > 1:
        first = {task: next(r["variant"] for r in rows if r["task"] == task) for task in tasks}
        raise SpkpeftError("cannot compare results of different tasks: "
                           + ", ".join(f"{task} ({first[task]})" for task in tasks))
    return task_named(tasks[0]) if tasks else None


def group_of(task: Task, row: dict[str, Any]) -> tuple:
    """The values of the task's group keys in ``row``."""
    return tuple(row.get(key) for key in task.compare_group_keys)


def sorted_rows(rows: list[dict[str, Any]], names: Sequence[str]) -> list[dict[str, Any]]:
    """Rows of one task ordered by its group keys (first appearance, or the key's fixed order),
    then by variant."""
    task = rows_task(rows)
    if task is None:
        return []
    orders = []
    for key in task.compare_group_keys:
        fixed = task.compare_key_order.get(key)
        values = list(fixed) if fixed is not None else list(dict.fromkeys(row.get(key) for row in rows))
        orders.append((key, {v: i for i, v in enumerate(values)}, len(values)))
    return sorted(rows, key=lambda r: (*(order.get(r.get(key), size) for key, order, size in orders),
                                       names.index(r["variant"])))


def comparison_rows(exps: Sequence[Path]) -> list[dict[str, Any]]:
    """Rows of every experiment, in table order (:func:`sorted_rows`)."""
    names = [exp.name for exp in exps]
    check_names(names)
    return sorted_rows([row for exp in exps for row in experiment_rows(exp)], names)


def variant_groups(exps: Sequence[Path], seeds: int) -> list[list[Path]]:
    """``exps`` cut into consecutive groups of ``seeds`` runs, one group per variant."""
    if seeds < 1 or len(exps) % seeds:
        raise SpkpeftError(f"--seeds {seeds}: the {len(exps)} experiments must come in groups of {seeds} "
                           "(the runs of one variant next to each other)")
    return [list(exps[i:i + seeds]) for i in range(0, len(exps), seeds)]


def _mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (``ddof = 1``)."""
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def seed_rows(groups: Sequence[Sequence[Path]]) -> list[dict[str, Any]]:
    """Several runs (seeds) per variant: one row per variant x group with ``seeds``,
    ``<metric>_mean`` and ``<metric>_sd`` of the task's seed metrics and the runs' mean
    training time and peak memory (see the module docstring)."""
    names = [group[0].name for group in groups]
    check_names(names)
    rows = []
    for group in groups:
        per_run = [comparison_rows([exp]) for exp in group]
        task = rows_task([row for run in per_run for row in run])
        if task is None:
            continue
        if not task.seed_metrics:
            raise SpkpeftError(f"{group[0]}: --seeds > 1 is not supported for results of task {task.name}")
        runs = [{group_of(task, r): r for r in run} for run in per_run]
        for key, first in runs[0].items():
            missing = next((exp for exp, rows_of in zip(group, runs) if key not in rows_of), None)
            if missing is not None:
                described = ", ".join(f"{k} '{v}'" for k, v in zip(task.compare_group_keys, key))
                raise file_error(missing / "results.json", f"no result for {described}")
            row = {k: first.get(k) for k in ("task", "upstream", "trainable_params", "trainable_pct",
                                             *task.compare_group_keys)}
            row.update(variant=group[0].name, seeds=len(group))
            for metric in (*task.seed_metrics, *RESOURCE_METRICS):
                values = [r[key][metric] for r in runs if r[key].get(metric) is not None]
                if not values:
                    row[metric] = None
                elif metric in RESOURCE_METRICS:
                    row[metric] = float(np.mean(values))
                else:
                    row[f"{metric}_mean"], row[f"{metric}_sd"] = _mean_sd(values)
            rows.append(row)
    return sorted_rows(rows, names)


def columns_of(rows: Sequence[dict[str, Any]]) -> tuple[Column, ...]:
    """The columns of comparison rows: their task's, its seed columns for rows averaged over
    runs, :data:`LEAD_COLUMNS` + :data:`TAIL_COLUMNS` for no rows."""
    task = rows_task(rows)
    if task is None:
        return LEAD_COLUMNS + TAIL_COLUMNS
    return task.compare_seed_columns if "seeds" in rows[0] else task.compare_columns


def comparison_table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as a Markdown table with the titles and formats of their task's columns."""
    columns = columns_of(rows)
    return markdown_table([title for _, title, _ in columns],
                          [[_cell(row.get(key), fmt) for key, _, fmt in columns] for row in rows])


def csv_lines(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The rows as CSV lines (header: the keys of their task's columns; empty cells for unknown values)."""
    columns = columns_of(rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([key for key, _, _ in columns])
    for row in rows:
        writer.writerow(["" if row.get(key) is None else row[key] for key, _, _ in columns])
    return buffer.getvalue().splitlines()
