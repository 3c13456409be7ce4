"""The MFCC-statistics + logistic-regression baseline of a prepared classification corpus: the
first row of the classification comparison tables (mini_cls, the mini keyword corpus).

Run by hand (not part of the tests)::

    .venv/bin/python bench/mfcc_baseline_cls.py --data data/mini_kws_12 [--sets dev test] [--json]

``DATA/train`` trains the model, every other set of ``--sets`` is scored; each set is a data
directory with ``wav.scp`` and ``utt2label``.  Features and model: ``tests/cls_baseline.py``
(mean and standard deviation of 20 MFCCs, standardised, multinomial logistic regression), the
baseline the classification tests compare the recipes with.  Prints the accuracy in percent.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]  # run as a script from anywhere
from cls_baseline import mfcc_logreg_baseline  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, type=Path, help="prepared corpus (DATA/train, DATA/<set>)")
    parser.add_argument("--sets", nargs="+", default=["dev", "test"], help="sets to score (default dev test)")
    parser.add_argument("--json", action="store_true", help="print {set: accuracy} as JSON")
    args = parser.parse_args()
    accuracy = {name: mfcc_logreg_baseline(args.data / "train", args.data / name) for name in args.sets}
    if args.json:
        print(json.dumps(accuracy))
    else:
        print(f"MFCC + logistic regression on {args.data}: "
              + ", ".join(f"{name} {acc:.1f} %" for name, acc in accuracy.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
