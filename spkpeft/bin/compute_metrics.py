"""EER and minDCF of a score file against a Kaldi trials file.

Usage::

    python -m spkpeft.bin.compute_metrics --trials T --scores S \\
        [--p-target 0.01 0.05] [--c-miss 1] [--c-fa 1] [--json]

Every trial needs exactly one score and every scored pair must be a trial.
minDCF is always reported for p_target 0.01 and 0.05, plus any other
``--p-target``. With ``--json`` stdout is one JSON object with the keys
``eer_pct``, ``mindcf_p<p>`` (one per p_target, ``<p>`` formatted with ``%g``),
``n_trials`` and ``n_target``; otherwise a few human-readable lines.
Conventions (accept iff score >= threshold, tie groups, interpolated EER,
normalised minDCF) are documented in :mod:`spkpeft.eval.metrics`.
Input errors: one line on stderr naming ``file:line``, exit status 1.
"""

from __future__ import annotations

import argparse
import json
from typing import Sequence

from spkpeft.bin._cli import run_main
from spkpeft.eval.metrics import DEFAULT_P_TARGETS, compute_metrics, mindcf_key
from spkpeft.io.trials import load_scored_trials


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="compute_metrics", description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", required=True, help="Kaldi trials file: utt1 utt2 target|nontarget")
    parser.add_argument("--scores", required=True, help="score file: utt1 utt2 score")
    parser.add_argument("--p-target", type=float, nargs="+", default=[], metavar="P",
                        help="extra target priors for minDCF (0.01 and 0.05 are always reported)")
    parser.add_argument("--c-miss", type=float, default=1.0, help="cost of a miss (default 1)")
    parser.add_argument("--c-fa", type=float, default=1.0, help="cost of a false alarm (default 1)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    return parser


def p_targets_to_report(requested: Sequence[float]) -> list[float]:
    """Default priors plus the requested ones, ascending, one per ``mindcf_p<p>`` key."""
    by_key = {mindcf_key(p): p for p in (*DEFAULT_P_TARGETS, *requested)}
    return sorted(by_key.values())


def format_text(result: dict[str, float | int], p_targets: Sequence[float], c_miss: float, c_fa: float) -> str:
    """Human-readable summary, one metric per line."""
    n, n_tar = int(result["n_trials"]), int(result["n_target"])
    lines = [f"trials: {n} ({n_tar} target, {n - n_tar} nontarget)",
             f"EER: {result['eer_pct']:.4f} %"]
    for p in p_targets:
        lines.append(f"minDCF (p_target={p:g}, c_miss={c_miss:g}, c_fa={c_fa:g}): {result[mindcf_key(p)]:.4f}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    scores, labels = load_scored_trials(args.trials, args.scores)
    p_targets = p_targets_to_report(args.p_target)
    result = compute_metrics(scores, labels, p_targets, c_miss=args.c_miss, c_fa=args.c_fa)
    if args.json:
        print(json.dumps(result))
    else:
        print(format_text(result, p_targets, args.c_miss, args.c_fa))
    return 0


if __name__ == "__main__":
    run_main(main)
