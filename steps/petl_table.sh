#!/usr/bin/env bash
# The PETL comparison table: several configs (methods) on several corpora, one table of
# trainable parameters (and %) and accuracy per corpus.
#   esc50: steps/cv.sh per config (5-fold cross-validation, accuracy mean +- std) in EXP_ROOT/esc50/<config>;
#   any other corpus: steps/compare.sh (stages 1-2 once, 3-6 per config) in EXP_ROOT/<corpus>[_<sc-task>]/<config>;
#   then python -m spkpeft.bin.petl_table: EXP_ROOT/petl_table.{md,csv}.
# --stage 6 only rebuilds the tables (the cross-validation summaries and the PETL table).
# Finished experiments are skipped, so rerunning fills in what is missing.
# Usage: steps/petl_table.sh --configs "conf/cls/frozen.yaml conf/cls/lora.yaml" \
#            --corpora "esc50=/data/ESC-50-master speechcommands=/data/speech_commands_v0.02" [options]
set -euo pipefail
caller_dir=$PWD
cd "$(dirname "$0")/.."

configs=         # space-separated config files, one method each
corpora=         # space-separated CORPUS=RELEASE_ROOT pairs, in column order
sc_task=35       # speechcommands: 35 | 12
upstream=        # the same upstream for every run (default: each config's)
exp_root=        # default exp/petl
stage=1          # 1: data preparation first; 3-5 (compare.sh) / 2-5 (cv.sh): skip it; 6: table only
ngpu=0
nj=2
run_opts=        # further run.sh options for every call

usage="Usage: $0 --configs \"CONF ...\" --corpora \"CORPUS=ROOT ...\" [options]
  --configs LIST     config files, one method (row) each; names must differ
  --corpora LIST     CORPUS=RELEASE_ROOT pairs (columns), e.g. esc50=/data/ESC-50-master
  --sc-task 35|12    speechcommands task (default $sc_task)
  --upstream NAME    upstream for every run (default: each config's)
  --exp-root DIR     experiments and the table (default exp/petl)
  --stage N          1: prepare the data first (default); 6: only rebuild the table
  --ngpu N           GPUs for training (default $ngpu)
  --nj N             parallel jobs (default $nj)
  --run-opts STR     further options passed to every ./run.sh call
  -h, --help         this message"

. steps/parse_options.sh
. steps/common.sh

[ -n "$configs" ] && [ -n "$corpora" ] || usage_error "--configs and --corpora are required"
[[ "$stage" =~ ^[1-6]$ ]] || usage_error "--stage takes 1 to 6"
[ -z "$exp_root" ] || [[ "$exp_root" == /* ]] || exp_root="$caller_dir/$exp_root"
: "${exp_root:=$PWD/exp/petl}"
read -r -a conf_list <<< "$configs"
conf_paths=() names=()
for c in "${conf_list[@]}"; do
  [[ "$c" == /* ]] || c="$caller_dir/$c"
  require_file "$c"
  conf_paths+=("$c") names+=("$(basename "$c" .yaml)")
done

read -r -a pairs <<< "$corpora"
columns=()
for pair in "${pairs[@]}"; do
  [[ "$pair" == *=* ]] || usage_error "--corpora takes CORPUS=ROOT pairs, got '$pair'"
  corpus=${pair%%=*} root=${pair#*=}
  [[ "$root" == /* ]] || root="$caller_dir/$root"
  common=(--corpus "$corpus" --data-root "$root" --ngpu "$ngpu" --nj "$nj" ${upstream:+--upstream "$upstream"})
  case "$corpus" in
    esc50)
      column=esc50
      for i in "${!conf_paths[@]}"; do
        steps/cv.sh "${common[@]}" --config "${conf_paths[$i]}" --exp "$exp_root/$column/${names[$i]}" \
          --stage "$stage" --run-opts "$run_opts"
      done ;;
    *)
      column=$corpus opts=$run_opts
      if [ "$corpus" = speechcommands ]; then column="speechcommands_$sc_task" opts="$run_opts --sc-task $sc_task"; fi
      if [ "$stage" -le 5 ]; then
        steps/compare.sh "${common[@]}" --configs "${conf_paths[*]}" --exp-root "$exp_root/$column" \
          --stage "$stage" --run-opts "$opts"
      fi ;;
  esac
  columns+=(--corpus "$column=$exp_root/$column")
done

log "PETL table -> $exp_root/petl_table.{md,csv}"
python -m spkpeft.bin.petl_table "${columns[@]}" --variants "${names[*]}" --out "$exp_root"
