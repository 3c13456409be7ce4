#!/usr/bin/env bash
# ESC-50 release (audio/*.wav at 44.1 kHz, meta/esc50.csv) -> 16 kHz wavs in WAV_OUT
# -> DATA_OUT/fold{1..5}/{train,dev,test} (5-fold cross-validation, utt2label = category).
# The conversion runs --nj files at a time and resumes (rerun after an interruption).
# Usage: local/prepare_esc50.sh [--nj N] [--dev-fold previous|none] ROOT WAV_OUT DATA_OUT
# Relative paths are taken from the directory the script is called from.
set -euo pipefail
caller_dir=$PWD
cd "$(dirname "$0")/.."
nj=1
dev_fold=previous
usage="Usage: $0 [--nj N] [--dev-fold previous|none] ESC50_ROOT WAV_OUT DATA_OUT
  ESC50_ROOT         the release (ESC-50-master: audio/, meta/esc50.csv)
  --nj N             conversions in parallel (default $nj)
  --dev-fold WHICH   previous: validate on the fold before the test fold (PETL-AST, default);
                     none: train on the four other folds, no dev directory"
allow_positional=true
. steps/parse_options.sh
. steps/common.sh
[ $# -eq 3 ] || usage_error "expected ESC50_ROOT, WAV_OUT and DATA_OUT"
abs() { case "$1" in /*) echo "$1" ;; *) echo "$caller_dir/$1" ;; esac; }
python local/prepare_esc50.py --nj "$nj" --dev-fold "$dev_fold" "$(abs "$1")" "$(abs "$2")" "$(abs "$3")"
