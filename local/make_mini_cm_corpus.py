#!/usr/bin/env python3
"""Generate the synthetic "mini" spoofing corpus in the ASVspoof 2019 LA layout.

Output (all under ``--out ROOT``)::

    ROOT/LA/ASVspoof2019_LA_{train,dev,eval}/flac/LA_{T,D,E}_NNNNNNN.flac   16 kHz mono FLAC (16 bit)
    ROOT/LA/ASVspoof2019_LA_cm_protocols/ASVspoof2019.LA.cm.{train.trn,dev.trl,eval.trl}.txt
        "SPEAKER UTT - ATTACK KEY" (ATTACK "-" + bonafide, or Axx + spoof), sorted by UTT
    ROOT/LA/ASVspoof2019_LA_asv_scores/ASVspoof2019.LA.asv.{dev,eval}.gi.trl.scores.txt
        "SOURCE KEY SCORE" (synthetic ASV scores, see spkpeft.data.synth_spoof)
    with --n-enroll K > 0 (spoof-aware speaker verification), also K enrollment utterances per
    dev / eval speaker in the set's flac/ and
    ROOT/LA/ASVspoof2019_LA_asv_protocols/ASVspoof2019.LA.asv.{dev,eval}.{female,male}.trn.txt
        "SPEAKER UTT1,UTT2,..." (enrollment lists)
    ROOT/LA/ASVspoof2019_LA_asv_protocols/ASVspoof2019.LA.asv.{dev,eval}.gi.trl.txt
        "SPEAKER UTT bonafide|ATTACK target|nontarget|spoof" (trials)

Speakers ``LA_NNNN`` are disjoint across the sets; train and dev hold attacks
A01-A06, eval the unseen A07-A09 (models in :mod:`spkpeft.data.synth_spoof`).
``--first-speaker N`` numbers the speakers from N (their voices are seeded by that index, like
the mini SV corpus's: from 1000 on, voices no mini SV model was trained or tested on).
The same options and seed give byte-identical files.  The protocols are
written last (the eval CM protocol the very last), so their presence marks a
finished corpus.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Sequence

try:
    from spkpeft.data.synth_spoof import CmCorpusSpec, validate_spec, write_cm_corpus
except ImportError:  # run as `python local/make_mini_cm_corpus.py` without the package installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from spkpeft.data.synth_spoof import CmCorpusSpec, validate_spec, write_cm_corpus

from spkpeft.bin._cli import run_main
from spkpeft.errors import SpkpeftError

_D = CmCorpusSpec()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, type=Path, help="corpus root directory")
    p.add_argument("--seed", type=int, default=_D.seed, help=f"random seed (default {_D.seed})")
    for name in ("train", "dev", "eval"):
        p.add_argument(f"--n-{name}", type=int, default=_D.n_utts(name),
                       help=f"{name} utterances (default {_D.n_utts(name)})")
        p.add_argument(f"--n-{name}-spk", type=int, default=_D.n_spk(name),
                       help=f"{name} speakers (default {_D.n_spk(name)})")
    p.add_argument("--bonafide-frac", type=float, default=_D.bonafide_frac,
                   help=f"fraction of bona fide utterances (default {_D.bonafide_frac})")
    p.add_argument("--min-dur", type=float, default=_D.min_dur, help=f"seconds (default {_D.min_dur})")
    p.add_argument("--max-dur", type=float, default=_D.max_dur, help=f"seconds (default {_D.max_dur})")
    p.add_argument("--first-speaker", type=int, default=_D.first_speaker,
                   help=f"global index of the first speaker (default {_D.first_speaker}; 1000: voices the mini "
                        "SV corpus does not have)")
    p.add_argument("--n-enroll", type=int, default=_D.n_enroll,
                   help=f"SASV enrollment utterances per dev/eval speaker, 0 = no SASV lists (default {_D.n_enroll})")
    return p


def parse_spec(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> tuple[Path, CmCorpusSpec]:
    """Parse and validate options; any inconsistency is an argparse error."""
    args = parser.parse_args(argv)
    if args.seed < 0:
        parser.error("--seed must be >= 0")
    if args.max_dur > 600:
        parser.error("--max-dur must be <= 600")
    spec = CmCorpusSpec(args.n_train, args.n_dev, args.n_eval, args.n_train_spk, args.n_dev_spk, args.n_eval_spk,
                        args.bonafide_frac, args.min_dur, args.max_dur, args.seed, args.first_speaker,
                        args.n_enroll)
    try:
        validate_spec(spec)
    except SpkpeftError as err:
        parser.error(str(err))
    return args.out, spec


def main(argv: Sequence[str] | None = None) -> int:
    out, spec = parse_spec(build_parser(), argv)
    start = time.perf_counter()
    summary = write_cm_corpus(out, spec)
    print(f"make_mini_cm_corpus: wrote {summary['n_utts']} utterances ({summary['minutes']:.1f} min, "
          f"{summary['n_bonafide']} bona fide) of {summary['n_speakers']} speakers ({spec.n_train} train, "
          f"{spec.n_dev} dev, {spec.n_eval} eval) to {out} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    run_main(main)
