#!/usr/bin/env bash
# Speech Commands v2 release (<word>/<hash>_nohash_<n>.wav, validation_list.txt, testing_list.txt,
# _background_noise_/) -> DATA_OUT/{train,dev,test} with utt2label; --task 35 (the 35 words) or
# 12 (ten words + _unknown_ + _silence_, whose 1-s clips are cut once into WAV_OUT/silence/).
# WAV_OUT/background/noise/ holds the training share of the background noise for
# data.augment.musan_dir: WAV_OUT/background.
# Usage: local/prepare_speechcommands.sh [--task 35|12] [--silence-pct P] [--unknown-pct P] [--seed S]
#                                        ROOT WAV_OUT DATA_OUT
# Relative paths are taken from the directory the script is called from.
set -euo pipefail
caller_dir=$PWD
cd "$(dirname "$0")/.."
task=35
silence_pct=10
unknown_pct=10
seed=0
usage="Usage: $0 [--task 35|12] [--silence-pct P] [--unknown-pct P] [--seed S] SC_ROOT WAV_OUT DATA_OUT
  SC_ROOT            the release (speech_commands_v0.02)
  --task 35|12       the 35 words (default), or yes/no/up/down/left/right/on/off/stop/go + _unknown_ + _silence_
  --silence-pct P    12: _silence_ clips per set, % of its ten words' utterances (default $silence_pct)
  --unknown-pct P    12: _unknown_ utterances kept per set, % of its ten words' utterances (default $unknown_pct)
  --seed S           12: seed of the silence crops and the unknown subsample (default $seed)"
allow_positional=true
. steps/parse_options.sh
. steps/common.sh
[ $# -eq 3 ] || usage_error "expected SC_ROOT, WAV_OUT and DATA_OUT"
abs() { case "$1" in /*) echo "$1" ;; *) echo "$caller_dir/$1" ;; esac; }
python local/prepare_speechcommands.py --task "$task" --silence-pct "$silence_pct" --unknown-pct "$unknown_pct" \
  --seed "$seed" "$(abs "$1")" "$(abs "$2")" "$(abs "$3")"
