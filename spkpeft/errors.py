"""One exception type for every user-facing error.

Command-line tools (``spkpeft.bin``) turn a :class:`SpkpeftError` into a single
line on stderr and exit status 1, so messages must be complete sentences that
name the offending file (and line) or configuration key.
"""

from __future__ import annotations

from pathlib import Path


class SpkpeftError(Exception):
    """A problem with the user's input (file, line, option or config key)."""


def file_error(path: str | Path, message: str, line: int | None = None) -> SpkpeftError:
    """Build an error that names ``path`` (and the 1-based ``line`` when given); a message of
    several lines (a library's) is joined into one."""
    where = f"{path}:{line}" if line is not None else f"{path}"
    if "\n" in message:
        message = " ".join(message.split())
    return SpkpeftError(f"{where}: {message}")
