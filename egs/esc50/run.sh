#!/usr/bin/env bash
# ESC-50: 5-fold cross-validation of one config (per fold: train on three folds, validate on
# the fold before the test fold as PETL-AST does, test on the fold), then the per-fold table
# and mean +- std in EXP/cv_results.{md,json}.  A thin entry point over steps/cv.sh; its
# options may follow and override these defaults.
#   egs/esc50/run.sh --data-root /data/ESC-50-master [--config conf/cls/lora.yaml] [--ngpu 1]
exec "$(dirname "$0")/../../steps/cv.sh" --corpus esc50 \
  --config "$(dirname "$0")/../../conf/cls/lora.yaml" "$@"
