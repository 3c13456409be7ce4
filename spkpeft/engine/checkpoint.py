"""Atomic checkpoint files, their safe loading and their averaging.

A checkpoint is a ``torch.save`` dictionary written by the one atomic writer
(:mod:`spkpeft.io.atomic`: temporary name, fsync, rename), so a reader (or a run
restarted after ``SIGKILL`` or a full disk) only ever sees a complete old file or a
complete new one; :func:`remove_partial_writes` deletes the leftovers of killed writers
(training does so when it starts or resumes).

Loading never runs code from the file: ``torch.load(weights_only=True)``, whose unpickler
builds only tensors, containers and plain values, plus the types of :data:`SAFE_GLOBALS`
(NumPy's random-generator state in ``last.pt`` is an ``ndarray``).  A checkpoint that
needs anything else (a pickled function or class, as a malicious file would) is refused
with one line naming the file.
"""

from __future__ import annotations

import io
import os
import pickle
import re
import signal
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from spkpeft.errors import SpkpeftError, file_error
from spkpeft.io.atomic import remove_stale_temps, write_bytes_atomic


#: Test hook (see :func:`save_atomic`): ``N`` or ``N:NAME``.
TEST_KILL_ENV = "SPKPEFT_TEST_KILL_DURING_SAVE"
_hook_saves = 0  # save_atomic calls counted by the test hook in this process



def _test_kill_due(path: Path) -> bool:
    """True when the test hook asks to die during this save (see :func:`save_atomic`)."""
    global _hook_saves
    spec = os.environ.get(TEST_KILL_ENV, "")
    if not spec:
        return False
    count, _, name = spec.partition(":")
    if name and path.name != name:
        return False
    _hook_saves += 1
    return _hook_saves == int(count)


def _write_half_and_die(obj: Any, f) -> None:
    data = io.BytesIO()
    torch.save(obj, data)
    f.write(data.getvalue()[: data.tell() // 2])
    f.flush()
    os.fsync(f.fileno())
    os.kill(os.getpid(), signal.SIGKILL)


def save_atomic(obj: Any, path: str | Path) -> None:
    """``torch.save`` to ``path`` through the atomic writer (:mod:`spkpeft.io.atomic`).

    Test hook (for the reliability tests only; never set it otherwise): with
    the environment variable ``SPKPEFT_TEST_KILL_DURING_SAVE=N`` the process
    kills itself with ``SIGKILL`` during its ``N``-th call of this function,
    after writing half of the temporary file (flushed and fsynced) and before
    the rename; ``N:NAME`` counts only saves to files named ``NAME`` (e.g.
    ``2:last.pt``).  This reproduces a kill in the middle of a checkpoint write
    deterministically.
    """
    path = Path(path)
    kill = _test_kill_due(path)

    def produce(handle) -> None:
        if kill:
            _write_half_and_die(obj, handle)
        torch.save(obj, handle)

    write_bytes_atomic(path, produce)


def remove_partial_writes(directory: str | Path) -> list[Path]:
    """Delete the temporary files that killed writers left in ``directory`` (see
    :func:`spkpeft.io.atomic.remove_stale_temps`); returns them."""
    return remove_stale_temps(directory)


#: what a checkpoint may hold besides tensors, containers and plain values: the pieces of a
#: NumPy array (``np.random.get_state()`` in ``last.pt``'s RNG state)
SAFE_GLOBALS = [np._core.multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]


def safe_load(path: str | Path, what: str = "checkpoint", **kwargs: Any) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU with :data:`SAFE_GLOBALS` allowed; a file
    that is missing, unreadable or asks for anything else is one error naming it."""
    path = Path(path)
    if not path.is_file():
        raise file_error(path, f"{what} does not exist")
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            return torch.load(path, map_location="cpu", weights_only=True, **kwargs)
    except pickle.UnpicklingError as err:
        found = re.search(r"GLOBAL:? ?([\w.]+)", str(err))
        unsafe = found.group(1) if found else " ".join(str(err).split())[:160]
        raise file_error(path, f"refusing to load {what}: it holds objects that could run code (it asks for "
                               f"{unsafe}); only tensors and plain values are loaded") from None
    except Exception as err:
        raise file_error(path, f"cannot load {what} ({type(err).__name__}: {' '.join(str(err).split())[:200]})") \
            from None


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint on the CPU without running code from it (see the module docstring)."""
    path = Path(path)
    obj = safe_load(path)
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
