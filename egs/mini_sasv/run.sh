#!/usr/bin/env bash
# The mini spoof-aware speaker verification recipe (synthetic data, CPU, about 10 minutes on 2 cores):
# the mini SV model (conf/sv/mini_fbank.yaml, trained on the mini SV corpus by ../../run.sh) and the
# mini CM model (conf/cm/mini.yaml, trained on the SASV corpus's training set) fused on a synthetic
# SASV corpus in the ASVspoof 2019 LA layout whose voices the SV model has never heard
# (local/make_mini_cm_corpus.py --first-speaker 1000 --n-enroll 3).  Results: egs/mini_sasv/RESULTS.md.
#   1  the SASV corpus (data/raw/mini_sasv -> data/mini_sasv, local/prepare_asvspoof2019_la.sh)
#   2-6  steps/sasv_recipe.sh: validation; the components unless --sv-exp / --cm-exp name trained ones, then
#        the fusions fitted on dev; trial scores, metrics, report
set -euo pipefail
caller_dir=$PWD
cd "$(dirname "$0")/../.."
stage=1
stop_stage=6
config=conf/sasv/mini.yaml
sv_exp=            # a trained sv experiment or package (default: trained here, exp/mini/mini_fbank)
cm_exp=            # a trained cm experiment or package (default: trained here, exp/mini_sasv/mini)
sv_config=conf/sv/mini_fbank.yaml
cm_config=conf/cm/mini.yaml
exp=exp/mini_sasv/sasv
data_root=data/raw/mini_sasv
mini_opts="--first-speaker 1000 --n-enroll 3 --n-train 300 --n-dev 200 --n-eval 240 --n-train-spk 10 --n-dev-spk 8 --n-eval-spk 10 --bonafide-frac 0.4 --min-dur 1.5 --max-dur 3.0"
bootstrap=1000
nj=2
usage="Usage: $0 [options]
  --stage N / --stop-stage M   stages 1 corpus, 2 validation, 3 components + fusions, 4 scores, 5 metrics, 6 report
  --config FILE      SASV config (default $config)
  --sv-exp DIR       a trained speaker-verification experiment or package (default: train $sv_config on the mini corpus)
  --cm-exp DIR       a trained countermeasure experiment or package (default: train $cm_config on the SASV training set)
  --sv-config FILE   --cm-config FILE   the components' configs when trained here
  --exp DIR          the SASV experiment (default $exp)
  --data-root DIR    where the synthetic SASV corpus is written (default $data_root)
  --mini-opts STR    options of local/make_mini_cm_corpus.py for the SASV corpus
  --bootstrap N      speaker-bootstrap draws (default $bootstrap)
  --nj N             parallel jobs (default $nj)"
cmdline="$(printf '%q ' "$0" "$@")"
. steps/parse_options.sh
. steps/common.sh
abs() { case "$1" in /*|"") echo "$1" ;; *) echo "$caller_dir/$1" ;; esac; }
for var in config sv_exp cm_exp sv_config cm_config exp data_root; do printf -v "$var" '%s' "$(abs "${!var}")"; done
corpus=$PWD/data/mini_sasv
mkdir -p "$exp/log"
{ echo "# $(date '+%Y-%m-%dT%H:%M:%S')"; echo "$cmdline"; } >> "$exp/run.cmd"

if in_stages 1; then
  log "Stage 1: the mini SASV corpus in $data_root -> $corpus"
  run_logged "$exp/log/stage1_corpus.log" local/make_mini_cm_corpus.sh --mini-opts "$mini_opts" "$data_root"
  run_logged "$exp/log/stage1_prepare.log" local/prepare_asvspoof2019_la.sh "$data_root" "$corpus"
fi
steps/sasv_recipe.sh --stage "$(( stage > 2 ? stage : 2 ))" --stop-stage "$stop_stage" --config "$config" \
  --sv-exp "$sv_exp" --cm-exp "$cm_exp" --sv-corpus mini --sv-config "$sv_config" --cm-config "$cm_config" \
  --bootstrap "$bootstrap" --nj "$nj" "$corpus" "$exp"
log "Done: stages $stage-$stop_stage ($exp)"
