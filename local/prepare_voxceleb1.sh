#!/usr/bin/env bash
# VoxCeleb1 (or any corpus in its layout) -> data/<corpus>/{train,test,trials}.
# Usage: local/prepare_voxceleb1.sh [--lists vox1_o,vox1_o_clean] ROOT OUT
set -euo pipefail
cd "$(dirname "$0")/.."
lists=
usage="Usage: $0 [--lists NAME,...] VOXCELEB1_ROOT OUT_DIR"
allow_positional=true
. steps/parse_options.sh
. steps/common.sh
[ $# -eq 2 ] || usage_error "expected VOXCELEB1_ROOT and OUT_DIR"
python local/prepare_voxceleb1.py ${lists:+--lists "$lists"} "$1" "$2"
