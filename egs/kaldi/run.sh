#!/usr/bin/env bash
# Your own corpus as Kaldi data directories: a test directory with a trials file (speaker
# verification), or labelled directories (utt2label: utterance classification).
# ../../run.sh --corpus kaldi runs it too.
#   egs/kaldi/run.sh --data-root test_dir --kaldi-trials trials [--kaldi-train train_dir] [--kaldi-enroll enroll_dir]
#   egs/kaldi/run.sh --data-root test_dir --kaldi-train train_dir [--kaldi-dev dev_dir] --config conf/cls/lora.yaml
set -euo pipefail
corpus=kaldi
default_config=conf/sv/mini.yaml
kaldi_trials=    # trials file for the Kaldi data directory given as --data-root
kaldi_train=     # Kaldi data directory to train on
kaldi_enroll=    # Kaldi data directory whose speakers are enrollment ids
kaldi_dev=       # labelled directories: Kaldi data directory (with utt2label) to validate on
corpus_paths="kaldi_trials kaldi_train kaldi_enroll kaldi_dev"
recipe_usage="Kaldi data directories of your own: with --kaldi-trials a verification corpus (task sv),
without one labelled directories (utt2label, task cls) (egs/kaldi/README.md)."
corpus_usage="  --kaldi-trials F   trials (Kaldi or VoxCeleb format) for the data directory --data-root
  --kaldi-train DIR  Kaldi data directory to train on
  --kaldi-enroll DIR Kaldi data directory of enrollment ids (first field of the trials)
  --kaldi-dev DIR    labelled directories: Kaldi data directory (with utt2label) to validate on
"
. "$(dirname "$0")/../../steps/recipe.sh"
[ -n "$data_root" ] && { [ -n "$kaldi_trials" ] || [ -n "$kaldi_train" ]; } \
  || usage_error "--corpus kaldi needs --data-root (a Kaldi data directory) and --kaldi-trials FILE (verification), or --kaldi-train DIR (labelled directories)"

abs_or_empty() { [ -z "$1" ] || realpath -m "$1"; }
if [ -n "$kaldi_trials" ]; then
  recipe_start "sv" "$corpus"
  prepare() {
    local/prepare_kaldi_dir.sh --train-dir "$kaldi_train" --enroll-dir "$kaldi_enroll" "$data_root" "$kaldi_trials" "$prepared"
  }
else
  recipe_start "cls" "$corpus"
  prepare() {
    local/prepare_kaldi_dir.sh --task cls --train-dir "$kaldi_train" --dev-dir "$kaldi_dev" "$data_root" "$prepared"
  }
fi
run_stage1 "$(stage1_options " task=$task kaldi_trials=$(abs_or_empty "$kaldi_trials") kaldi_train=$(abs_or_empty "$kaldi_train") kaldi_enroll=$(abs_or_empty "$kaldi_enroll") kaldi_dev=$(abs_or_empty "$kaldi_dev")")" prepare
run_pipeline
