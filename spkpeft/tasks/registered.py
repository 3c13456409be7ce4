"""Every task, registered: importing this module imports each task folder (whose ``task.py``
registers it in :data:`~spkpeft.tasks.base.TASKS`).  A new task adds its folder and one name
to the import below."""

from __future__ import annotations

from spkpeft.tasks import cls, cm, sasv, sv  # noqa: F401  (register the tasks)
from spkpeft.tasks.base import TASKS, Task


def task_named(name: str) -> Task:
    """The task object of a ``task.type`` value (an error listing the known tasks)."""
    return TASKS.get(name).build()


def task_names() -> list[str]:
    """The registered tasks, in registration order."""
    return TASKS.names()


def all_tasks() -> list[Task]:
    """One object of every registered task."""
    return [entry.build() for entry in TASKS]
