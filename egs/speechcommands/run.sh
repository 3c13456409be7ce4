#!/usr/bin/env bash
# Speech Commands v2: train on the release's training utterances, select on validation_list.txt,
# score testing_list.txt; the 35-word task by default (AST, PETL-AST), --sc-task 12 for
# yes/no/up/down/left/right/on/off/stop/go + _unknown_ + _silence_.  A thin entry point over
# the root run.sh; its options may follow and override these defaults.
#   egs/speechcommands/run.sh --data-root /data/speech_commands_v0.02 [--sc-task 12] \
#       [--overlay conf/overlays/speechcommands_noise.yaml] [--config conf/cls/lora.yaml]
exec "$(dirname "$0")/../../run.sh" --corpus speechcommands \
  --config "$(dirname "$0")/../../conf/cls/lora.yaml" "$@"
