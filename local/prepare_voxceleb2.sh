#!/usr/bin/env bash
# VoxCeleb2 dev (ROOT/dev/aac/<spk>/<session>/<utt>.m4a) -> 16 kHz wavs in WAV_OUT -> DATA_OUT/train.
# Parallel and resumable (rerun after an interruption: finished wavs are kept).
# The AAC is decoded by PyAV (FFmpeg's libraries from the av wheel: no system ffmpeg); --converter
# (or $SPKPEFT_M4A_CONVERTER) names an external 'CMD IN OUT' converter instead.
# Usage: local/prepare_voxceleb2.sh [--nj N] [--converter CMD] ROOT WAV_OUT DATA_OUT
# Relative paths are taken from the directory the script is called from.
set -euo pipefail
caller_dir=$PWD
cd "$(dirname "$0")/.."
nj=1
converter=
usage="Usage: $0 [--nj N] [--converter CMD] VOXCELEB2_ROOT WAV_OUT DATA_OUT
  --nj N           conversions in parallel (default $nj)
  --converter CMD  run as 'CMD IN.m4a OUT.wav' instead of decoding with PyAV (default: \$SPKPEFT_M4A_CONVERTER)"
allow_positional=true
. steps/parse_options.sh
. steps/common.sh
[ $# -eq 3 ] || usage_error "expected VOXCELEB2_ROOT, WAV_OUT and DATA_OUT"
abs() { case "$1" in /*) echo "$1" ;; *) echo "$caller_dir/$1" ;; esac; }
python local/prepare_voxceleb2.py --nj "$nj" ${converter:+--converter "$converter"} \
  "$(abs "$1")" "$(abs "$2")" "$(abs "$3")"
