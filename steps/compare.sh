#!/usr/bin/env bash
# Compare several configs (variants) on one corpus.
#   1. stages 1-2 once (./run.sh --stop-stage 2, logs in EXP_ROOT/log);
#   2. per config, stages 3-6 in EXP_ROOT/<config name>, skipped when that
#      experiment already has results.json (re-running fills in only what is
#      missing; an interrupted training resumes from its last.pt);
#   3. python -m spkpeft.bin.compare on the corpus directory the recipe evaluated on
#      (EXP/data_dir): OUT/results.md, OUT/results.csv and, for speaker verification,
#      OUT/det_<trials>[.<norm>].png (one DET curve per variant), 95 % intervals and the
#      paired comparison with the first config.
# --seeds N trains every config N times, with train.seed = its seed + 0 .. N-1 (run 0 is
# EXP_ROOT/<config name>, run i EXP_ROOT/<config name>_seed<seed>, its config
# EXP_ROOT/seed_configs/<config name>_seed<seed>.yaml = the config + train.seed); the
# table then holds the mean and sd over the runs (speaker verification).
# Every config must be of the same task (task.type).
# Usage: steps/compare.sh --configs "conf/sv/lora.yaml conf/sv/bitfit.yaml" [options]
set -euo pipefail
caller_dir=$PWD
cd "$(dirname "$0")/.."

configs=         # space-separated config files, one variant each
corpus=mini      # run.sh --corpus
data_root=       # run.sh --data-root
upstream=        # run.sh --upstream (the same upstream for every variant)
exp_root=        # experiments go to EXP_ROOT/<config name> (default exp/compare/<corpus>[_<upstream>])
out=             # tables and DET plots (default EXP_ROOT)
stage=1          # 1-2: start with data preparation; 3-5: skip it, start each variant there; 6: table only
ngpu=0           # run.sh --ngpu
nj=2             # run.sh --nj
mini_opts=       # run.sh --mini-opts
run_opts=        # further run.sh options for every call, e.g. "--vox1-lists vox1_o,vox1_o_clean"
seeds=1          # runs per config (train.seed, +1, ...); > 1: mean +- sd over the runs
bootstrap=1000   # bootstrap draws of the 95 % intervals and the paired comparison (0: none)

usage="Usage: $0 --configs \"CONF [CONF ...]\" [options]
  --configs LIST     config files to compare (one experiment each; names must differ)
  --corpus NAME      corpus: its recipe egs/NAME/run.sh runs every variant (default $corpus)
  --data-root DIR    corpus root
  --upstream NAME    upstream for every variant (default: each config's)
  --exp-root DIR     experiments go to DIR/<config name> (default exp/compare/<corpus>[_<upstream>])
  --out DIR          results.md, results.csv and det_*.png (default: the experiment root)
  --stage N          1-2: run data preparation first (default); 3-5: first stage of each variant; 6: table only
  --ngpu N           GPUs for training (default $ngpu)
  --nj N             parallel jobs (default $nj)
  --mini-opts STR    options for local/make_mini_corpus.py
  --run-opts STR     further options passed to every ./run.sh call
  --seeds N          train every config N times (train.seed, +1, ...); table: mean +- sd (default $seeds)
  --bootstrap N      bootstrap draws for the 95% intervals and the paired comparison (default $bootstrap)
  -h, --help         this message"

. steps/parse_options.sh
. steps/common.sh

[ -n "$configs" ] || usage_error "--configs is required"
[[ "$stage" =~ ^[1-6]$ ]] || usage_error "--stage takes 1 to 6"
[[ "$seeds" =~ ^[1-9][0-9]*$ ]] || usage_error "--seeds takes a positive integer"
[[ "$bootstrap" =~ ^[0-9]+$ ]] || usage_error "--bootstrap takes a non-negative integer"
for var in data_root exp_root out; do
  value=${!var}
  [ -z "$value" ] || [[ "$value" == /* ]] || printf -v "$var" '%s' "$caller_dir/$value"
done
: "${exp_root:=$PWD/exp/compare/$corpus$(exp_suffix "$upstream" "")}"
: "${out:=$exp_root}"
read -r -a extra <<< "$run_opts"
common=(--corpus "$corpus" --ngpu "$ngpu" --nj "$nj" ${data_root:+--data-root "$data_root"}
        ${upstream:+--upstream "$upstream"} ${mini_opts:+--mini-opts "$mini_opts"} --bootstrap "$bootstrap" "${extra[@]}")

# seed_config CONFIG NAME SEED: EXP_ROOT/seed_configs/NAME_seedSEED.yaml, CONFIG with train.seed = SEED
seed_config() {
  local path="$exp_root/seed_configs/$2_seed$3.yaml" quoted=${1//\\/\\\\}
  quoted=${quoted//\"/\\\"}
  mkdir -p "$exp_root/seed_configs"
  printf 'base: "%s"\ntrain:\n  seed: %d\n' "$quoted" "$3" > "$path"
  echo "$path"
}

conf_paths=() exps=()
read -r -a conf_list <<< "$configs"
for c in "${conf_list[@]}"; do
  [[ "$c" == /* ]] || c="$caller_dir/$c"
  require_file "$c"
  name=$(basename "$c" .yaml)
  runs=("$c") run_exps=("$exp_root/$name")
  if [ "$seeds" -gt 1 ]; then
    first_seed=$(python -m spkpeft.bin.config_value --config "$c" train.seed)
    for ((i = 1; i < seeds; i++)); do
      runs+=("$(seed_config "$c" "$name" $((first_seed + i)))") run_exps+=("$exp_root/${name}_seed$((first_seed + i))")
    done
  fi
  for exp in "${run_exps[@]}"; do
    for e in "${exps[@]}"; do
      [ "$e" != "$exp" ] || usage_error "two configs are named $(basename "$exp"); variants need distinct names"
    done
    exps+=("$exp")
  done
  conf_paths+=("${runs[@]}")
done

if [ "$stage" -le 2 ]; then
  log "Data preparation and validation (stages $stage-2), logs in $exp_root/log"
  # the first variant's config names the task (data validation differs per task)
  ./run.sh --stage "$stage" --stop-stage 2 --config "${conf_paths[0]}" --exp "$exp_root" "${common[@]}"
fi

first=$(( stage < 3 ? 3 : stage ))
if [ "$first" -le 5 ]; then
  for i in "${!exps[@]}"; do
    if [ -f "${exps[$i]}/results.json" ]; then
      log "${exps[$i]} has results.json; skipping"
      continue
    fi
    log "Variant $(basename "${exps[$i]}"): stages $first-6 in ${exps[$i]}"
    ./run.sh --stage "$first" --stop-stage 6 --config "${conf_paths[$i]}" --exp "${exps[$i]}" "${common[@]}"
  done
fi

log "Comparison table and DET plots -> $out"
# The corpus directory the recipe evaluated on (it records it in every experiment it runs).
data_dir=
for e in "$exp_root" "${exps[@]}"; do
  [ -z "$data_dir" ] && [ -f "$e/data_dir" ] && data_dir=$(cat "$e/data_dir")
done
python -m spkpeft.bin.compare "${exps[@]}" --out "$out" --seeds "$seeds" --bootstrap "$bootstrap" \
  ${data_dir:+--data "$data_dir"}
log "Done: $out/results.md, $out/results.csv"
