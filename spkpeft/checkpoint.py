"""Atomic checkpoint files and their averaging.

A checkpoint is a ``torch.save`` dictionary.  Files are written to a temporary
name in the same directory, flushed to disk (``fsync``) and renamed over the
destination, so a reader (or a run restarted after ``SIGKILL``) only ever sees
a complete old file or a complete new one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import torch

from spkpeft.errors import SpkpeftError, file_error


def save_atomic(obj: Any, path: str | Path) -> None:
    """``torch.save`` to ``path`` through a temporary file, fsync and rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint on the CPU; a missing or unreadable file is a clear error."""
    path = Path(path)
    if not path.is_file():
        raise file_error(path, "checkpoint does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:
        raise file_error(path, f"cannot load checkpoint ({type(err).__name__}: {err})") from None
    if not isinstance(obj, dict):
        raise file_error(path, "not a spkpeft checkpoint (expected a dictionary)")
    return obj


def average_state_dicts(states: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Element-wise mean of parameter dictionaries with identical keys (integer tensors: taken from the last)."""
    if not states:
        raise SpkpeftError("no checkpoints to average")
    keys = list(states[-1])
    for state in states:
        if list(state) != keys:
            raise SpkpeftError("checkpoints to average hold different parameters")
    averaged = {}
    for key in keys:
        tensors = [s[key] for s in states]
        if tensors[-1].is_floating_point():
            averaged[key] = torch.stack([t.float() for t in tensors]).mean(0).to(tensors[-1].dtype)
        else:
            averaged[key] = tensors[-1].clone()
    return averaged
