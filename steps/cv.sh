#!/usr/bin/env bash
# K-fold cross-validation of one config on a corpus prepared in folds (esc50: data/esc50/fold{1..5}).
#   1. stage 1 once (./run.sh --stop-stage 1, log in EXP/log);
#   2. per fold k, stages 2-6 of ./run.sh --fold k in EXP/fold<k>, skipped when that fold already
#      has results.json (rerunning fills in only what is missing; a killed training resumes);
#   3. python -m spkpeft.bin.cv_summary: EXP/cv_results.{md,json}, the test accuracy and macro-F1
#      per fold and their mean +- std.
# Usage: steps/cv.sh --config FILE --data-root DIR [--corpus esc50] [--exp DIR] [--folds "1 2 3 4 5"] [options]
set -euo pipefail
caller_dir=$PWD
cd "$(dirname "$0")/.."

config=          # the config (one experiment per fold)
corpus=esc50     # a corpus run.sh prepares in folds
data_root=       # run.sh --data-root
upstream=        # run.sh --upstream
exp=             # folds go to EXP/fold<k> (default exp/<corpus>/<config name>[_<upstream>])
folds="1 2 3 4 5"
stage=1          # 1: prepare the data first; 2-5: first stage of every fold; 6: summary only
ngpu=0           # run.sh --ngpu
nj=2             # run.sh --nj
run_opts=        # further run.sh options for every call, e.g. "--esc50-dev none"

usage="Usage: $0 --config FILE --data-root DIR [options]
  --config FILE      the config to cross-validate
  --corpus NAME      a corpus prepared in folds (default $corpus)
  --data-root DIR    corpus root (the release)
  --upstream NAME    run.sh --upstream
  --exp DIR          experiment root: DIR/fold<k>, DIR/cv_results.{md,json} (default exp/<corpus>/<config>)
  --folds LIST       folds to run (default \"$folds\")
  --stage N          1: data preparation first (default); 2-5: first stage of every fold; 6: summary only
  --ngpu N           GPUs for training (default $ngpu)
  --nj N             parallel jobs (default $nj)
  --run-opts STR     further options passed to every ./run.sh call
  -h, --help         this message"

. steps/parse_options.sh
. steps/common.sh

[ -n "$config" ] || usage_error "--config is required"
[[ "$stage" =~ ^[1-6]$ ]] || usage_error "--stage takes 1 to 6"
for var in config data_root exp; do
  value=${!var}
  [ -z "$value" ] || [[ "$value" == /* ]] || printf -v "$var" '%s' "$caller_dir/$value"
done
require_file "$config"
: "${exp:=$PWD/$(experiment_dir "exp/$corpus" "$config" "$upstream" "")}"
read -r -a fold_list <<< "$folds"
[ "${#fold_list[@]}" -ge 2 ] || usage_error "--folds needs at least two folds"
read -r -a extra <<< "$run_opts"
common=(--corpus "$corpus" --config "$config" --ngpu "$ngpu" --nj "$nj" ${data_root:+--data-root "$data_root"}
        ${upstream:+--upstream "$upstream"} "${extra[@]}")

if [ "$stage" -le 1 ]; then
  log "Data preparation (stage 1), log in $exp/log"
  ./run.sh --stage 1 --stop-stage 1 --exp "$exp" "${common[@]}"
fi

first=$(( stage < 2 ? 2 : stage ))
fold_exps=()
for k in "${fold_list[@]}"; do
  fold_exps+=("$exp/fold$k")
  [ "$first" -le 5 ] || continue
  if [ -f "$exp/fold$k/results.json" ]; then
    log "$exp/fold$k has results.json; skipping"
    continue
  fi
  log "Fold $k: stages $first-6 in $exp/fold$k"
  ./run.sh --stage "$first" --stop-stage 6 --fold "$k" --exp "$exp/fold$k" "${common[@]}"
done

log "Cross-validation summary -> $exp/cv_results.{md,json}"
python -m spkpeft.bin.cv_summary "${fold_exps[@]}" --out "$exp"
