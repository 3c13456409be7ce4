#!/usr/bin/env bash
# Compare several configs (variants) on one corpus.
#   1. stages 1-2 once (./run.sh --stop-stage 2, logs in EXP_ROOT/log);
#   2. per config, stages 3-6 in EXP_ROOT/<config name>, skipped when that
#      experiment already has results.json (re-running fills in only what is
#      missing; an interrupted training resumes from its last.pt);
#   3. python -m spkpeft.bin.compare: OUT/results.md, OUT/results.csv and, for
#      speaker verification, OUT/det_<trials>[.<norm>].png (one DET curve per variant).
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

usage="Usage: $0 --configs \"CONF [CONF ...]\" [options]
  --configs LIST     config files to compare (one experiment each; names must differ)
  --corpus NAME      corpus (default $corpus)
  --data-root DIR    corpus root
  --upstream NAME    upstream for every variant (default: each config's)
  --exp-root DIR     experiments go to DIR/<config name> (default exp/compare/<corpus>[_<upstream>])
  --out DIR          results.md, results.csv and det_*.png (default: the experiment root)
  --stage N          1-2: run data preparation first (default); 3-5: first stage of each variant; 6: table only
  --ngpu N           GPUs for training (default $ngpu)
  --nj N             parallel jobs (default $nj)
  --mini-opts STR    options for local/make_mini_corpus.py
  --run-opts STR     further options passed to every ./run.sh call
  -h, --help         this message"

. steps/parse_options.sh
. steps/common.sh

[ -n "$configs" ] || usage_error "--configs is required"
[[ "$stage" =~ ^[1-6]$ ]] || usage_error "--stage takes 1 to 6"
for var in data_root exp_root out; do
  value=${!var}
  [ -z "$value" ] || [[ "$value" == /* ]] || printf -v "$var" '%s' "$caller_dir/$value"
done
if [ -z "$exp_root" ]; then
  exp_root="$PWD/exp/compare/$corpus"
  [ -z "$upstream" ] || exp_root="${exp_root}_${upstream//[^A-Za-z0-9_.-]/_}"
fi
: "${out:=$exp_root}"
read -r -a extra <<< "$run_opts"
common=(--corpus "$corpus" --ngpu "$ngpu" --nj "$nj" ${data_root:+--data-root "$data_root"}
        ${upstream:+--upstream "$upstream"} ${mini_opts:+--mini-opts "$mini_opts"} "${extra[@]}")

conf_paths=() exps=()
read -r -a conf_list <<< "$configs"
for c in "${conf_list[@]}"; do
  [[ "$c" == /* ]] || c="$caller_dir/$c"
  require_file "$c"
  exp="$exp_root/$(basename "$c" .yaml)"
  for e in "${exps[@]}"; do
    [ "$e" != "$exp" ] || usage_error "two configs are named $(basename "$c" .yaml); variants need distinct names"
  done
  conf_paths+=("$c") exps+=("$exp")
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
trials_opt=()
[ ! -d "data/$corpus/trials" ] || trials_opt=(--trials-dir "data/$corpus/trials")
python -m spkpeft.bin.compare "${exps[@]}" --out "$out" "${trials_opt[@]}"
log "Done: $out/results.md, $out/results.csv"
