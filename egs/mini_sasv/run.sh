#!/usr/bin/env bash
# The mini spoof-aware speaker verification recipe (synthetic data, CPU, about 10 minutes on 2 cores):
# the mini SV model (conf/sv/mini_fbank.yaml, trained on the mini SV corpus by ../../run.sh) and the
# mini CM model (conf/cm/mini.yaml, trained on the SASV corpus's training set) fused on a synthetic
# SASV corpus in the ASVspoof 2019 LA layout whose voices the SV model has never heard
# (local/make_mini_cm_corpus.py --first-speaker 1000 --n-enroll 3).  ../../run.sh --corpus mini_sasv
# runs it too.  Results: egs/mini_sasv/README.md.
#   1    the SASV corpus (data/raw/mini_sasv -> data/mini_sasv, local/prepare_asvspoof2019_la.sh)
#   2-6  steps/sasv_recipe.sh: the components unless --sv-exp / --cm-exp name trained ones, then
#        steps/pipeline.sh (task sasv): validation, fusions fitted on dev, trial scores, metrics, report
set -euo pipefail
corpus=mini_sasv
default_config=conf/sasv/mini.yaml
data_root=data/raw/mini_sasv
mini_opts="--first-speaker 1000 --n-enroll 3 --n-train 300 --n-dev 200 --n-eval 240 --n-train-spk 10 --n-dev-spk 8 --n-eval-spk 10 --bonafide-frac 0.4 --min-dur 1.5 --max-dur 3.0"
sv_exp=            # a trained sv experiment or package (default: trained here, exp/mini/mini_fbank)
cm_exp=            # a trained cm experiment or package (default: trained here, exp/mini_sasv/mini)
sv_config=conf/sv/mini_fbank.yaml
cm_config=conf/cm/mini.yaml
recipe_usage="The spoof-aware speaker verification mini recipe (synthetic ASVspoof 2019 LA layout with
  enrollment lists and gi trials, CPU): stages 1 corpus, 2 validation, 3 components + fusions fitted on
  dev, 4 trial scores, 5 metrics, 6 report."
corpus_usage="  --mini-opts STR    options of local/make_mini_cm_corpus.py for the SASV corpus
  --sv-exp DIR       a trained speaker-verification experiment or package (default: train --sv-config on the mini corpus)
  --cm-exp DIR       a trained countermeasure experiment or package (default: train --cm-config on the SASV training set)
  --sv-config FILE   --cm-config FILE   the components' configs when trained here ($sv_config, $cm_config)
"
corpus_paths="sv_exp cm_exp sv_config cm_config"
. "$(dirname "$0")/../../steps/recipe.sh"

: "${exp:=exp/$corpus/sasv_$(basename "$config" .yaml)}"   # the components are exp/<corpus>/<config>
recipe_start "sasv" "$corpus"
prepare() {
  local/make_mini_cm_corpus.sh --mini-opts "$mini_opts" "$data_root"
  local/prepare_asvspoof2019_la.sh "$data_root" "$prepared"
}
run_stage1 "$(stage1_options)" prepare
run_sasv_stages mini ""
