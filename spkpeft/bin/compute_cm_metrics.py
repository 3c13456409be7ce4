"""Spoofing-countermeasure metrics (ASVspoof EER, min t-DCF, per-attack and per-condition EER) of a CM score file.

Usage::

    python -m spkpeft.bin.compute_cm_metrics --scores S --protocol P [--asv-scores A] [--c012 F] [--conditions C] [--json]

``S`` holds ``UTT SCORE`` lines (higher = more bona fide, as written by the ``cm``
task), ``P`` is an ASVspoof 2019 CM protocol (``SPEAKER UTT ENV ATTACK bonafide|spoof``),
``A`` the organisers' ASV scores (``SOURCE target|nontarget|spoof SCORE``) of the
same set. Every protocol utterance needs exactly one score and every scored
utterance must be in the protocol. With ``--json`` stdout is one JSON object with
the keys ``n_bonafide``, ``n_spoof``, ``eer_pct``, ``min_tdcf`` (ASVspoof 2019
t-DCF, only with ``--asv-scores``) and ``min_tdcf_2021`` (revised t-DCF, with ``--asv-scores``
or ``--c012``: ``F`` the organisers' pre-computed coefficients of ASVspoof 2021, their
``keys/LA/LA-C012-<subset>.npy`` or a one-line ``C0 C1 C2`` file, which then take the place of
those computed from ``A``, as in the official package, and the key ``tdcf_2021_coefficients``
is ``"official"``),
``per_attack`` (``{attack: eer_pct}``, each attack against all bona fide) and, only
with ``--conditions`` (``C``: ``UTT CONDITION`` lines, e.g. a data directory's
``utt2condition``, covering exactly the protocol's utterances), ``per_condition``
(``{condition: eer_pct}``, each condition's bona fide against its spoofs, as the
ASVspoof 2021 evaluation package); otherwise a few human-readable lines.
EERs use the official ASVspoof convention; see :mod:`spkpeft.eval.cm_metrics`.
Input errors: one line on stderr naming ``file:line``, exit status 1.
"""

from __future__ import annotations

import argparse
import json
from typing import Sequence

from spkpeft.bin._cli import run_main
from spkpeft.errors import file_error
from spkpeft.eval.cm_metrics import (align_cm_scores, align_conditions, compute_cm_metrics, read_any_c012,
                                     read_asv_scores, read_cm_protocol, read_cm_scores, read_conditions)


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="compute_cm_metrics", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scores", required=True, help="CM score file: utt score (higher = more bona fide)")
    parser.add_argument("--protocol", required=True, help="CM protocol: speaker utt env attack bonafide|spoof")
    parser.add_argument("--asv-scores", help="ASV score file: source target|nontarget|spoof score (for t-DCF)")
    parser.add_argument("--c012", help="ASVspoof 2021 pre-computed t-DCF coefficients: the official "
                                       "LA-C012-<subset>.npy or a 'C0 C1 C2' line (pooled)")
    parser.add_argument("--conditions", help="condition file: utt condition (e.g. utt2condition); "
                                             "adds the per-condition EER")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    return parser


def format_text(result: dict) -> str:
    """Human-readable summary, one metric per line."""
    lines = [f"utterances: {result['n_bonafide'] + result['n_spoof']} "
             f"({result['n_bonafide']} bonafide, {result['n_spoof']} spoof)",
             f"EER: {result['eer_pct']:.4f} %"]
    if "min_tdcf" in result:
        lines.append(f"min t-DCF (ASVspoof 2019): {result['min_tdcf']:.5f}")
    if "min_tdcf_2021" in result:
        source = " (official C012)" if result.get("tdcf_2021_coefficients") == "official" else ""
        lines.append(f"min t-DCF (ASVspoof 2021, revised): {result['min_tdcf_2021']:.5f}{source}")
    for attack, eer in result["per_attack"].items():
        lines.append(f"EER {attack}: {eer:.4f} %")
    for condition, eer in result.get("per_condition", {}).items():
        lines.append(f"EER condition {condition}: {eer:.4f} %")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    protocol = read_cm_protocol(args.protocol)
    for key in ("bonafide", "spoof"):
        if key not in protocol.keys:
            raise file_error(args.protocol, f"no '{key}' utterances (the EER needs both bonafide and spoof)")
    scores = align_cm_scores(protocol, read_cm_scores(args.scores), args.protocol, args.scores)
    asv = read_asv_scores(args.asv_scores) if args.asv_scores else None
    conditions = None
    if args.conditions:
        conditions = align_conditions(protocol, read_conditions(args.conditions), args.protocol, args.conditions)
    c012 = read_any_c012(args.c012) if args.c012 else None
    result = compute_cm_metrics(scores, protocol.keys, protocol.attacks, asv, conditions, c012)
    print(json.dumps(result) if args.json else format_text(result))
    return 0


if __name__ == "__main__":
    run_main(main)
