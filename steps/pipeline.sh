#!/usr/bin/env bash
# The corpus-free stages 2-6 of every recipe (egs/<corpus>/run.sh owns stage 1 and calls this):
#   2 validation    python -m spkpeft.bin.validate_data_dir (the data directories, trial lists and the
#                   task's needs) [+ tar shards of the training data with --shards]
#   3 training      steps/train.sh (the task decides its validation data: --dev auto)
#   4 inference     python -m spkpeft.bin.extract on the corpus (the task picks the sets)
#   5 evaluation    python -m spkpeft.bin.evaluate on the corpus -> EXP/results.json
#   6 report        python -m spkpeft.bin.report: the results table on stdout, plots in EXP/plots
# Every stage asks the config's task what to do; none of them knows a task or a corpus by name.
# Paths are relative to the repository root (recipes pass absolute ones).
# Usage: steps/pipeline.sh --data data/<corpus> --exp DIR --config FILE [options]
set -euo pipefail
cd "$(dirname "$0")/.."

stage=2
stop_stage=6
data=            # the corpus directory stages 2-6 read (data/<corpus>, or one fold of it)
exp=
config=
upstream=
overlay=
init_from=
shards=
ngpu=0
nj=2
calibrate=true
bootstrap=1000
asnorm_top_n=300

usage="Usage: $0 --data DIR --exp DIR --config FILE [options]
  --stage N --stop-stage M  stages to run, within 2-6 (default $stage-$stop_stage)
  --data DIR         corpus directory (data/<corpus>) of stages 2-6
  --exp DIR          experiment directory
  --config FILE      YAML config; --upstream NAME, --overlay FILE, --init-from CKPT as in run.sh
  --shards DIR       stage 2 packs the training data into tar shards in DIR, stage 3 reads them
  --ngpu N           GPUs for training, 0 = CPU (default $ngpu)
  --nj N             parallel jobs (default $nj)
  --calibrate B      stage 5 (sv): fit the score calibration first, true|false (default $calibrate)
  --bootstrap N      stage 5 (sv): bootstrap draws for the 95% intervals, 0 = none (default $bootstrap)
  --asnorm-top-n N   stage 5 (sv): AS-norm cohort scores per side (default $asnorm_top_n)"

. steps/parse_options.sh
. steps/common.sh

[ -n "$data" ] && [ -n "$exp" ] && [ -n "$config" ] || usage_error "--data, --exp and --config are required"
[[ "$calibrate" == true || "$calibrate" == false ]] || usage_error "--calibrate takes true or false"
require_file "$config"
task=$(python -m spkpeft.bin.config_value --config "$config" task.type)
mkdir -p "$exp/log"
device=cpu
[ "$ngpu" -eq 0 ] || device=cuda

if in_stages 2; then
  log "Stage 2: validating $data (task $task)"
  run_logged "$exp/log/stage2_validate.log" \
    python -m spkpeft.bin.validate_data_dir --task "$task" --nj "$nj" "$data"
  if [ -n "$shards" ]; then
    log "Stage 2: packing $data/train into shards in $shards"
    run_logged "$exp/log/stage2_shards.log" steps/make_shards.sh --nj "$nj" "$data/train" "$shards"
  fi
fi

if in_stages 3; then
  log "Stage 3: training ($config, exp $exp)"
  require_file "$data/train/wav.scp"
  run_logged "$exp/log/stage3_train.log" \
    steps/train.sh --ngpu "$ngpu" --config "$config" --upstream "$upstream" --overlay "$overlay" \
      --init-from "$init_from" --dev auto --shards "$shards" "$data/train" "$exp"
fi

if in_stages 4; then
  log "Stage 4: inference (task $task: the outputs of every set it evaluates)"
  require_file "$exp/config.yaml" "$exp/train_done.json"
  run_logged "$exp/log/stage4_extract.log" \
    python -m spkpeft.bin.extract --exp "$exp" --data "$data" --device "$device"
fi

if in_stages 5; then
  log "Stage 5: evaluation (task $task) -> $exp/results.json"
  require_file "$exp/config.yaml"
  run_logged "$exp/log/stage5_evaluate.log" \
    python -m spkpeft.bin.evaluate --exp "$exp" --data "$data" --results "$exp/results.json" \
      --calibrate "$calibrate" --bootstrap "$bootstrap" --top-n "$asnorm_top_n"
fi

if in_stages 6; then
  log "Stage 6: report and plots"
  require_file "$exp/results.json"
  python -m spkpeft.bin.report "$exp/results.json" --corpus-dir "$data" --plot-dir "$exp/plots" \
    | tee "$exp/log/stage6_report.log"
fi
