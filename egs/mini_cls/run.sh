#!/usr/bin/env bash
# The classification mini recipe: synthetic sound classes (train / dev / test), a random tiny WavLM,
# CPU.  ../../run.sh --corpus mini_cls runs it too.
#   egs/mini_cls/run.sh [--config conf/cls/ast_mini.yaml] [--mini-opts "--n-train 6"]
set -euo pipefail
corpus=mini_cls
default_config=conf/cls/mini.yaml
data_root=data/raw/mini_cls
mini_opts=       # options of local/make_mini_cls_corpus.py
recipe_usage="The utterance-classification mini recipe (synthetic sound classes, CPU)."
corpus_usage="  --mini-opts STR    options for local/make_mini_cls_corpus.py (classes, utterances per class)
"
. "$(dirname "$0")/../../steps/recipe.sh"

recipe_start "cls" "$corpus"

prepare() {
  local/make_mini_cls_corpus.sh --mini-opts "$mini_opts" "$data_root"
  local/prepare_kaldi_dir.sh --task cls --train-dir "$data_root/train" --dev-dir "$data_root/dev" \
    "$data_root/test" "$prepared"
}
run_stage1 "$(stage1_options)" prepare
run_pipeline
