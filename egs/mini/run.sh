#!/usr/bin/env bash
# The speaker-verification mini recipe: a synthetic corpus in the VoxCeleb1 layout (80 training,
# 20 test speakers), a random tiny WavLM with parallel adapters, CPU; a bare ../../run.sh runs it.
#   egs/mini/run.sh [--mini-opts "--n-train-spk 40 --n-test-spk 20"] [--config conf/sv/mini_lora.yaml]
set -euo pipefail
corpus=mini
default_config=conf/sv/mini.yaml
data_root=data/raw/mini
mini_opts=       # options of local/make_mini_corpus.py (corpus size, voices, channels, seed)
recipe_usage="The speaker-verification mini recipe (synthetic corpus, random tiny upstream, CPU)."
corpus_usage="  --mini-opts STR    options for local/make_mini_corpus.py (corpus size etc.)
"
. "$(dirname "$0")/../../steps/recipe.sh"

recipe_start "sv" "$corpus"

prepare() {
  local/make_mini_corpus.sh --mini-opts "$mini_opts" "$data_root"
  local/prepare_voxceleb1.sh "$data_root" "$prepared"
}
run_stage1 "$(stage1_options)" prepare
run_pipeline
