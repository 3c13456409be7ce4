#!/usr/bin/env bash
# Stages 2-6 of a spoof-aware speaker verification experiment (task: sasv), corpus-free: a prepared
# corpus directory with SASV sets (data/<corpus>: sasv/<set>.trl, sasv/<set>_enroll/, the test sets,
# train/), a trained sv and a trained cm experiment (or exported packages), fused by
# python -m spkpeft.bin.sasv (spkpeft/tasks/sasv/task.py says what each stage writes).
#   2  validation: the CM sets and the enrollment directories (validate_data_dir), the SASV sets
#   3  component outputs on train/dev, fusions fitted on the development trials only
#   4  scores of every trial of every set (EXP/sasv_scores/<set>/<system>.txt)
#   5  metrics with speaker-bootstrap intervals (EXP/results.json)
#   6  tables (stdout, EXP/log/stage6_report.log) and DET plots (EXP/plots/)
# Usage: steps/sasv_pipeline.sh [--stage 2] [--stop-stage 6] [--config FILE] [--sv SV --cm CM]
#                               [--bootstrap N] [--device cpu] [--nj N] CORPUS_DIR EXP_DIR
set -euo pipefail
caller_dir=$PWD
cd "$(dirname "$0")/.."
stage=2
stop_stage=6
config=conf/sasv/default.yaml
sv=
cm=
bootstrap=1000
device=cpu
nj=2
usage="Usage: $0 [--stage N] [--stop-stage M] [--config FILE] [--sv SV_EXP --cm CM_EXP] [--bootstrap N] [--device D] [--nj N] CORPUS_DIR EXP_DIR
  stages 2 validation, 3 component outputs + fusions fitted on dev, 4 trial scores, 5 metrics, 6 report
  --sv, --cm     stage 3: the trained speaker-verification and countermeasure experiments (or packages)
  --bootstrap N  stage 5: speaker-bootstrap draws for the 95% intervals, 0 = none (default $bootstrap)"
allow_positional=true
. steps/parse_options.sh
. steps/common.sh
[ $# -eq 2 ] || usage_error "expected CORPUS_DIR and EXP_DIR"
[[ "$stage" =~ ^[0-9]+$ && "$stop_stage" =~ ^[0-9]+$ ]] || usage_error "--stage and --stop-stage take integers"
[[ "$bootstrap" =~ ^[0-9]+$ ]] || usage_error "--bootstrap takes an integer"
abs() { case "$1" in /*|"") echo "$1" ;; *) echo "$caller_dir/$1" ;; esac; }
corpus=$(abs "$1") exp=$(abs "$2") config=$(abs "$config") sv=$(abs "$sv") cm=$(abs "$cm")
mkdir -p "$exp/log"

if in_stages 2; then
  log "Stage 2: validating $corpus (CM sets, SASV enrollment and trials)"
  require_file "$config" "$corpus/sasv"
  run_logged "$exp/log/stage2_validate.log" python -m spkpeft.bin.validate_data_dir --task cm --nj "$nj" "$corpus"
  run_logged "$exp/log/stage2_enroll.log" python -m spkpeft.bin.validate_data_dir --nj "$nj" "$corpus"/sasv/*_enroll
  run_logged "$exp/log/stage2_sasv.log" python -m spkpeft.bin.sasv check --config "$config" --corpus "$corpus"
fi
if in_stages 3; then
  [ -n "$sv" ] && [ -n "$cm" ] || usage_error "stage 3 needs --sv and --cm (trained experiments or packages)"
  log "Stage 3: component outputs and fusions fitted on the development trials ($config, exp $exp)"
  run_logged "$exp/log/stage3_fit.log" python -m spkpeft.bin.sasv fit --config "$config" --corpus "$corpus" \
    --exp "$exp" --sv "$sv" --cm "$cm" --device "$device"
fi
if in_stages 4; then
  log "Stage 4: scores of every trial"
  run_logged "$exp/log/stage4_infer.log" python -m spkpeft.bin.sasv infer --exp "$exp" --corpus "$corpus" --device "$device"
fi
if in_stages 5; then
  log "Stage 5: SASV-EER, SV-EER, SPF-EER, min a-DCF, t-EER, min t-DCF -> $exp/results.json"
  run_logged "$exp/log/stage5_evaluate.log" python -m spkpeft.bin.sasv evaluate --exp "$exp" --corpus "$corpus" \
    --bootstrap "$bootstrap" > /dev/null
fi
if in_stages 6; then
  log "Stage 6: report and DET plots"
  python -m spkpeft.bin.sasv report --exp "$exp" --corpus "$corpus" | tee "$exp/log/stage6_report.log"
fi
