#!/usr/bin/env bash
# CN-Celeb1 (data/, eval/{enroll,test,lists}) -> OUT/{train,enroll,test}, OUT/trials/cnc_eval[_<genre>].
# Usage: local/prepare_cnceleb1.sh [--per-genre true|false] CNCELEB1_ROOT OUT_DIR
# Relative paths are taken from the directory the script is called from.
set -euo pipefail
caller_dir=$PWD
cd "$(dirname "$0")/.."
per_genre=false
usage="Usage: $0 [--per-genre true|false] CNCELEB1_ROOT OUT_DIR
  --per-genre BOOL   also write trials/cnc_eval_<genre> per genre of the test utterance (default $per_genre)"
allow_positional=true
. steps/parse_options.sh
. steps/common.sh
[ $# -eq 2 ] || usage_error "expected CNCELEB1_ROOT and OUT_DIR"
case "$per_genre" in true) genre_opt=(--per-genre) ;; false) genre_opt=() ;; *) usage_error "--per-genre takes true or false" ;; esac
abs() { case "$1" in /*) echo "$1" ;; *) echo "$caller_dir/$1" ;; esac; }
python local/prepare_cnceleb1.py "${genre_opt[@]}" "$(abs "$1")" "$(abs "$2")"
