"""The one reader of the text files a user gives spkpeft (Kaldi tables, trials, protocols,
csv metadata, YAML configs, ``package.json``).

What every such file may hold, and what it may not:

* UTF-8, optionally behind a byte-order mark (``EF BB BF``, as Windows editors write it),
  which is dropped; any other byte sequence is an error naming the file and the line of the
  first undecodable byte (never a ``UnicodeDecodeError``);
* lines ended by ``\\n`` or ``\\r\\n`` (the ``\\r`` is dropped); a final newline is optional;
  no other character ends a line (``str.splitlines`` would also break at ``\\r``, ``\\v``,
  ``\\f``, ``\\x1c``-``\\x1e``, ``\\x85``, U+2028 and U+2029, and shift every later line number);
* no NUL byte (a binary file given by mistake): an error naming the line.

Fields are separated by any whitespace run (blanks, tabs; Kaldi's convention), which is the
callers' business.
"""

from __future__ import annotations

from pathlib import Path

from spkpeft.errors import file_error

BOM = b"\xef\xbb\xbf"


def read_text(path: str | Path, kind: str = "text") -> str:
    """The whole text of ``path`` (see the module docstring), line ends normalised to ``\\n``.

    ``kind`` names the file in the messages (``"trials"`` -> ``cannot read trials file``).
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as err:
        raise file_error(path, f"cannot read {kind} file ({err.strerror or err})") from None
    return decode_text(data, path, kind)


def decode_text(data: bytes, path: str | Path, kind: str = "text") -> str:
    """``data`` (the bytes of ``path``) as text, with the checks of :func:`read_text`."""
    if data.startswith(BOM):
        data = data[len(BOM):]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line_start = data.rfind(b"\n", 0, err.start) + 1
        raise file_error(path, f"{kind} file is not UTF-8 text (byte 0x{data[err.start]:02x} at column "
                               f"{err.start - line_start + 1})", data.count(b"\n", 0, err.start) + 1) from None
    nul = text.find("\0")
    if nul >= 0:
        raise file_error(path, f"{kind} file holds a NUL byte (a binary file?)", text.count("\n", 0, nul) + 1)
    return text.replace("\r\n", "\n")


def read_text_lines(path: str | Path, kind: str = "text") -> list[str]:
    """The lines of ``path`` without their line ends; line ``i`` (1-based) is item ``i - 1``."""
    lines = read_text(path, kind).split("\n")
    if lines[-1] == "":
        lines.pop()  # the final newline
    return lines

