#!/usr/bin/env bash
# Spoof-aware speaker verification on ASVspoof 2019 LA (the SASV 2022 challenge setting): a speaker-
# verification model trained on VoxCeleb and a countermeasure trained on 2019 LA train, fused on the
# development trials (ASVspoof2019.LA.asv.dev.gi.trl.txt) and scored on the evaluation trials.
#   1  data: local/prepare_asvspoof2019_la.sh LA_ROOT data/asvspoof2019_la (CM sets, sasv/{dev,eval}_enroll,
#      sasv/{dev,eval}.trl from LA/ASVspoof2019_LA_asv_protocols)
#   2-6  steps/sasv_recipe.sh: validation; the components unless --sv-exp / --cm-exp are given (--sv-config
#      trained on VoxCeleb1 (--vox1-root), --cm-config on 2019 LA train) and the fusions fitted on dev;
#      trial scores, metrics, report
# Usage: egs/asvspoof2019_la/sasv/run.sh --data-root LA_ROOT [--sv-exp SV | --vox1-root VOX1_ROOT] [--cm-exp CM] ...
set -euo pipefail
caller_dir=$PWD
cd "$(dirname "$0")/../../.."
stage=1
stop_stage=6
data_root=         # the ASVspoof 2019 LA release (the directory holding LA/)
config=conf/sasv/default.yaml
sv_exp=            # a trained speaker-verification experiment or package
cm_exp=            # a trained countermeasure experiment or package
vox1_root=         # VoxCeleb1 root (wav/ and the trial lists), to train the SV component here
sv_config=conf/sv/lora.yaml
cm_config=conf/cm/lora_xlsr.yaml
exp=exp/asvspoof2019_la/sasv
bootstrap=1000
ngpu=0
nj=4
usage="Usage: $0 --data-root ROOT [options]
  --stage N / --stop-stage M   stages 1 data, 2 validation, 3 components + fusions, 4 scores, 5 metrics, 6 report
  --data-root DIR    the ASVspoof 2019 LA release (the directory holding LA/)
  --config FILE      SASV config (default $config)
  --sv-exp DIR       a trained speaker-verification experiment or package (else --vox1-root trains $sv_config)
  --cm-exp DIR       a trained countermeasure experiment or package (else $cm_config is trained on the corpus's train)
  --vox1-root DIR    VoxCeleb1 root, to train the SV component
  --sv-config FILE   --cm-config FILE   the components' configs when trained here
  --exp DIR          the SASV experiment (default $exp)
  --bootstrap N      speaker-bootstrap draws (default $bootstrap)
  --ngpu N           GPUs for training the components (default $ngpu)
  --nj N             parallel jobs (default $nj)"
cmdline="$(printf '%q ' "$0" "$@")"
. steps/parse_options.sh
. steps/common.sh
abs() { case "$1" in /*|"") echo "$1" ;; *) echo "$caller_dir/$1" ;; esac; }
for var in data_root config sv_exp cm_exp vox1_root sv_config cm_config exp; do printf -v "$var" '%s' "$(abs "${!var}")"; done
corpus=$PWD/data/asvspoof2019_la
mkdir -p "$exp/log"
{ echo "# $(date '+%Y-%m-%dT%H:%M:%S')"; echo "$cmdline"; } >> "$exp/run.cmd"

if in_stages 1; then
  [ -n "$data_root" ] || usage_error "stage 1 needs --data-root"
  log "Stage 1: $data_root -> $corpus"
  run_logged "$exp/log/stage1_prepare.log" local/prepare_asvspoof2019_la.sh "$data_root" "$corpus"
fi
steps/sasv_recipe.sh --stage "$(( stage > 2 ? stage : 2 ))" --stop-stage "$stop_stage" --config "$config" \
  --sv-exp "$sv_exp" --cm-exp "$cm_exp" --sv-corpus voxceleb1 --sv-data-root "$vox1_root" --sv-config "$sv_config" \
  --cm-config "$cm_config" --bootstrap "$bootstrap" --ngpu "$ngpu" --nj "$nj" "$corpus" "$exp"
log "Done: stages $stage-$stop_stage ($exp)"
