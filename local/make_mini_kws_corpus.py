#!/usr/bin/env python3
"""Generate the synthetic "mini KWS" spoken-keyword corpus in the Speech Commands v2 release layout.

Output (all under ``--out ROOT``)::

    ROOT/<word>/<hash>_nohash_<n>.wav   1 s, 16 kHz mono 16-bit PCM; <hash> one speaker, n < --reps
    ROOT/validation_list.txt            the --n-dev-spk speakers' files (C-sorted)
    ROOT/testing_list.txt               the --n-test-spk speakers' files (written last)
    ROOT/_background_noise_/            white_noise, pink_noise, running_tap, wind (.wav), README.md

Speakers are eSpeak NG voices (English accents x voice variants x pitch, range, rate and a
frequency warp) each with one recording channel (EQ, reverberation, noise, level); they are
assigned to the sets by the release's hashing rule of the speaker hash.  Details in
:mod:`spkpeft.data.synth_keywords`.  The same options give byte-identical files.  Prepare with
``local/prepare_speechcommands.sh [--task 35|12] ROOT WAV_OUT DATA_OUT``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Sequence

try:
    from spkpeft.data.synth_keywords import DEFAULT_WORDS, KwsCorpusSpec, write_kws_corpus
except ImportError:  # run as `python local/make_mini_kws_corpus.py` without the package installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from spkpeft.data.synth_keywords import DEFAULT_WORDS, KwsCorpusSpec, write_kws_corpus

from spkpeft.bin._cli import run_main
from spkpeft.data.speech_commands import WORDS


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, type=Path, help="corpus root directory")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--n-train-spk", type=int, default=40, help="training speakers (default 40)")
    p.add_argument("--n-dev-spk", type=int, default=10, help="validation speakers (default 10)")
    p.add_argument("--n-test-spk", type=int, default=12, help="test speakers (default 12)")
    p.add_argument("--reps", type=int, default=2, help="repetitions of every word by every speaker (default 2)")
    p.add_argument("--words", nargs="+", default=list(DEFAULT_WORDS), metavar="WORD",
                   help=f"words, each one of the 35 Speech Commands words (default: {' '.join(DEFAULT_WORDS)})")
    p.add_argument("--channel-severity", type=float, default=1.0,
                   help="recording-channel severity (spkpeft.data.synth.sample_channel; default 1)")
    p.add_argument("--noise-seconds", type=float, default=30.0,
                   help="length of each background-noise file (default 30)")
    return p


def parse_spec(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> tuple[Path, KwsCorpusSpec]:
    """Parse and validate options; any inconsistency is an argparse error."""
    args = parser.parse_args(argv)
    if args.seed < 0:
        parser.error("--seed must be >= 0")
    for name in ("n_train_spk", "n_dev_spk", "n_test_spk", "reps"):
        if not 1 <= getattr(args, name) <= 9999:
            parser.error(f"--{name.replace('_', '-')} must be in 1..9999")
    unknown = [w for w in args.words if w not in WORDS]
    if unknown:
        parser.error(f"not Speech Commands v2 word(s): {' '.join(unknown)}; choose from {' '.join(WORDS)}")
    if len(set(args.words)) != len(args.words):
        parser.error("--words must be distinct")
    if not 0.0 < args.channel_severity <= 4.0:
        parser.error("--channel-severity must be in (0, 4]")
    if not 10.0 <= args.noise_seconds <= 600.0:
        parser.error("--noise-seconds must be in [10, 600] (each set's share of a noise file must hold 1 s)")
    return args.out, KwsCorpusSpec(tuple(args.words), args.n_train_spk, args.n_dev_spk, args.n_test_spk, args.reps,
                                   args.seed, args.channel_severity, args.noise_seconds)


def main(argv: Sequence[str] | None = None) -> int:
    out, spec = parse_spec(build_parser(), argv)
    start = time.perf_counter()
    summary = write_kws_corpus(out, spec)
    print(f"make_mini_kws_corpus: wrote {summary['n_utts']} clips ({summary['minutes']:.1f} min) of "
          f"{len(spec.words)} words by {summary['n_speakers']} speakers ({spec.n_train_spk} train, "
          f"{spec.n_dev_spk} dev, {spec.n_test_spk} test) to {out} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    run_main(main)
