#!/usr/bin/env bash
# Your own corpus: a Kaldi data directory (wav.scp, utt2spk) + a trials file -> OUT/{test,[train],[enroll]}, OUT/trials/NAME.
# Trials: Kaldi "utt1 utt2 target|nontarget" or VoxCeleb "1|0 utt1 utt2".  See the README, "Bring your own corpus".
# Usage: local/prepare_kaldi_dir.sh [--name NAME] [--train-dir DIR] [--enroll-dir DIR] SRC_DIR TRIALS OUT
# Relative paths (arguments and options) are taken from the directory the script is called from;
# relative audio paths inside wav.scp from the recipe root (Kaldi convention).
set -euo pipefail
caller_dir=$PWD
cd "$(dirname "$0")/.."
name=
train_dir=
enroll_dir=
usage="Usage: $0 [--name NAME] [--train-dir DIR] [--enroll-dir DIR] SRC_DIR TRIALS OUT
  --name NAME        trial list name (default: the trials file name without extension)
  --train-dir DIR    Kaldi data directory to train on (-> OUT/train)
  --enroll-dir DIR   Kaldi data directory whose speakers are enrollment ids (-> OUT/enroll)"
allow_positional=true
. steps/parse_options.sh
. steps/common.sh
[ $# -eq 3 ] || usage_error "expected SRC_DIR, TRIALS and OUT"
abs() { case "$1" in /*) echo "$1" ;; *) echo "$caller_dir/$1" ;; esac; }
opts=()
[ -z "$name" ] || opts+=(--name "$name")
[ -z "$train_dir" ] || opts+=(--train-dir "$(abs "$train_dir")")
[ -z "$enroll_dir" ] || opts+=(--enroll-dir "$(abs "$enroll_dir")")
python local/prepare_kaldi_dir.py "${opts[@]}" "$(abs "$1")" "$(abs "$2")" "$(abs "$3")"
