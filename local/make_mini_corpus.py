#!/usr/bin/env python3
"""Generate the synthetic "mini" speaker-verification corpus in VoxCeleb1 layout.

Output (all under ``--out ROOT``)::

    ROOT/wav/idNNNNN/<11-char session>/<NNNNN>.wav   16 kHz mono 16-bit PCM
    ROOT/veri_test.txt                               "<1|0> <spk/sess/utt.wav> <spk/sess/utt.wav>"

Speakers ``id10001`` .. are numbered in order; the last ``--n-test-spk`` are
the test speakers, the only ones in ``veri_test.txt`` (the others are the
training speakers).  The same options and seed give byte-identical files.
``veri_test.txt`` is written last, so its presence marks a finished corpus.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Sequence

try:
    from spkpeft.data.synth import CorpusSpec, count_trials, write_corpus
except ImportError:  # run as `python local/make_mini_corpus.py` without the package installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from spkpeft.data.synth import CorpusSpec, count_trials, write_corpus

from spkpeft.bin._cli import run_main


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, type=Path, help="corpus root directory")
    p.add_argument("--n-train-spk", type=int, default=80, help="training speakers (default 80)")
    p.add_argument("--n-test-spk", type=int, default=20, help="test speakers (default 20)")
    p.add_argument("--n-sessions", type=int, default=3, help="sessions (channels) per speaker (default 3)")
    p.add_argument("--n-utts", type=int, default=4, help="utterances per session (default 4)")
    p.add_argument("--min-dur", type=float, default=2.0, help="shortest utterance, seconds (default 2)")
    p.add_argument("--max-dur", type=float, default=5.0, help="longest utterance, seconds (default 5)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--n-trials", type=int, default=None,
                   help="trials in veri_test.txt, half target (default: twice the cross-session target pairs)")
    p.add_argument("--voice-spread", type=float, default=1.0,
                   help="between-speaker spread of the voice parameters (default 1; < 1: more similar voices)")
    p.add_argument("--channel-severity", type=float, default=1.0,
                   help="widens the channel ranges: EQ gain, low SNR, reverberation (default 1)")
    return p


def parse_spec(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> tuple[Path, CorpusSpec]:
    """Parse and validate options; any inconsistency is an argparse error."""
    args = parser.parse_args(argv)
    if args.n_train_spk < 1 or args.n_test_spk < 2:
        parser.error("need --n-train-spk >= 1 and --n-test-spk >= 2")
    if args.n_train_spk + args.n_test_spk > 89999:
        parser.error("at most 89999 speakers fit the idNNNNN naming")
    if args.n_sessions < 1 or args.n_utts < 1 or args.n_sessions * args.n_utts < 2:
        parser.error("need --n-sessions >= 1, --n-utts >= 1 and at least 2 utterances per speaker")
    if args.n_utts > 99999:
        parser.error("--n-utts must be <= 99999")
    if not 0.1 <= args.min_dur <= args.max_dur <= 600:
        parser.error("need 0.1 <= --min-dur <= --max-dur <= 600")
    if args.seed < 0:
        parser.error("--seed must be >= 0")
    if not (0 < args.voice_spread <= 10 and 0.25 <= args.channel_severity <= 4):
        parser.error("need 0 < --voice-spread <= 10 and 0.25 <= --channel-severity <= 4")
    spec = CorpusSpec(args.n_train_spk, args.n_test_spk, args.n_sessions, args.n_utts, args.min_dur,
                      args.max_dur, args.seed, args.n_trials, args.voice_spread, args.channel_severity)
    _, max_tgt, max_non = count_trials(spec)
    if args.n_trials is not None and not (2 <= args.n_trials and args.n_trials // 2 <= max_tgt
                                          and args.n_trials - args.n_trials // 2 <= max_non):
        parser.error(f"--n-trials must be >= 2 with at most {max_tgt} target and {max_non} nontarget "
                     f"pairs for these test speakers")
    return args.out, spec


def main(argv: Sequence[str] | None = None) -> int:
    out, spec = parse_spec(build_parser(), argv)
    start = time.perf_counter()
    summary = write_corpus(out, spec)
    print(f"make_mini_corpus: wrote {summary['n_utts']} utterances ({summary['minutes']:.1f} min) of "
          f"{summary['n_speakers']} speakers ({spec.n_train_spk} train, {spec.n_test_spk} test) and "
          f"{summary['n_trials']} trials ({summary['n_target']} target) to {out} "
          f"in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    run_main(main)
