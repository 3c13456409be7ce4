#!/usr/bin/env bash
# The countermeasure mini recipe: synthetic bona fide and spoofed speech in the ASVspoof 2019 LA
# layout (six attacks, A01-A06), the fbank front end with a small ECAPA, CPU.
# ../../run.sh --corpus mini_cm runs it too.
#   egs/mini_cm/run.sh [--config conf/cm/mini_tiny_wavlm.yaml] [--mini-opts "--n-train 200"]
set -euo pipefail
corpus=mini_cm
default_config=conf/cm/mini.yaml
data_root=data/raw/mini_cm
mini_opts=       # options of local/make_mini_cm_corpus.py
recipe_usage="The spoofing-countermeasure mini recipe (synthetic ASVspoof 2019 LA layout, CPU)."
corpus_usage="  --mini-opts STR    options for local/make_mini_cm_corpus.py (utterances, speakers, attacks)
"
. "$(dirname "$0")/../../steps/recipe.sh"

recipe_start "cm" "$corpus"

prepare() {
  local/make_mini_cm_corpus.sh --mini-opts "$mini_opts" "$data_root"
  local/prepare_asvspoof2019_la.sh "$data_root" "$prepared"
}
run_stage1 "$(stage1_options)" prepare
run_pipeline
