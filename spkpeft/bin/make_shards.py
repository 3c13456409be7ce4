"""Pack a Kaldi data directory into tar shards for sequential training reads (large corpora).

Usage::

    python -m spkpeft.bin.make_shards --data-dir data/voxceleb1/train --out data/voxceleb1/train_shards \
        [--utts-per-shard 1000] [--nj N] [--audio copy|flac|wav] [--seed 0]

Writes ``OUT/shards/shard-NNNNNN.tar`` (each utterance's labels as ``<utt-id>.json`` and its
audio as ``<utt-id>.wav|flac``), ``OUT/shard2utt``, ``OUT/shards.json`` and, last,
``OUT/shards.list`` (format: :mod:`spkpeft.io.shards`).  Utterances go to shards in a random
order drawn from ``--seed``.  ``--audio copy`` (default) stores each file's bytes as they
are (``.wav`` or ``.flac`` files); ``flac`` / ``wav`` decode and re-encode as 16-bit.
``--nj`` shards are written at a time.  Interrupted, the same command resumes: a shard
exists under its final name only when complete.  Train on the shards with
``data.shards: OUT`` (``bin/train --shards OUT``, ``run.sh --shards OUT``).  Prints the
shard directory's summary as JSON on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from spkpeft.bin._cli import run_main
from spkpeft.io.datadir import read_data_dir
from spkpeft.io.shards import pack_data_dir


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True, type=Path, help="Kaldi data directory to pack")
    parser.add_argument("--out", required=True, type=Path, help="shard directory to write")
    parser.add_argument("--utts-per-shard", type=int, default=1000, help="utterances per shard (about)")
    parser.add_argument("--nj", type=int, default=1, help="shards written at a time")
    parser.add_argument("--audio", choices=["copy", "flac", "wav"], default="copy",
                        help="copy the files as they are, or re-encode as 16-bit FLAC / WAV")
    parser.add_argument("--seed", type=int, default=0, help="seed of the utterances' order")
    args = parser.parse_args(argv)
    shards = pack_data_dir(read_data_dir(args.data_dir), args.out, args.utts_per_shard, args.nj, args.seed,
                           args.audio, log=lambda msg: print(f"make_shards: {msg}", file=sys.stderr))
    print(json.dumps({"shards": len(shards.paths), "utts": shards.meta["num_utts"], "out": str(args.out),
                      "list": str(args.out / "shards.list")}))
    return 0


if __name__ == "__main__":
    run_main(main)
