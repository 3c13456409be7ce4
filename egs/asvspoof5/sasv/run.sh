#!/usr/bin/env bash
# Spoof-aware speaker verification on ASVspoof 5 (track 2): a speaker-verification model trained on
# VoxCeleb and a countermeasure trained on ASVspoof 5 train, fused on the development trials
# (ASVspoof5.dev.track_2.trial.tsv) and scored on the evaluation trials.
#   1    data (steps/recipe.sh, skipped when up to date): local/prepare_asvspoof5.sh ROOT data/asvspoof5
#        (CM sets with codec conditions, sasv/{dev,eval}_enroll, sasv/{dev,eval}.trl)
#   2-6  steps/sasv_recipe.sh: the components unless --sv-exp / --cm-exp are given (--sv-config trained
#        on VoxCeleb1 (--vox1-root), --cm-config on ASVspoof 5 train), then steps/pipeline.sh (task sasv)
# Usage: egs/asvspoof5/sasv/run.sh --data-root ROOT [--sv-exp SV | --vox1-root VOX1_ROOT] [--cm-exp CM] ...
set -euo pipefail
corpus=asvspoof5
recipe_usage="Spoof-aware speaker verification on ASVspoof 5 track 2 (egs/asvspoof5/sasv/README.md):
  stages 1 data, 2 validation, 3 components + fusions fitted on dev, 4 trial scores, 5 metrics, 6 report."
. "$(dirname "$0")/../../../steps/sasv_options.sh"
. "$(dirname "$0")/../../../steps/recipe.sh"

: "${exp:=exp/$corpus/sasv_$(basename "$config" .yaml)}"   # the components are exp/<corpus>/<config>
recipe_start "sasv" "$corpus"
prepare() {
  [ -n "$data_root" ] || usage_error "stage 1 needs --data-root (flac_T/, flac_D/, flac_E_eval/, ASVspoof5_protocols/)"
  local/prepare_asvspoof5.sh "$data_root" "$prepared"
}
run_stage1 "$(stage1_options)" prepare
run_sasv_stages voxceleb1 "$vox1_root"
