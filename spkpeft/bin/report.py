"""Print the results of an experiment as a Markdown table (stage 6).

Usage::

    python -m spkpeft.bin.report EXP/results.json
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

from spkpeft.bin._cli import run_main
from spkpeft.report import read_results, results_table


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, help="results.json written by stage 5")
    args = parser.parse_args(argv)
    print(results_table(read_results(args.results)))
    return 0


if __name__ == "__main__":
    run_main(main)
