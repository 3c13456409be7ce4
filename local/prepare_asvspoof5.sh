#!/usr/bin/env bash
# ASVspoof 5 release (flac_{T,D,E_eval}/, ASVspoof5_protocols/) -> OUT/{train,dev,eval}, OUT/protocols/<set>.txt,
# and with the track 2 lists OUT/sasv/{dev,eval}_enroll/, OUT/sasv/{dev,eval}.trl.
# Usage: local/prepare_asvspoof5.sh [--sets train,dev,eval] ROOT OUT
# Relative paths are taken from the directory the script is called from.
set -euo pipefail
caller_dir=$PWD
cd "$(dirname "$0")/.."
sets=train,dev,eval
usage="Usage: $0 [--sets train,dev,eval] ASVSPOOF5_ROOT OUT_DIR
  ASVSPOOF5_ROOT   the release root: flac_T/, flac_D/, flac_E_eval/ and ASVspoof5_protocols/
  --sets LIST      comma-separated sets to prepare (default $sets)"
allow_positional=true
. steps/parse_options.sh
. steps/common.sh
[ $# -eq 2 ] || usage_error "expected ASVSPOOF5_ROOT and OUT_DIR"
[ -n "$sets" ] || usage_error "--sets is empty"
abs() { case "$1" in /*) echo "$1" ;; *) echo "$caller_dir/$1" ;; esac; }
python local/prepare_asvspoof5.py --sets "$sets" "$(abs "$1")" "$(abs "$2")"
