"""``results.json`` of any task: which task wrote a row, the keys it must have, and the tables.

The generic reader and table code is :mod:`spkpeft.eval.report`; this module supplies what
only the tasks know: a row's task (``task``; a row without one was written by speaker
verification before other tasks existed, i.e. the default ``task.type``) and that task's
:attr:`~spkpeft.tasks.base.Task.result_keys`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from spkpeft.errors import SpkpeftError
from spkpeft.eval import report
from spkpeft.tasks.base import TASKS, TaskConfig
from spkpeft.tasks.registered import task_named

#: the task of a row without ``task`` (results written before other tasks existed)
DEFAULT_TASK = TaskConfig().type


def task_of(row: dict[str, Any]) -> str:
    """The task of a results row (:data:`DEFAULT_TASK` when it has no ``task`` key)."""
    return row.get(report.TASK_KEY, DEFAULT_TASK)


def required_keys(task: str) -> tuple[str, ...]:
    """The keys every row of ``task`` has, in table order; an error for an unknown task."""
    if task not in TASKS:
        raise SpkpeftError(f"has unknown task {task!r} (known: {', '.join(TASKS.names())})")
    return task_named(task).result_keys


def read_results(path: str | Path) -> list[dict[str, Any]]:
    """Read and check a ``results.json`` (every row has the :func:`required_keys` of its task)."""
    return report.read_results(path, task_of, required_keys)


def results_table(results: Sequence[dict[str, Any]]) -> str:
    """The Markdown table(s) of ``results``, one per task (:func:`spkpeft.eval.report.results_table`)."""
    for row in results:
        if task_of(row) not in TASKS:
            raise SpkpeftError(f"results of unknown task {task_of(row)!r} (known: {', '.join(TASKS.names())})")
    return report.results_table(results, task_of, required_keys, lambda task: task_named(task).result_titles)


def rows_by_task(results: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The rows of each task, tasks in order of first appearance."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in results:
        grouped.setdefault(task_of(row), []).append(row)
    return grouped
