"""The PETL comparison table: methods x corpora (trainable parameters and %, accuracy per corpus).

Usage::

    python -m spkpeft.bin.petl_table --corpus esc50=exp/petl/esc50 --corpus speechcommands_35=exp/petl/speechcommands_35 \
        --out exp/petl [--variants "frozen lora adapter_pfeiffer"] [--set test]

``--corpus NAME=ROOT`` (repeated, in column order): ``ROOT/<variant>/`` holds ``cv_results.json``
(accuracy mean +- std over folds) or ``results.json``.  Writes ``OUT/petl_table.md`` (also
printed) and ``OUT/petl_table.csv`` (one row per variant x corpus, full precision); the format
is that of :mod:`spkpeft.tasks.cls.petl_table`.
"""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path
from typing import Sequence

from spkpeft.bin._cli import run_main
from spkpeft.errors import SpkpeftError
from spkpeft.tasks.cls.petl_table import KEYS, petl_markdown, petl_rows
from spkpeft.io.atomic import write_text_atomic


def corpus_arg(value: str) -> tuple[str, Path]:
    """``NAME=ROOT`` -> ``(NAME, ROOT)``."""
    name, sep, root = value.partition("=")
    if not sep or not name or not root:
        raise SpkpeftError(f"--corpus takes NAME=EXPERIMENT_ROOT, got '{value}'")
    return name, Path(root)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", action="append", required=True, help="NAME=ROOT, once per corpus (column)")
    parser.add_argument("--out", required=True, type=Path, help="where petl_table.{md,csv} go")
    parser.add_argument("--variants", default="", help="variants (rows) in order; default every one found, sorted")
    parser.add_argument("--set", default="test", help="the set whose accuracy is reported (default test)")
    args = parser.parse_args(argv)
    corpora = [corpus_arg(value) for value in args.corpus]
    rows = petl_rows(corpora, args.variants.split() or None, args.set)
    table = petl_markdown(rows, [name for name, _ in corpora])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(KEYS)
    writer.writerows([["" if row[key] is None else row[key] for key in KEYS] for row in rows])
    write_text_atomic(args.out / "petl_table.md", table.splitlines())
    write_text_atomic(args.out / "petl_table.csv", buffer.getvalue().splitlines())
    print(table)
    return 0


if __name__ == "__main__":
    run_main(main)
