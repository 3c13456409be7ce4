#!/usr/bin/env bash
# The classification mini recipe (synthetic sound classes, random tiny WavLM, CPU).
exec "$(dirname "$0")/../../run.sh" --corpus mini_cls --config "$(dirname "$0")/../../conf/cls/mini.yaml" "$@"
