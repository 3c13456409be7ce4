#!/usr/bin/env bash
# Spoof-aware speaker verification on ASVspoof 2019 LA (the SASV 2022 challenge setting): a speaker-
# verification model trained on VoxCeleb and a countermeasure trained on 2019 LA train, fused on the
# development trials (ASVspoof2019.LA.asv.dev.gi.trl.txt) and scored on the evaluation trials.
#   1    data (steps/recipe.sh, skipped when up to date): local/prepare_asvspoof2019_la.sh LA_ROOT
#        data/asvspoof2019_la (CM sets, sasv/{dev,eval}_enroll, sasv/{dev,eval}.trl from
#        LA/ASVspoof2019_LA_asv_protocols)
#   2-6  steps/sasv_recipe.sh: the components unless --sv-exp / --cm-exp are given (--sv-config trained
#        on VoxCeleb1 (--vox1-root), --cm-config on 2019 LA train), then steps/pipeline.sh (task sasv)
# Usage: egs/asvspoof2019_la/sasv/run.sh --data-root LA_ROOT [--sv-exp SV | --vox1-root VOX1_ROOT] [--cm-exp CM] ...
set -euo pipefail
corpus=asvspoof2019_la
recipe_usage="Spoof-aware speaker verification on ASVspoof 2019 LA (egs/asvspoof2019_la/sasv/README.md):
  stages 1 data, 2 validation, 3 components + fusions fitted on dev, 4 trial scores, 5 metrics, 6 report."
. "$(dirname "$0")/../../../steps/sasv_options.sh"
. "$(dirname "$0")/../../../steps/recipe.sh"

: "${exp:=exp/$corpus/sasv_$(basename "$config" .yaml)}"   # the components are exp/<corpus>/<config>
recipe_start "sasv" "$corpus"
prepare() {
  [ -n "$data_root" ] || usage_error "stage 1 needs --data-root (the directory holding LA/)"
  local/prepare_asvspoof2019_la.sh "$data_root" "$prepared"
}
run_stage1 "$(stage1_options)" prepare
run_sasv_stages voxceleb1 "$vox1_root"
