#!/usr/bin/env bash
# Generate the synthetic mini spoofing corpus (ASVspoof 2019 LA layout: ROOT/LA/...) unless ROOT
# already holds one made with the same options.  A ROOT that holds something else is never touched.
# Usage: local/make_mini_cm_corpus.sh [--mini-opts STR] ROOT
set -euo pipefail
cd "$(dirname "$0")/.."
mini_opts=
usage="Usage: $0 [--mini-opts 'OPTIONS of local/make_mini_cm_corpus.py'] ROOT"
allow_positional=true
. steps/parse_options.sh
. steps/common.sh
[ $# -eq 1 ] || usage_error "expected ROOT"
generate_once "$1" .mini_cm_corpus_options "mini spoofing corpus" "$mini_opts" local/make_mini_cm_corpus.py \
  LA/ASVspoof2019_LA_cm_protocols/ASVspoof2019.LA.cm.{train.trn,dev.trl,eval.trl}.txt \
  LA/ASVspoof2019_LA_asv_scores/ASVspoof2019.LA.asv.{dev,eval}.gi.trl.scores.txt
