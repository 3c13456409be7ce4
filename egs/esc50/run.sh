#!/usr/bin/env bash
# ESC-50 environmental sound classification, 5-fold cross-validation: stage 1 once (44.1 kHz ->
# 16 kHz wavs, data/esc50/fold{1..5}/{train,dev,test}), then per fold stages 2-6 (train on three
# folds, validate on the fold before the test fold as PETL-AST does, test on the fold) in
# EXP/fold<k>, then the per-fold table and mean +- std in EXP/cv_results.{md,json}.
# --fold K runs stages 2-6 of one fold only (EXP defaults to exp/esc50/<config>/fold<K>).
# ../../run.sh --corpus esc50 runs it too; steps/cv.sh cross-validates any corpus prepared in folds.
#   egs/esc50/run.sh --data-root /data/ESC-50-master [--config conf/cls/lora.yaml] [--ngpu 1] [--fold 2]
set -euo pipefail
corpus=esc50
default_config=conf/cls/lora.yaml
fold=            # the fold (1-5) of stages 2-6; empty: every fold, then the cross-validation summary
esc50_dev=previous  # previous = validate on the fold before the test fold (PETL-AST); none = no dev
wav_dir=         # the 16 kHz wavs (default data/raw/esc50_16k)
corpus_paths="wav_dir"
recipe_usage="ESC-50 5-fold cross-validation, or one fold with --fold (egs/esc50/README.md)."
corpus_usage="  --fold K           one cross-validation fold 1-5 for stages 2-6 (data/esc50/foldK, exp .../foldK);
                     default: every fold, then EXP/cv_results.{md,json} (mean +- std)
  --esc50-dev WHICH  previous (validate on the fold before the test fold, PETL-AST) | none
                     (train on the four other folds; validation from task.val_fraction) (default $esc50_dev)
  --wav-dir DIR      where the 16 kHz wavs go (default data/raw/esc50_16k)
"
args=("$@")
. "$(dirname "$0")/../../steps/recipe.sh"
[ -z "$fold" ] || [[ "$fold" =~ ^[1-5]$ ]] || usage_error "--fold takes 1 to 5"
[[ "$esc50_dev" =~ ^(previous|none)$ ]] || usage_error "--esc50-dev takes previous or none"
[ -n "$data_root" ] || usage_error "--corpus $corpus needs --data-root (the release root)"
: "${wav_dir:=data/raw/esc50_16k}"

recipe_start "cls" "$corpus" "${fold:+fold$fold}"

prepare() { local/prepare_esc50.sh --nj "$nj" --dev-fold "$esc50_dev" "$data_root" "$wav_dir" "$prepared"; }
run_stage1 "$(stage1_options " esc50_dev=$esc50_dev wav_dir=$(realpath -m "$wav_dir")")" prepare
if [ -n "$fold" ]; then
  run_pipeline
  exit 0
fi

# Every fold: this recipe again with --fold k (stages 2-6; a fold with results.json is skipped),
# from the caller's directory, so that its relative paths keep their meaning.
first=$(( stage < 2 ? 2 : stage ))
fold_exps=()
for k in 1 2 3 4 5; do
  fold_exps+=("$exp/fold$k")
  [ "$first" -le 5 ] && [ "$stop_stage" -ge 2 ] || continue
  if [ -f "$exp/fold$k/results.json" ]; then
    log "$exp/fold$k has results.json; skipping"
    continue
  fi
  log "Fold $k: stages $first-$stop_stage in $exp/fold$k"
  (cd "$caller_dir" && "$recipe_self" "${args[@]}" --stage "$first" --fold "$k" --exp "$(realpath -m "$exp")/fold$k")
done
if [ "$stop_stage" -ge 6 ]; then
  log "Cross-validation summary -> $exp/cv_results.{md,json}"
  python -m spkpeft.bin.cv_summary "${fold_exps[@]}" --out "$exp"
fi
log "Done: stages $stage-$stop_stage ($exp)"
