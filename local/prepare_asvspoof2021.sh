#!/usr/bin/env bash
# ASVspoof 2021 LA/DF eval data + keys -> OUT/{la,df}_<subset>, OUT/protocols/<set>.txt, OUT/asv/la_<subset>.scores.
# Usage: local/prepare_asvspoof2021.sh [--tracks la,df] [--subsets eval,progress,hidden] ROOT OUT
# Relative paths are taken from the directory the script is called from.
set -euo pipefail
caller_dir=$PWD
cd "$(dirname "$0")/.."
tracks=la,df
subsets=eval
usage="Usage: $0 [--tracks la,df] [--subsets eval,progress,hidden] ASVSPOOF2021_ROOT OUT_DIR
  ASVSPOOF2021_ROOT   holds ASVspoof2021_LA_eval/flac, ASVspoof2021_DF_eval/flac and keys/{LA,DF}
  --tracks LIST       comma-separated tracks (default $tracks)
  --subsets LIST      comma-separated key subsets: eval, progress, hidden (default $subsets)"
allow_positional=true
. steps/parse_options.sh
. steps/common.sh
[ $# -eq 2 ] || usage_error "expected ASVSPOOF2021_ROOT and OUT_DIR"
[ -n "$tracks" ] || usage_error "--tracks is empty"
[ -n "$subsets" ] || usage_error "--subsets is empty"
abs() { case "$1" in /*) echo "$1" ;; *) echo "$caller_dir/$1" ;; esac; }
python local/prepare_asvspoof2021.py --tracks "$tracks" --subsets "$subsets" "$(abs "$1")" "$(abs "$2")"
