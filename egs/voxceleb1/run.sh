#!/usr/bin/env bash
# VoxCeleb1: train on the dev speakers, score Vox1-O (original and cleaned lists).
# A thin entry point: the root run.sh, local/ and steps/ do the work; any
# option of the root run.sh may follow and overrides these defaults.
#   egs/voxceleb1/run.sh --data-root /data/VoxCeleb1 [--config conf/lora.yaml] [--ngpu 4]
exec "$(dirname "$0")/../../run.sh" --corpus voxceleb1 --vox1-lists vox1_o,vox1_o_clean \
  --config "$(dirname "$0")/../../conf/adapter_parallel_sv.yaml" "$@"
