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
generate_once "$1" .mini_corpus_options "mini corpus" "$mini_opts" local/make_mini_corpus.py veri_test.txt
