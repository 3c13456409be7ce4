"""Summarise a K-fold cross-validation: per-fold accuracy and macro-F1, mean +- std.

Usage::

    python -m spkpeft.bin.cv_summary EXP/fold1 ... EXP/fold5 --out EXP [--set test]

Each fold directory holds the ``results.json`` of stage 5; writes ``OUT/cv_results.json`` and
``OUT/cv_results.md`` (also printed); the format is that of :mod:`spkpeft.tasks.cls.crossval`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

from spkpeft.bin._cli import run_main
from spkpeft.tasks.cls.crossval import CV_FILE, cv_table, summarize_folds
from spkpeft.io.atomic import write_json_atomic, write_text_atomic


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folds", nargs="+", type=Path, help="fold experiment directories (results.json)")
    parser.add_argument("--out", required=True, type=Path, help="where cv_results.{json,md} go")
    parser.add_argument("--set", default="test", help="the evaluated set of every fold (default test)")
    args = parser.parse_args(argv)
    summary = summarize_folds(args.folds, args.set)
    table = cv_table(summary)
    write_json_atomic(args.out / CV_FILE, summary)
    write_text_atomic(args.out / CV_FILE.replace(".json", ".md"), table.splitlines())
    print(table)
    return 0


if __name__ == "__main__":
    run_main(main)
