"""Spoof-aware speaker verification metrics (SASV 2022 EERs, ASVspoof 5 min a-DCF, t-EER, min t-DCF) of a score file.

Usage::

    python -m spkpeft.bin.compute_sasv_metrics --scores S --protocol P [--cm-scores C --asv-scores A] [--json]

``P`` is a SASV trial protocol: ASVspoof 2019 LA ``ASVspoof2019.LA.asv.{dev,eval}.gi.trl.txt``
(``SPEAKER UTT bonafide|ATTACK target|nontarget|spoof``) or ASVspoof 5
``ASVspoof5.{dev,eval}.track_2.trial.tsv`` (``SPEAKER UTT GENDER bonafide|ATTACK KEY``).
``S`` holds the SASV score of every trial (``SPEAKER UTT SCORE``, higher = accept);
``A`` the ASV scores of the same trials (``SPEAKER UTT SCORE``) and ``C`` the CM scores
(``SPEAKER UTT SCORE`` per trial, or ``UTT SCORE`` per utterance such as the ``cm`` task's
``scores.txt``; higher = more bona fide).  With ``--json`` stdout is one JSON object with
the keys ``n_target``, ``n_nontarget``, ``n_spoof``, ``sasv_eer_pct``, ``sv_eer_pct``,
``spf_eer_pct`` (SASV 2022, interpolated EERs), ``min_adcf`` (ASVspoof 5 evaluation costs),
``per_attack_spf_eer_pct`` (``{attack: SPF-EER}``) and, given ``A`` and ``C``, ``t_eer_pct``
(concurrent t-EER) and ``min_tdcf`` (ASVspoof 5 form); otherwise a few human-readable lines.
Conventions and the one departure from the official code (the t-DCF's spoof false-alarm
rate): :mod:`spkpeft.eval.sasv_metrics`.  Input errors: one line on stderr naming
``file:line``, exit status 1.
"""

from __future__ import annotations

import argparse
import json
from typing import Sequence

from spkpeft.bin._cli import run_main
from spkpeft.eval.sasv_metrics import (compute_sasv_metrics, keyed_scores, read_sasv_protocol,
                                       read_scores_of_trials, spf_eer_per_attack)


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="compute_sasv_metrics", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scores", required=True, help="SASV score file: speaker utt score (higher = accept)")
    parser.add_argument("--protocol", required=True,
                        help="SASV protocol: speaker utt [gender] bonafide|attack target|nontarget|spoof")
    parser.add_argument("--cm-scores", help="CM scores: [speaker] utt score (with --asv-scores: t-EER, min t-DCF)")
    parser.add_argument("--asv-scores", help="ASV scores: speaker utt score (with --cm-scores: t-EER, min t-DCF)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    return parser


def format_text(result: dict) -> str:
    """Human-readable summary, one metric per line."""
    lines = [f"trials: {result['n_target'] + result['n_nontarget'] + result['n_spoof']} ({result['n_target']} "
             f"target, {result['n_nontarget']} nontarget, {result['n_spoof']} spoof)",
             f"SASV-EER: {result['sasv_eer_pct']:.4f} %", f"SV-EER: {result['sv_eer_pct']:.4f} %",
             f"SPF-EER: {result['spf_eer_pct']:.4f} %", f"min a-DCF (ASVspoof 5): {result['min_adcf']:.5f}"]
    if "t_eer_pct" in result:
        lines.append(f"t-EER: {result['t_eer_pct']:.4f} %")
        lines.append(f"min t-DCF (ASVspoof 5): {result['min_tdcf']:.5f}")
    for attack, eer in result["per_attack_spf_eer_pct"].items():
        lines.append(f"SPF-EER {attack}: {eer:.4f} %")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if (args.cm_scores is None) != (args.asv_scores is None):
        parser.error("--cm-scores and --asv-scores go together (t-EER and min t-DCF need both)")
    protocol = read_sasv_protocol(args.protocol)
    sasv = read_scores_of_trials(args.scores, protocol, args.protocol, "SASV score")
    asv = cm = None
    if args.asv_scores:
        asv = keyed_scores(read_scores_of_trials(args.asv_scores, protocol, args.protocol, "ASV score"), protocol.keys)
        cm = keyed_scores(read_scores_of_trials(args.cm_scores, protocol, args.protocol, "CM score"), protocol.keys)
    result = compute_sasv_metrics(keyed_scores(sasv, protocol.keys), asv, cm,
                                  spf_eer_per_attack(sasv, protocol.keys, protocol.sources))
    print(json.dumps(result) if args.json else format_text(result))
    return 0


if __name__ == "__main__":
    run_main(main)
