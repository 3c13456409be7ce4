#!/usr/bin/env bash
# In-the-Wild (Mueller et al. 2022) as an evaluation set of a model trained on ASVspoof 2019 LA:
# prepare with --stop-stage 2, then --stage 4 --exp <the 2019 LA experiment>.
# ../../run.sh --corpus in_the_wild runs it too.
#   egs/in_the_wild/run.sh --data-root /data/in_the_wild [--config conf/cm/lora_xlsr.yaml]
set -euo pipefail
corpus=in_the_wild
default_config=conf/cm/lora_xlsr.yaml
recipe_usage="Spoofing countermeasures on in_the_wild (egs/in_the_wild/README.md)."
. "$(dirname "$0")/../../steps/recipe.sh"
[ -n "$data_root" ] || usage_error "--corpus $corpus needs --data-root (the release root)"

recipe_start "cm" "$corpus"

prepare() { "local/prepare_$corpus.sh" "$data_root" "$prepared"; }
run_stage1 "$(stage1_options)" prepare
run_pipeline
