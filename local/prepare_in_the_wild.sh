#!/usr/bin/env bash
# In-the-Wild release (release_in_the_wild/{meta.csv,<n>.wav}) -> OUT/eval, OUT/protocols/eval.txt.
# Usage: local/prepare_in_the_wild.sh ROOT OUT
# Relative paths are taken from the directory the script is called from.
set -euo pipefail
caller_dir=$PWD
cd "$(dirname "$0")/.."
usage="Usage: $0 IN_THE_WILD_ROOT OUT_DIR
  IN_THE_WILD_ROOT   the directory holding release_in_the_wild/ (or that directory itself)"
allow_positional=true
. steps/parse_options.sh
. steps/common.sh
[ $# -eq 2 ] || usage_error "expected IN_THE_WILD_ROOT and OUT_DIR"
abs() { case "$1" in /*) echo "$1" ;; *) echo "$caller_dir/$1" ;; esac; }
python local/prepare_in_the_wild.py "$(abs "$1")" "$(abs "$2")"
