#!/usr/bin/env bash
# CN-Celeb1: train on the development speakers, score the evaluation trials
# (enrollment ids against test utterances, overall and per genre).
# A thin entry point: the root run.sh, local/ and steps/ do the work; any
# option of the root run.sh may follow and overrides these defaults.
#   egs/cnceleb1/run.sh --data-root /data/CN-Celeb_flac [--config conf/lora.yaml] [--ngpu 4]
exec "$(dirname "$0")/../../run.sh" --corpus cnceleb1 --cnc-per-genre true \
  --config "$(dirname "$0")/../../conf/adapter_parallel_sv.yaml" "$@"
