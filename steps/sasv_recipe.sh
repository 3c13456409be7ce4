#!/usr/bin/env bash
# Stages 2-6 of the SASV recipes (egs/*/sasv/run.sh, egs/mini_sasv/run.sh), after their stage 1 prepared
# CORPUS_DIR: stage 3 trains the components that were not given (the SV model by ./run.sh --corpus
# SV_CORPUS, stages 1-4; the CM model on CORPUS_DIR/train with CORPUS_DIR/dev validating, steps/train.sh),
# then the corpus-free steps/pipeline.sh runs task sasv's stages 2-6 with the components named by
# EXP/components.yaml, an overlay (task.sv, task.cm): 3 fits the fusions on dev, 4 scores every
# trial, 5 evaluates, 6 reports (spkpeft/tasks/sasv/task.py says what each stage writes).
# Usage: steps/sasv_recipe.sh [--stage 2] [--stop-stage 6] [--config F] [--sv-exp SV] [--cm-exp CM]
#          [--sv-corpus mini|voxceleb1] [--sv-data-root DIR] [--sv-config F] [--cm-config F]
#          [--bootstrap N] [--ngpu N] [--nj N] CORPUS_DIR EXP_DIR
set -euo pipefail
caller_dir=$PWD
cd "$(dirname "$0")/.."
stage=2
stop_stage=6
config=conf/sasv/default.yaml
sv_exp=
cm_exp=
sv_corpus=voxceleb1
sv_data_root=
sv_config=conf/sv/lora.yaml
cm_config=conf/cm/lora_xlsr.yaml
bootstrap=1000
ngpu=0
nj=2
usage="Usage: $0 [--stage N] [--stop-stage M] [--config F] [--sv-exp SV] [--cm-exp CM] [--sv-corpus mini|voxceleb1]
          [--sv-data-root DIR] [--sv-config F] [--cm-config F] [--bootstrap N] [--ngpu N] [--nj N] CORPUS_DIR EXP_DIR"
allow_positional=true
. steps/parse_options.sh
. steps/common.sh
[ $# -eq 2 ] || usage_error "expected CORPUS_DIR and EXP_DIR"
abs() { case "$1" in /*|"") echo "$1" ;; *) echo "$caller_dir/$1" ;; esac; }
for var in config sv_exp cm_exp sv_data_root sv_config cm_config; do printf -v "$var" '%s' "$(abs "${!var}")"; done
corpus=$(abs "$1") exp=$(abs "$2")
overlay=$exp/components.yaml
pipeline=(steps/pipeline.sh --data "$corpus" --exp "$exp" --config "$config" --nj "$nj" --ngpu "$ngpu"
          --bootstrap "$bootstrap")

first=$stage
if in_stages 3 && { [ -z "$sv_exp" ] || [ -z "$cm_exp" ]; }; then
  if in_stages 2; then   # validate before training the components
    "${pipeline[@]}" --stage 2 --stop-stage 2
    first=3
  fi
  if [ -z "$sv_exp" ]; then
    [ "$sv_corpus" = mini ] || [ -n "$sv_data_root" ] \
      || usage_error "stage 3 needs --sv-exp, or the corpus to train the SV component on (--vox1-root)"
    sv_exp=$PWD/exp/$sv_corpus/$(basename "$sv_config" .yaml)
    log "Stage 3: the SV component: ./run.sh --corpus $sv_corpus --config $sv_config (stages 1-4) -> $sv_exp"
    ./run.sh --corpus "$sv_corpus" ${sv_data_root:+--data-root "$sv_data_root"} --config "$sv_config" \
      --exp "$sv_exp" --stop-stage 4 --ngpu "$ngpu" --nj "$nj"
  fi
  if [ -z "$cm_exp" ]; then
    cm_exp=$PWD/exp/$(basename "$corpus")/$(basename "$cm_config" .yaml)
    log "Stage 3: the CM component: $cm_config on $corpus/train (dev: $corpus/dev) -> $cm_exp"
    mkdir -p "$exp/log"
    run_logged "$exp/log/stage3_cm.log" steps/train.sh --ngpu "$ngpu" --config "$cm_config" --dev "$corpus/dev" \
      "$corpus/train" "$cm_exp"
  fi
fi
if in_stages 3; then
  mkdir -p "$exp"
  printf "task:\n  sv: '%s'\n  cm: '%s'\n" "$sv_exp" "$cm_exp" > "$overlay.tmp" && mv "$overlay.tmp" "$overlay"
fi
if [ "$first" -le "$stop_stage" ]; then   # stage 3 reads the components from the overlay
  "${pipeline[@]}" --stage "$first" --stop-stage "$stop_stage" --overlay "$overlay"
fi
