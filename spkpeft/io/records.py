"""Whitespace-separated text records: one record per line, a fixed number of fields.

Used by the Kaldi trials and score files (:mod:`spkpeft.io.trials`) and the
ASVspoof protocol, ASV-score and CM-score files (:mod:`spkpeft.eval.cm_metrics`).
Line ``i`` of a file is its ``i``-th record: blank lines are errors, not skipped.
The text is read by :func:`spkpeft.textfile.read_text_lines` (UTF-8 with an optional BOM,
``\\n`` or ``\\r\\n`` line ends and nothing else, a final newline optional).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from spkpeft.errors import file_error
from spkpeft.textfile import read_text_lines


def read_records(path: str | Path, kind: str, n_fields: int | tuple[int, ...],
                 layout: str) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line_number, fields)`` for every line of ``path`` (UTF-8), numbered from 1.

    Errors name ``path:line`` (``path:`` for the whole file): unreadable or
    empty file (``kind`` names it, e.g. ``"trials"``), a line without exactly
    ``n_fields`` fields (the message shows ``layout``, e.g. ``"utt1 utt2 label"``).
    With a tuple of counts (a file of one of several layouts), the first line's count
    is the file's, and every other line must have it too.
    """
    counts = (n_fields,) if isinstance(n_fields, int) else tuple(n_fields)
    lines = read_text_lines(path, kind)
    if not lines:
        raise file_error(path, f"{kind} file is empty")
    expected = " or ".join(map(str, counts))
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if len(fields) not in counts:
            raise file_error(path, f"expected {expected} fields '{layout}', found {len(fields)}", number)
        if number == 1 and len(counts) > 1:
            counts, expected = (len(fields),), f"{len(fields)} (as on line 1)"
        yield number, fields
