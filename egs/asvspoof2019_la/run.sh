#!/usr/bin/env bash
# ASVspoof 2019 LA spoofing countermeasures: train on train, select on dev (its EER), evaluate on eval
# (EER, min t-DCF with the release's ASV scores, per-attack EER).
# ../../run.sh --corpus asvspoof2019_la runs it too.
#   egs/asvspoof2019_la/run.sh --data-root /data/ASVspoof2019 [--config conf/cm/lora_xlsr.yaml]
set -euo pipefail
corpus=asvspoof2019_la
default_config=conf/cm/lora_xlsr.yaml
recipe_usage="Spoofing countermeasures on asvspoof2019_la (egs/asvspoof2019_la/README.md)."
. "$(dirname "$0")/../../steps/recipe.sh"
[ -n "$data_root" ] || usage_error "--corpus $corpus needs --data-root (the release root)"

recipe_start "cm" "$corpus"

prepare() { "local/prepare_$corpus.sh" "$data_root" "$prepared"; }
run_stage1 "$(stage1_options)" prepare
run_pipeline
