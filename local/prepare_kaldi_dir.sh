#!/usr/bin/env bash
# Your own corpus from Kaldi data directories.
#   --task sv (default): SRC_DIR (wav.scp, utt2spk) + a trials file -> OUT/{test,[train],[enroll]}, OUT/trials/NAME.
#     Trials: Kaldi "utt1 utt2 target|nontarget" or VoxCeleb "1|0 utt1 utt2".  See the README, "Bring your own corpus".
#   --task cls: SRC_DIR, --train-dir, --dev-dir (wav.scp, utt2label[, utt2spk]) -> OUT/{test,train,dev} with utt2label.
# Usage: local/prepare_kaldi_dir.sh [--task sv|cls] [--name NAME] [--train-dir DIR] [--enroll-dir DIR] [--dev-dir DIR]
#                                   SRC_DIR [TRIALS] OUT
# Relative paths (arguments and options) are taken from the directory the script is called from;
# relative audio paths inside wav.scp from the recipe root (Kaldi convention).
set -euo pipefail
caller_dir=$PWD
cd "$(dirname "$0")/.."
task=sv
name=
train_dir=
enroll_dir=
dev_dir=
usage="Usage: $0 [--task sv|cls] [--name NAME] [--train-dir DIR] [--enroll-dir DIR] [--dev-dir DIR] SRC_DIR [TRIALS] OUT
  --task T           sv (SRC_DIR TRIALS OUT) or cls (SRC_DIR OUT, labels in utt2label; default $task)
  --name NAME        sv: trial list name (default: the trials file name without extension)
  --train-dir DIR    Kaldi data directory to train on (-> OUT/train)
  --enroll-dir DIR   sv: Kaldi data directory whose speakers are enrollment ids (-> OUT/enroll)
  --dev-dir DIR      cls: Kaldi data directory to validate on (-> OUT/dev)"
allow_positional=true
. steps/parse_options.sh
. steps/common.sh
case "$task" in
  sv) [ $# -eq 3 ] || usage_error "expected SRC_DIR, TRIALS and OUT" ;;
  cls) [ $# -eq 2 ] || usage_error "--task cls expects SRC_DIR and OUT" ;;
  *) usage_error "unknown task '$task' (expected sv or cls)" ;;
esac
abs() { case "$1" in /*) echo "$1" ;; *) echo "$caller_dir/$1" ;; esac; }
opts=(--task "$task")
[ -z "$name" ] || opts+=(--name "$name")
[ -z "$train_dir" ] || opts+=(--train-dir "$(abs "$train_dir")")
[ -z "$enroll_dir" ] || opts+=(--enroll-dir "$(abs "$enroll_dir")")
[ -z "$dev_dir" ] || opts+=(--dev-dir "$(abs "$dev_dir")")
paths=()
for p in "$@"; do paths+=("$(abs "$p")"); done
python local/prepare_kaldi_dir.py "${opts[@]}" "${paths[@]}"
