#!/usr/bin/env bash
# ASVspoof 2019 LA release (LA/...) -> OUT/{train,dev,eval}, OUT/protocols/<set>.txt, OUT/asv/{dev,eval}.scores.
# Usage: local/prepare_asvspoof2019_la.sh [--sets train,dev,eval] ROOT OUT
# Relative paths are taken from the directory the script is called from.
set -euo pipefail
caller_dir=$PWD
cd "$(dirname "$0")/.."
sets=train,dev,eval
usage="Usage: $0 [--sets train,dev,eval] ASVSPOOF2019_ROOT OUT_DIR
  ASVSPOOF2019_ROOT   the directory holding LA/ (the unpacked LA.zip)
  --sets LIST         comma-separated sets to prepare (default $sets)"
allow_positional=true
. steps/parse_options.sh
. steps/common.sh
[ $# -eq 2 ] || usage_error "expected ASVSPOOF2019_ROOT and OUT_DIR"
[ -n "$sets" ] || usage_error "--sets is empty"
abs() { case "$1" in /*) echo "$1" ;; *) echo "$caller_dir/$1" ;; esac; }
python local/prepare_asvspoof2019_la.py --sets "$sets" "$(abs "$1")" "$(abs "$2")"
