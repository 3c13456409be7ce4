#!/usr/bin/env bash
# CN-Celeb1 speaker verification: train on the development speakers, score the evaluation trials
# (enrollment ids against test utterances), overall and per genre.
# ../../run.sh --corpus cnceleb1 runs it too.
#   egs/cnceleb1/run.sh --data-root /data/CN-Celeb_flac [--config conf/sv/lora.yaml] [--ngpu 4]
set -euo pipefail
corpus=cnceleb1
default_config=conf/sv/adapter_parallel_sv.yaml
cnc_per_genre=true   # also score per-genre trial lists trials/cnc_eval_<genre>
recipe_usage="CN-Celeb1 speaker verification (egs/cnceleb1/README.md)."
corpus_usage="  --cnc-per-genre B  also trial lists per genre, true|false (default $cnc_per_genre)
"
. "$(dirname "$0")/../../steps/recipe.sh"
[ -n "$data_root" ] || usage_error "--corpus $corpus needs --data-root (the CN-Celeb1 root holding data/ and eval/)"

recipe_start "sv" "$corpus"

prepare() { local/prepare_cnceleb1.sh --per-genre "$cnc_per_genre" "$data_root" "$prepared"; }
run_stage1 "$(stage1_options " cnc_per_genre=$cnc_per_genre")" prepare
run_pipeline
