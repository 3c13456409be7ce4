#!/usr/bin/env bash
# Spoof-aware speaker verification on ASVspoof 2019 LA (the SASV 2022 challenge setting): a speaker-
# verification model trained on VoxCeleb and a countermeasure trained on 2019 LA train, fused on the
# development trials (ASVspoof2019.LA.asv.dev.gi.trl.txt) and scored on the evaluation trials.
#   1  data: local/prepare_asvspoof2019_la.sh ROOT data/asvspoof2019_la (CM sets, sasv/{dev,eval}_enroll,
#      sasv/{dev,eval}.trl from LA/ASVspoof2019_LA_asv_protocols)
#   2  validation; 3 the components (unless --sv-exp / --cm-exp are given: --sv-config trained on
#      VoxCeleb1 by ../../../run.sh --corpus voxceleb1 --data-root VOX1_ROOT (stages 1-4), --cm-config on
#      2019 LA train by ../../../run.sh --corpus asvspoof2019_la (stages 2-3)), then the fusions fitted on dev;
#   4-6  trial scores, metrics, report (steps/sasv_pipeline.sh)
# Usage: egs/asvspoof2019_la/sasv/run.sh --data-root LA_ROOT [--sv-exp SV | --vox1-root VOX1_ROOT] [--cm-exp CM] ...
set -euo pipefail
caller_dir=$PWD
cd "$(dirname "$0")/../../.."
stage=1
stop_stage=6
data_root=         # the ASVspoof 2019 LA release (the directory holding LA/)
config=conf/sasv/default.yaml
sv_exp=
cm_exp=
vox1_root=         # VoxCeleb1 root (wav/ and the trial lists), to train the SV component here
sv_config=conf/sv/lora.yaml
cm_config=conf/cm/lora_xlsr.yaml
exp=exp/asvspoof2019_la/sasv
bootstrap=1000
ngpu=0
nj=4
usage="Usage: $0 --data-root LA_ROOT [options]
  --stage N / --stop-stage M   stages 1 data, 2 validation, 3 components + fusions, 4 scores, 5 metrics, 6 report
  --data-root DIR    the ASVspoof 2019 LA release (LA/ASVspoof2019_LA_{train,dev,eval}, *_cm_protocols, *_asv_protocols)
  --config FILE      SASV config (default $config)
  --sv-exp DIR       a trained speaker-verification experiment or package (else --vox1-root trains $sv_config)
  --cm-exp DIR       a trained countermeasure experiment or package (else $cm_config is trained on LA train)
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
device=cpu
[ "$ngpu" -eq 0 ] || device=cuda
mkdir -p "$exp/log"
{ echo "# $(date '+%Y-%m-%dT%H:%M:%S')"; echo "$cmdline"; } >> "$exp/run.cmd"

if in_stages 1; then
  [ -n "$data_root" ] || usage_error "stage 1 needs --data-root (the ASVspoof 2019 LA release)"
  log "Stage 1: $data_root -> $corpus"
  run_logged "$exp/log/stage1_prepare.log" local/prepare_asvspoof2019_la.sh "$data_root" "$corpus"
fi
if in_stages 2; then
  steps/sasv_pipeline.sh --stage 2 --stop-stage 2 --config "$config" --nj "$nj" "$corpus" "$exp"
fi
if in_stages 3; then
  if [ -z "$sv_exp" ]; then
    [ -n "$vox1_root" ] || usage_error "stage 3 needs --sv-exp, or --vox1-root to train the SV component"
    sv_exp=$PWD/exp/voxceleb1/$(basename "$sv_config" .yaml)
    log "Stage 3: the SV component: $sv_config on VoxCeleb1 -> $sv_exp"
    ./run.sh --corpus voxceleb1 --data-root "$vox1_root" --config "$sv_config" --exp "$sv_exp" --stop-stage 4 \
      --ngpu "$ngpu" --nj "$nj"
  fi
  if [ -z "$cm_exp" ]; then
    [ -n "$data_root" ] || usage_error "training the CM component needs --data-root"
    cm_exp=$PWD/exp/asvspoof2019_la/$(basename "$cm_config" .yaml)
    log "Stage 3: the CM component: $cm_config on 2019 LA train -> $cm_exp"
    ./run.sh --corpus asvspoof2019_la --data-root "$data_root" --config "$cm_config" --exp "$cm_exp" \
      --stage 2 --stop-stage 3 --ngpu "$ngpu" --nj "$nj"
  fi
  steps/sasv_pipeline.sh --stage 3 --stop-stage 3 --config "$config" --sv "$sv_exp" --cm "$cm_exp" \
    --device "$device" "$corpus" "$exp"
fi
if [ "$stop_stage" -ge 4 ]; then
  steps/sasv_pipeline.sh --stage "$(( stage > 4 ? stage : 4 ))" --stop-stage "$stop_stage" --bootstrap "$bootstrap" \
    --device "$device" "$corpus" "$exp"
fi
log "Done: stages $stage-$stop_stage ($exp)"
