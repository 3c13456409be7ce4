#!/usr/bin/env bash
# Speech Commands v2 utterance classification: train on the release's training utterances, select
# on validation_list.txt, score testing_list.txt; the 35-word task by default (AST, PETL-AST),
# --sc-task 12 for yes/no/up/down/left/right/on/off/stop/go + _unknown_ + _silence_.
# ../../run.sh --corpus speechcommands runs it too.
#   egs/speechcommands/run.sh --data-root /data/speech_commands_v0.02 [--sc-task 12] \
#       [--overlay conf/overlays/speechcommands_noise.yaml] [--config conf/cls/lora.yaml]
set -euo pipefail
corpus=speechcommands
default_config=conf/cls/lora.yaml
sc_task=35       # 35 (the 35 words) | 12 (ten words + _unknown_ + _silence_)
wav_dir=         # the _silence_ clips and background noise (default data/raw/speechcommands)
corpus_paths="wav_dir"
recipe_usage="Speech Commands v2 keyword classification (egs/speechcommands/README.md); data/speechcommands_<task>."
corpus_usage="  --sc-task 35|12    the 35 words, or ten words + _unknown_ + _silence_ (default $sc_task)
  --wav-dir DIR      the _silence_ clips and DIR/background/noise/ (default data/raw/speechcommands)
"
. "$(dirname "$0")/../../steps/recipe.sh"
[[ "$sc_task" =~ ^(35|12)$ ]] || usage_error "--sc-task takes 35 or 12"
[ -n "$data_root" ] || usage_error "--corpus $corpus needs --data-root (the release root)"
: "${wav_dir:=data/raw/speechcommands}"

recipe_start "cls" "speechcommands_$sc_task"

prepare() { local/prepare_speechcommands.sh --task "$sc_task" "$data_root" "$wav_dir" "$prepared"; }
run_stage1 "$(stage1_options " sc_task=$sc_task wav_dir=$(realpath -m "$wav_dir")")" prepare
run_pipeline
