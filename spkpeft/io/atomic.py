"""The one atomic writer: a reader sees the complete old file or the complete new one.

Every output file of spkpeft is written to ``.<name>.tmp<pid>`` in the destination's
directory, flushed to disk (``fsync``) and renamed over the destination (``os.replace``),
after which the directory entry is fsynced too.  A writer that fails with an exception
removes its temporary file; a process killed while writing leaves at most a hidden
``.<name>.tmp<pid>`` file, which no reader takes for an output, and which
:func:`remove_stale_temps` deletes when a stage resumes.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator

_TEMP = re.compile(r"^\..+\.tmp\d+$")


def temp_path(path: Path) -> Path:
    """``.<name>.tmp<pid>`` beside ``path``."""
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """Open a temporary file for writing; on a clean exit it is fsynced and renamed to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    if "b" not in mode:
        kwargs.setdefault("encoding", "utf-8")
    try:
        with open(tmp, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def write_text_atomic(path: str | Path, lines: Iterable[str]) -> None:
    """Write ``lines``, each newline-terminated, to ``path`` atomically."""
    with atomic_open(path, "w") as handle:
        for line in lines:
            handle.write(line + "\n")


def write_json_atomic(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    with atomic_open(path, "w") as handle:
        handle.write(json.dumps(obj, indent=2) + "\n")


def write_bytes_atomic(path: str | Path, produce: Callable[[IO[bytes]], None]) -> None:
    """Let ``produce(handle)`` write binary content (``torch.save``, ``savefig``) to ``path`` atomically."""
    with atomic_open(path, "wb") as handle:
        produce(handle)


def buffered(produce: Callable[[IO[bytes]], None]) -> bytes:
    """The bytes ``produce`` writes (for writers that must not see a half-written file)."""
    data = io.BytesIO()
    produce(data)
    return data.getvalue()


def remove_stale_temps(directory: str | Path) -> list[Path]:
    """Delete the ``.<name>.tmp<pid>`` files that killed writers left in ``directory``; returns them.

    Call it only while no other process writes to ``directory``.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    removed = sorted(p for p in directory.iterdir() if _TEMP.match(p.name) and p.is_file())
    for path in removed:
        path.unlink(missing_ok=True)
    return removed
