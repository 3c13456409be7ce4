#!/usr/bin/env python3
"""Generate the synthetic "mini" audio-classification corpus (Kaldi data directories).

Output (all under ``--out ROOT``)::

    ROOT/wav/<set>/<class>-<set>-<NNNN>.wav   16 kHz mono 16-bit PCM, --seconds long
    ROOT/<set>/wav.scp                        "<utt> <absolute path>"
    ROOT/<set>/utt2label                      "<utt> <class>"

for the sets ``train``, ``dev`` and ``test``, each with ``--n-train`` /
``--n-dev`` / ``--n-test`` clips of every class; the lists are sorted
(``LC_ALL=C``).  The sound classes and their generative models are described
in :mod:`spkpeft.data.synth_sounds`.  The same options and seed give
byte-identical files.  The lists are written last (``test/utt2label`` the
very last), so their presence marks a finished corpus.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Sequence

try:
    from spkpeft.data.synth_sounds import CLASSES, ClsCorpusSpec, write_cls_corpus
except ImportError:  # run as `python local/make_mini_cls_corpus.py` without the package installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from spkpeft.data.synth_sounds import CLASSES, ClsCorpusSpec, write_cls_corpus

from spkpeft.bin._cli import run_main


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, type=Path, help="corpus root directory")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--n-train", type=int, default=40, help="training clips per class (default 40)")
    p.add_argument("--n-dev", type=int, default=20, help="development clips per class (default 20)")
    p.add_argument("--n-test", type=int, default=20, help="test clips per class (default 20)")
    p.add_argument("--seconds", type=float, default=1.0, help="clip length in seconds (default 1)")
    p.add_argument("--classes", nargs="+", default=list(CLASSES), metavar="CLASS",
                   help=f"sound classes (default all: {' '.join(CLASSES)})")
    return p


def parse_spec(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> tuple[Path, ClsCorpusSpec]:
    """Parse and validate options; any inconsistency is an argparse error."""
    args = parser.parse_args(argv)
    if args.seed < 0:
        parser.error("--seed must be >= 0")
    for name in ("n_train", "n_dev", "n_test"):
        if not 1 <= getattr(args, name) <= 9999:
            parser.error(f"--{name.replace('_', '-')} must be in 1..9999 (ids have 4 digits)")
    if not 0.25 <= args.seconds <= 600:
        parser.error("--seconds must be in 0.25..600")
    unknown = [c for c in args.classes if c not in CLASSES]
    if unknown:
        parser.error(f"unknown class(es) {' '.join(unknown)}; choose from {' '.join(CLASSES)}")
    if len(set(args.classes)) != len(args.classes) or len(args.classes) < 2:
        parser.error("--classes needs at least 2 distinct classes")
    classes = tuple(c for c in CLASSES if c in args.classes)  # canonical order
    return args.out, ClsCorpusSpec(classes, args.n_train, args.n_dev, args.n_test, args.seconds, args.seed)


def main(argv: Sequence[str] | None = None) -> int:
    out, spec = parse_spec(build_parser(), argv)
    start = time.perf_counter()
    summary = write_cls_corpus(out, spec)
    print(f"make_mini_cls_corpus: wrote {summary['n_utts']} clips ({summary['minutes']:.1f} min) of "
          f"{summary['n_classes']} classes ({spec.n_train} train, {spec.n_dev} dev, {spec.n_test} test each) "
          f"to {out} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    run_main(main)
