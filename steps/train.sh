#!/usr/bin/env bash
# Stage 3: train on a data directory.  One process on the CPU (--ngpu 0), one
# GPU (--ngpu 1), or torchrun with one process per GPU (--ngpu N > 1, nccl).
# --cpu-procs N > 1 runs N CPU processes with gloo (tests, debugging).
# Usage: steps/train.sh [--ngpu N] [--cpu-procs N] [--upstream NAME] [--overlay FILE] [--init-from CKPT]
#                       [--dev DEV_DIR] [--shards SHARD_DIR] --config FILE DATA_DIR EXP_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
ngpu=0
cpu_procs=1
config=
upstream=
overlay=
init_from=
dev=
shards=
usage="Usage: $0 [--ngpu N] [--cpu-procs N] [--upstream NAME] [--overlay FILE] [--init-from CKPT] [--dev DIR] [--shards DIR] --config FILE TRAIN_DATA_DIR EXP_DIR"
allow_positional=true
. steps/parse_options.sh
. steps/common.sh
[ $# -eq 2 ] && [ -n "$config" ] || usage_error "expected --config, TRAIN_DATA_DIR and EXP_DIR"
args=(--config "$config" --data "$1" --exp "$2" ${upstream:+--upstream "$upstream"}
      ${overlay:+--overlay "$overlay"} ${init_from:+--init-from "$init_from"} ${dev:+--dev "$dev"}
      ${shards:+--shards "$shards"})
if [ "$ngpu" -gt 1 ]; then
  torchrun --standalone --nproc_per_node "$ngpu" -m spkpeft.bin.train "${args[@]}" --device cuda
elif [ "$ngpu" -eq 1 ]; then
  python -m spkpeft.bin.train "${args[@]}" --device cuda
elif [ "$cpu_procs" -gt 1 ]; then
  OMP_NUM_THREADS=1 torchrun --standalone --nproc_per_node "$cpu_procs" -m spkpeft.bin.train "${args[@]}" --device cpu
else
  python -m spkpeft.bin.train "${args[@]}" --device cpu
fi
