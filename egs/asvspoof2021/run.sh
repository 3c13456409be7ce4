#!/usr/bin/env bash
# ASVspoof 2021 LA and DF evaluation sets (EER, revised min t-DCF, per-attack and per-condition EER)
# of a model trained on ASVspoof 2019 LA: prepare with --stop-stage 2, then --stage 4 --exp <the 2019 LA experiment>.
# ../../run.sh --corpus asvspoof2021 runs it too.
#   egs/asvspoof2021/run.sh --data-root /data/ASVspoof2021 [--config conf/cm/lora_xlsr.yaml]
set -euo pipefail
corpus=asvspoof2021
default_config=conf/cm/lora_xlsr.yaml
recipe_usage="Spoofing countermeasures on asvspoof2021 (egs/asvspoof2021/README.md)."
. "$(dirname "$0")/../../steps/recipe.sh"
[ -n "$data_root" ] || usage_error "--corpus $corpus needs --data-root (the release root)"

recipe_start "cm" "$corpus"

prepare() { "local/prepare_$corpus.sh" "$data_root" "$prepared"; }
run_stage1 "$(stage1_options)" prepare
run_pipeline
