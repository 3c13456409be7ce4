#!/usr/bin/env bash
# Generate the synthetic mini classification corpus (ROOT/{train,dev,test} with
# wav.scp and utt2label, ROOT/wav/...) unless ROOT already holds one made with
# the same options.  A ROOT that holds something else is never touched.
# Usage: local/make_mini_cls_corpus.sh [--mini-opts STR] ROOT
set -euo pipefail
cd "$(dirname "$0")/.."
mini_opts=
usage="Usage: $0 [--mini-opts 'OPTIONS of local/make_mini_cls_corpus.py'] ROOT"
allow_positional=true
. steps/parse_options.sh
. steps/common.sh
[ $# -eq 1 ] || usage_error "expected ROOT"
generate_once "$1" .mini_cls_corpus_options "mini classification corpus" "$mini_opts" local/make_mini_cls_corpus.py \
  {train,dev,test}/{wav.scp,utt2label}
