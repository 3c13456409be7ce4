"""The one writer of spkpeft's output files: a reader sees the complete old file or the complete new one.

A file is written to ``.<name>.tmp<pid>`` in the destination's directory, flushed to disk
(``fsync``), closed and renamed over the destination (``os.replace``), after which the
directory entry is fsynced too.  A directory of files (a prepared corpus, an exported
package) is assembled in a hidden sibling made by :func:`temp_dir_for` and renamed into
place by :func:`replace_dir`.  A process killed while writing leaves at most a hidden
``.<name>.tmp<pid>`` file, which no reader takes for an output, and which
:func:`remove_stale_temps` deletes when a stage resumes.

A write that fails (``ENOSPC`` on a full disk, ``EDQUOT`` over quota, ``EIO``, ``EROFS`` ...,
at any of the steps above) removes its temporary file, leaves the destination as it was and
raises :class:`WriteFailed`, a :class:`~spkpeft.errors.SpkpeftError` whose one line names the
destination and, when space ran out, how much free space the file needs and how much there
is, so that the command-line tools stop with that line (no traceback) and the same command,
run again after space is freed, resumes from the last complete state.

Every system call the writer makes goes through :data:`FS` (open, write, flush, fsync,
close, rename, mkdir, directory fsync), so that the reliability tests can fail each one in
turn (tests/test_full_disk.py).
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import re
import shutil
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator

from spkpeft.errors import SpkpeftError

_TEMP = re.compile(r"^\..+\.tmp\d+$")
#: lines of text joined into one ``write`` call
_TEXT_BLOCK = 1 << 20
#: errors that mean "no room": their message says how much free space is needed
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class FileSystem:
    """The system calls of the writer (tests replace :data:`FS` to inject faults)."""

    def open(self, path: Path, mode: str, **kwargs: Any) -> IO:
        return open(path, mode, **kwargs)

    def fsync(self, handle: IO) -> None:
        os.fsync(handle.fileno())

    def replace(self, src: Path, dest: Path) -> None:
        os.replace(src, dest)

    def mkdir(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)

    def fsync_dir(self, directory: Path) -> None:
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


FS = FileSystem()


class WriteFailed(SpkpeftError):
    """An output could not be written; the previous complete state is unchanged."""

    def __init__(self, message: str, path: Path | None = None, errno_: int | None = None,
                 needed: int | None = None) -> None:
        super().__init__(message)
        self.path, self.errno, self.needed = path, errno_, needed


def format_bytes(n: int) -> str:
    """``n`` bytes in decimal units (``480.9 kB``, ``1.2 GB``)."""
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def _existing(path: Path) -> Path:
    """``path`` or its nearest existing parent (absolute)."""
    path = Path(os.path.abspath(path))
    while not path.exists():
        path = path.parent
    return path


def free_bytes(path: Path) -> int:
    """Bytes available to this user on the file system holding ``path`` (or its nearest existing parent)."""
    return shutil.disk_usage(_existing(path)).free


def _mount_point(path: Path) -> Path:
    path = _existing(path)
    while not os.path.ismount(path):
        path = path.parent
    return path


def write_failed(path: Path, err: OSError, needed: int | None = None, at_least: bool = False) -> WriteFailed:
    """The one-line error of a failed write of ``path`` (see the module docstring).

    ``needed``: the bytes the file needs (``at_least``: a lower bound, the bytes written
    before the failure, when the full size cannot be known).
    """
    code = err.errno
    reason = os.strerror(code) if code else str(err)
    if code in _NO_SPACE:
        free = free_bytes(path.parent)
        amount = "more" if needed is None else ("at least " if at_least else "") + format_bytes(needed)
        short = f"; free at least {format_bytes(needed - free)} more" if needed is not None and needed > free else ""
        message = (f"{path}: cannot write it ({reason}): it needs {amount} of free space, "
                   f"{format_bytes(free)} is free on {_mount_point(path.parent)}{short}, then run the same "
                   f"command again: it resumes from the last complete state, which is unchanged")
    else:
        message = (f"{path}: cannot write it ({reason}); the previous state is unchanged: fix the cause and "
                   f"run the same command again")
    return WriteFailed(message, path, code, needed)


def temp_path(path: Path) -> Path:
    """``.<name>.tmp<pid>`` beside ``path``."""
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def _own_error(err: OSError, tmp: Path) -> bool:
    """Whether ``err`` came from the writer's own calls (on the temporary file, the destination
    or its directories), not from a file a producer reads, say."""
    return err.filename is None or Path(err.filename) in (tmp, *tmp.parents)


def os_error_in(exc: BaseException) -> OSError | None:
    """``exc`` or the ``OSError`` it was raised while handling: ``torch.save`` turns a failed
    write into ``RuntimeError: [enforce fail at inline_container.cc] unexpected pos``."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OSError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _discard(tmp: Path) -> int:
    """Remove ``tmp``; returns how many bytes it held."""
    try:
        size = tmp.stat().st_size
        tmp.unlink()
        return size
    except OSError:
        return 0


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", needed: Callable[[], int | None] | None = None,
                **kwargs: Any) -> Iterator[IO]:
    """Open a temporary file for writing; on a clean exit it is flushed, fsynced, closed and
    renamed to ``path`` (see the module docstring).

    A write error (an ``OSError`` of the writer's own calls) becomes :class:`WriteFailed`;
    ``needed()``, when given, tells the file's full size for its message (otherwise the
    bytes written before the failure are given as a lower bound).
    """
    path = Path(path)
    tmp = temp_path(path)
    if "b" not in mode:
        kwargs.setdefault("encoding", "utf-8")
    try:
        FS.mkdir(path.parent)
        handle = FS.open(tmp, mode, **kwargs)
        try:
            yield handle
            handle.flush()
            FS.fsync(handle)
        except BaseException:
            with contextlib.suppress(OSError):  # the first error is the one to report
                handle.close()
            raise
        handle.close()
        FS.replace(tmp, path)
        FS.fsync_dir(path.parent)
    except Exception as exc:
        written = _discard(tmp)
        err = os_error_in(exc)
        if err is None or not _own_error(err, tmp):
            raise
        size = None
        if needed is not None:
            with contextlib.suppress(Exception):  # a size is only a better message
                size = needed()
        raise write_failed(path, err, size if size is not None else written, at_least=size is None) from None
    except BaseException:
        _discard(tmp)
        raise


def _text_blocks(lines: Iterable[str], counted: list[int]) -> Iterator[str]:
    """``lines``, each newline-terminated, joined into blocks of about 1 MB; ``counted[0]``
    accumulates their UTF-8 size."""
    block: list[str] = []
    size = 0
    for line in lines:
        block.append(line + "\n")
        size += len(line) + 1
        if size >= _TEXT_BLOCK:
            text = "".join(block)
            counted[0] += len(text.encode("utf-8"))
            yield text
            block, size = [], 0
    if block:
        text = "".join(block)
        counted[0] += len(text.encode("utf-8"))
        yield text


def write_text_atomic(path: str | Path, lines: Iterable[str]) -> None:
    """Write ``lines``, each newline-terminated, to ``path`` atomically (UTF-8)."""
    counted = [0]
    blocks = _text_blocks(lines, counted)

    def needed() -> int:  # the rest of ``lines`` too: the exact size of the whole file
        for _ in blocks:
            pass
        return counted[0]

    with atomic_open(path, "w", needed=needed, newline="") as handle:
        for text in blocks:
            handle.write(text)


def write_json_atomic(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    write_text_atomic(path, [json.dumps(obj, indent=2)])


class _CountingSink(io.RawIOBase):
    """A seekable file that keeps nothing and measures how large the written file would be."""

    def __init__(self) -> None:
        super().__init__()
        self.pos = self.size = 0

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def write(self, data) -> int:
        n = memoryview(data).nbytes
        self.pos += n
        self.size = max(self.size, self.pos)
        return n

    def readinto(self, buffer) -> int:
        return 0

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.pos, 2: self.size}[whence]
        self.pos = base + offset
        return self.pos

    def tell(self) -> int:
        return self.pos


def measured_size(produce: Callable[[IO[bytes]], None]) -> int | None:
    """How many bytes ``produce(handle)`` writes (run once more into a counting sink), None if it cannot tell."""
    sink = _CountingSink()
    try:
        produce(sink)
    except Exception:  # a producer that needs a real file: no exact size
        return None
    return sink.size


def write_bytes_atomic(path: str | Path, produce: Callable[[IO[bytes]], None]) -> None:
    """Let ``produce(handle)`` write binary content (``torch.save``, ``np.save``, ``savefig``) to
    ``path`` atomically; a failed write's message gives the full size (``produce`` runs once
    more into a counting sink to measure it)."""
    with atomic_open(path, "wb", needed=lambda: measured_size(produce)) as handle:
        produce(handle)


def buffered(produce: Callable[[IO[bytes]], None]) -> bytes:
    """The bytes ``produce`` writes (for writers that must not see a half-written file)."""
    data = io.BytesIO()
    produce(data)
    return data.getvalue()


def temp_dir_for(dest: Path) -> Path:
    """An empty temporary sibling of ``dest`` (``.<name>.tmp<pid>``), for :func:`replace_dir`."""
    tmp = dest.with_name(f".{dest.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        FS.mkdir(tmp)
    except OSError as err:
        raise write_failed(dest, err) from None
    return tmp


def replace_dir(new: Path, dest: Path) -> None:
    """Move the finished directory ``new`` to ``dest``, replacing what was there, and fsync the parent.

    The old ``dest`` is first renamed to a hidden ``.<name>.old<pid>`` sibling (removed at the
    end), so at every moment ``dest`` is the complete old or the complete new directory
    (absent only between the two renames); a failed rename puts the old one back.
    """
    old = dest.with_name(f".{dest.name}.old{os.getpid()}")
    moved = False
    try:
        if dest.exists():
            FS.replace(dest, old)
            moved = True
        FS.replace(new, dest)
    except OSError as err:
        if moved:
            os.replace(old, dest)
        raise write_failed(dest, err) from None
    if moved:
        shutil.rmtree(old, ignore_errors=True)
    try:
        FS.fsync_dir(dest.parent)
    except OSError as err:
        raise write_failed(dest, err) from None


def directory_bytes(directory: Path) -> int:
    """Total size of the files under ``directory`` (0 when it does not exist)."""
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file()) if directory.is_dir() else 0


@contextlib.contextmanager
def new_directory(dest: str | Path) -> Iterator[Path]:
    """Assemble a directory (a prepared corpus, an exported package) in the hidden sibling
    :func:`temp_dir_for` yields, then :func:`replace_dir` it to ``dest``; on any error the
    temporary directory is removed and ``dest`` is unchanged.  A failed write inside it is
    reported about ``dest`` (the file's path under ``dest``; the space needed counts the
    files already written, which the directory needs too)."""
    dest = Path(dest)
    tmp = temp_dir_for(dest)
    try:
        yield tmp
        replace_dir(tmp, dest)
    except WriteFailed as err:
        if err.path is None or err.errno is None or tmp not in err.path.parents:
            raise
        written = directory_bytes(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
        needed = None if err.needed is None else written + err.needed
        raise write_failed(dest / err.path.relative_to(tmp), OSError(err.errno, os.strerror(err.errno)), needed,
                           at_least=True) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


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
