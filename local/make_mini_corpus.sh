#!/usr/bin/env bash
# Generate the synthetic mini corpus in ROOT unless ROOT already holds one made
# with the same options.  A ROOT that holds something else is never touched.
# Usage: local/make_mini_corpus.sh [--mini-opts STR] ROOT
set -euo pipefail
cd "$(dirname "$0")/.."
mini_opts=
usage="Usage: $0 [--mini-opts 'OPTIONS of local/make_mini_corpus.py'] ROOT"
allow_positional=true
. steps/parse_options.sh
. steps/common.sh
[ $# -eq 1 ] || usage_error "expected ROOT"
root=$1 marker="$1/.mini_corpus_options"

if [ -f "$root/veri_test.txt" ] && [ -f "$marker" ] && [ "$(cat "$marker")" = "$mini_opts" ]; then
  log "mini corpus in $root is up to date; skipping generation"
  exit 0
fi
if [ -e "$root" ] && [ -n "$(ls -A "$root")" ]; then
  [ -f "$marker" ] || { log "ERROR: $root exists and is not a generated mini corpus; refusing to overwrite it"; exit 1; }
  log "mini corpus options changed; regenerating $root"
  rm -rf "$root"
fi
mkdir -p "$root"
echo "incomplete: $mini_opts" > "$marker"   # marks ROOT as ours even if generation is interrupted
# shellcheck disable=SC2086  # mini_opts is a list of options
python local/make_mini_corpus.py --out "$root" $mini_opts
echo "$mini_opts" > "$marker"
