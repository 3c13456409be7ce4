"""The untrained MFCC-statistics cosine baseline on a VoxCeleb1-layout corpus: the first row
of the mini comparison tables (egs/mini/RESULTS.md).

Run by hand (not part of the tests)::

    .venv/bin/python bench/mfcc_baseline_sv.py --root data/raw/mini [--trials veri_test.txt] [--json]

``ROOT/<trials>`` holds VoxCeleb trial lines ``<1|0> <spk/sess/utt.wav> <spk/sess/utt.wav>``,
the audio is under ``ROOT/wav/``.  Each utterance is ``[mean, std]`` of its MFCCs
``c_1..c_19`` (``tests/mfcc_baseline.py``, the baseline the tests compare the recipe with),
a trial is scored by the cosine; prints EER and minDCF (:func:`spkpeft.eval.metrics.compute_metrics`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]  # run as a script from anywhere
from mfcc_baseline import score_veri_test  # noqa: E402
from spkpeft.eval.metrics import compute_metrics  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", required=True, type=Path, help="corpus root (veri_test.txt and wav/)")
    parser.add_argument("--trials", default="veri_test.txt", help="trial list under ROOT (default veri_test.txt)")
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    args = parser.parse_args()
    labels, scores = score_veri_test(args.root / args.trials, args.root / "wav")
    metrics = compute_metrics(scores, labels)
    if args.json:
        print(json.dumps(metrics))
    else:
        print(f"MFCC baseline on {args.root / args.trials}: EER {metrics['eer_pct']:.2f} %, "
              f"minDCF@0.01 {metrics['mindcf_p0.01']:.3f}, minDCF@0.05 {metrics['mindcf_p0.05']:.3f} "
              f"({metrics['n_trials']} trials)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
