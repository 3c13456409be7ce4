#!/usr/bin/env bash
# Pack a Kaldi data directory into tar shards of about --utts-per-shard utterances
# (python -m spkpeft.bin.make_shards; format in spkpeft/io/shards.py).  Resumable: run the
# same command again after an interruption.  Train on them with data.shards / --shards.
# Usage: steps/make_shards.sh [--nj N] [--utts-per-shard N] [--audio copy|flac|wav] DATA_DIR SHARD_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
nj=1
utts_per_shard=1000
audio=copy
usage="Usage: $0 [--nj N] [--utts-per-shard N] [--audio copy|flac|wav] DATA_DIR SHARD_DIR"
allow_positional=true
. steps/parse_options.sh
. steps/common.sh
[ $# -eq 2 ] || usage_error "expected DATA_DIR and SHARD_DIR"
python -m spkpeft.bin.make_shards --data-dir "$1" --out "$2" --nj "$nj" \
  --utts-per-shard "$utts_per_shard" --audio "$audio"
