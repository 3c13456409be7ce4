#!/usr/bin/env bash
# Generate the synthetic mini spoken-keyword corpus (Speech Commands v2 layout: ROOT/<word>/<hash>_nohash_<n>.wav,
# validation_list.txt, testing_list.txt, _background_noise_/) unless ROOT already holds one made with the
# same options.  A ROOT that holds something else is never touched.
# Usage: local/make_mini_kws_corpus.sh [--mini-opts STR] ROOT
set -euo pipefail
cd "$(dirname "$0")/.."
mini_opts=
usage="Usage: $0 [--mini-opts 'OPTIONS of local/make_mini_kws_corpus.py'] ROOT"
allow_positional=true
. steps/parse_options.sh
. steps/common.sh
[ $# -eq 1 ] || usage_error "expected ROOT"
generate_once "$1" .mini_kws_corpus_options "mini keyword corpus" "$mini_opts" local/make_mini_kws_corpus.py \
  validation_list.txt testing_list.txt
