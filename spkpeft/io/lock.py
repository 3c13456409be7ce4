"""One run per experiment directory: ``EXP/.lock``.

A run (``./run.sh``, or a stage's tool started by hand: ``spkpeft.bin.train``, ``extract``,
``evaluate``, ``score``, ``calibrate``) takes the lock of its experiment directory before
writing anything there and releases it when it exits.  The lock file is one line of JSON::

    {"pid": 12345, "host": "node07", "start": 81234567, "token": "node07:12345:81234567", "command": "..."}

``start`` is the process's start time (``/proc/<pid>/stat``, clock ticks since boot), so a pid
reused by another process is not taken for the holder.

* **held by another live run**: refused, one line naming the holder (pid, host, command) and
  the lock file;
* **stale** (the holder, on this host, is gone: killed, out of memory, the node rebooted):
  taken over, with a note on stderr;
* **held from another host**: its liveness cannot be checked from here, so it is refused;
  the message says to delete the lock file if that run is gone;
* **nested**: a tool started by a run that holds the lock (``run.sh`` exports the holder's
  token as ``SPKPEFT_EXP_LOCK``) runs under it without taking it again.

Taking, taking over and releasing happen under ``flock`` on the directory itself (a few
system calls), so two runs racing for a stale lock cannot both win; on file systems without
``flock`` that step is skipped.  The lock file itself is created with ``O_EXCL``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
from pathlib import Path
from typing import Iterator

from spkpeft.errors import SpkpeftError
from spkpeft.io.atomic import write_failed

LOCK_FILE = ".lock"
#: the token of the lock a parent run holds (exported by run.sh)
ENV = "SPKPEFT_EXP_LOCK"


def process_start(pid: int) -> int | None:
    """Start time of process ``pid`` (clock ticks since boot), None when it does not run (or is a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):  # exited, not yet reaped
        return None
    return int(fields[19])


def holder_alive(info: dict) -> bool | None:
    """Whether the run that wrote ``info`` still runs: None when it cannot be told (another host)."""
    if info.get("host") != socket.gethostname():
        return None
    pid = info.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    start = process_start(pid)
    return start is not None and start == info.get("start")


def _describe(info: dict) -> str:
    return f"pid {info.get('pid')} on {info.get('host')}: {str(info.get('command', '?'))[:120]}"


def _read(path: Path) -> dict | None:
    """The lock file's content ({} when unreadable or torn), None when there is none."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError:
        return {}
    try:
        info = json.loads(text)
    except ValueError:
        return {}
    return info if isinstance(info, dict) else {}


@contextlib.contextmanager
def _directory_mutex(directory: Path) -> Iterator[None]:
    """``flock`` on ``directory`` for the few calls that test and change the lock file."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:  # no flock on this file system: O_EXCL alone
            pass
        yield
    finally:
        os.close(fd)  # releases the flock


def _create(path: Path, info: dict) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, (json.dumps(info) + "\n").encode("utf-8"))
        os.fsync(fd)
    except OSError:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)


class ExperimentLock:
    """The lock of one experiment directory (see the module docstring); use :func:`experiment_lock`."""

    def __init__(self, exp: str | Path, pid: int | None = None, command: str | None = None) -> None:
        self.exp = Path(exp)
        self.path = self.exp / LOCK_FILE
        self.pid = pid or os.getpid()
        start = process_start(self.pid)
        host = socket.gethostname()
        self.info = {"pid": self.pid, "host": host, "start": start, "token": f"{host}:{self.pid}:{start}",
                     "command": command if command is not None else " ".join(sys.argv)}
        self.held = False

    @property
    def token(self) -> str:
        return self.info["token"]

    def acquire(self) -> "ExperimentLock":
        """Take the lock (or run under a parent's: ``SPKPEFT_EXP_LOCK``); a one-line error when another run has it."""
        try:
            self.exp.mkdir(parents=True, exist_ok=True)
            with _directory_mutex(self.exp):
                self._acquire()
        except OSError as err:
            raise write_failed(self.path, err) from None
        return self

    def _acquire(self) -> None:
        for _ in range(3):
            current = _read(self.path)
            if current is None:
                try:
                    _create(self.path, self.info)
                except FileExistsError:
                    continue  # a racing run on a file system without flock
                self.held = True
                return
            if current.get("token") and current.get("token") == os.environ.get(ENV):
                return  # started by the run that holds it
            alive = holder_alive(current) if current else False  # an empty or torn file: a run died writing it
            if alive:
                raise SpkpeftError(f"{self.exp}: another run is using this experiment directory ({_describe(current)}); "
                                   f"wait for it to finish, or use another --exp (lock file {self.path})")
            if alive is None:
                raise SpkpeftError(f"{self.exp}: locked by a run on host {current.get('host')} ({_describe(current)}), "
                                   f"which cannot be checked from {socket.gethostname()}; if that run has ended, "
                                   f"delete {self.path} and start again")
            print(f"{self.path}: taking over the stale lock of a run that has ended ({_describe(current)})",
                  file=sys.stderr)
            self.path.unlink(missing_ok=True)
        raise SpkpeftError(f"{self.path}: could not take the lock (other runs keep taking it)")

    def release(self) -> None:
        """Remove the lock file if this process took it (and it is still ours)."""
        if self.held:
            self.held = False
            release_token(self.exp, self.token)

    def __enter__(self) -> "ExperimentLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def experiment_lock(exp: str | Path) -> ExperimentLock:
    """``with experiment_lock(exp): ...``: hold ``exp``'s lock for the block (see the module docstring)."""
    return ExperimentLock(exp)


def release_token(exp: str | Path, token: str) -> None:
    """Remove ``exp``'s lock file if it holds ``token`` (the release of a shell script's lock)."""
    path = Path(exp) / LOCK_FILE
    with contextlib.suppress(OSError), _directory_mutex(Path(exp)):
        current = _read(path)
        if current is not None and current.get("token") == token:
            path.unlink()
