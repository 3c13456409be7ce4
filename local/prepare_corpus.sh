#!/usr/bin/env bash
# Stage 1: corpus root -> Kaldi data directories in OUT (data/<corpus>).
# Skips itself when OUT was prepared with the same options; redoes the work
# when they change (another root, another mini corpus size).
# Usage: local/prepare_corpus.sh --corpus mini|voxceleb1 [--mini-opts STR] [--vox1-lists L] ROOT OUT
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=
mini_opts=
vox1_lists=
nj=1
usage="Usage: $0 --corpus mini|voxceleb1 [--mini-opts STR] [--vox1-lists NAME,...] [--nj N] ROOT OUT"
allow_positional=true
. steps/parse_options.sh
. steps/common.sh
[ $# -eq 2 ] || usage_error "expected ROOT and OUT"
root=$1 out=$2

options="corpus=$corpus root=$(realpath -m "$root") mini_opts=$mini_opts vox1_lists=$vox1_lists"
stamp="$out/.stage1_options"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$options" ] && [ -f "$out/test/wav.scp" ]; then
  log "$out is up to date with the options ($options); skipping"
  exit 0
fi

case "$corpus" in
  mini)
    local/make_mini_corpus.sh --mini-opts "$mini_opts" "$root"
    local/prepare_voxceleb1.sh "$root" "$out" ;;
  voxceleb1)
    local/prepare_voxceleb1.sh --lists "$vox1_lists" "$root" "$out" ;;
  *) usage_error "unknown corpus '$corpus'" ;;
esac
echo "$options" > "$stamp.tmp" && mv "$stamp.tmp" "$stamp"
log "prepared $out"
