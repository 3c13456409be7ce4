# shellcheck shell=bash
# What every corpus recipe (egs/<corpus>/run.sh) shares: the common options, their parsing and
# checks, the experiment-naming rule, stage 1's skip-when-up-to-date, and the call of the
# corpus-free pipeline (steps/pipeline.sh) for stages 2-6.  A recipe declares
#
#   corpus=NAME             its name (data/NAME unless it says otherwise)
#   default_config=FILE     the config of a bare call
#   recipe_usage="..."      what it does (first lines of --help)
#   corpus_usage="..."      its own options (declared as shell variables, like all options)
#   corpus_paths="a b"      those of its options that are paths (relative to the caller)
#
# then sources this file with its arguments (". steps/recipe.sh"; options are parsed here: an
# undeclared option is a usage error naming the recipes that have it), checks its own options,
# and calls
#
#   recipe_start "TASKS" NAME [SUBSET]   the config's task.type must be one of TASKS (else a
#                                         one-line error before stage 1); data/NAME[/SUBSET],
#                                         the experiment directory, EXP/run.cmd
#   run_stage1 OPTIONS CMD...             stage 1 (CMD, usually a function of the recipe, writes
#                                         $prepared), skipped when $prepared was made with OPTIONS
#                                         (stage1_options [EXTRA] gives them: corpus, root, EXTRA)
#   run_pipeline                          stages 2-6 on $data (steps/pipeline.sh)

# the repository root, which recipes run from (paths given by the user are relative to the caller)
caller_dir=$PWD
recipe_self="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
cmdline="$(printf '%q ' "$0" "$@")"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

stage=1          # first stage to run
stop_stage=6     # last stage to run
data_root=${data_root-}   # the corpus's root (its release, or where a synthetic corpus is written)
config=          # YAML config (default: the recipe's)
upstream=        # overrides upstream.name of the config (s3prl name, checkpoint path, random:<arch>)
overlay=         # YAML overlay on top of the config, e.g. conf/overlays/large_margin.yaml
init_from=       # checkpoint to start training from (large-margin fine-tuning)
asnorm_top_n=300 # sv stage 5: AS-norm cohort size (top-N cohort scores of each side)
calibrate=true   # sv stage 5: fit the score calibration on held-out training speakers first
bootstrap=1000   # sv stage 5: bootstrap draws for the 95 % intervals (0: none)
exp=             # experiment directory (default exp/<data name>/<config name>[_<upstream>][_<overlay>])
ngpu=0           # GPUs for training (torchrun); 0 = CPU
nj=2             # parallel jobs for data preparation, validation and extraction
shards=          # train from tar shards: stage 2 packs data/<corpus>/train into DIR, stage 3 reads them

usage="Usage: $0 [options]
${recipe_usage:-}
  --stage N          first stage (default $stage)      1 data prep, 2 validation, 3 training,
  --stop-stage M     last stage (default $stop_stage)       4 inference, 5 evaluation, 6 report
  --data-root DIR    corpus root${data_root:+ (default $data_root)}
  --config FILE      YAML config (default $default_config); its task.type must be one the corpus serves
  --upstream NAME    override the config's upstream (hub name, checkpoint path, random:<arch>)
  --overlay FILE     YAML overlay on top of the config (e.g. conf/overlays/large_margin.yaml)
  --init-from CKPT   start training from this checkpoint's weights
  --asnorm-top-n N   sv: AS-norm top-N cohort scores per side (default $asnorm_top_n)
  --calibrate B      sv: fit the score calibration in stage 5, true|false (default $calibrate)
  --bootstrap N      sv: bootstrap draws (speakers resampled) for the 95% intervals, 0 = none (default $bootstrap)
  --exp DIR          experiment directory (default exp/<corpus>/<config>[_<upstream>][_<overlay>])
  --ngpu N           GPUs for training, 0 = CPU (default $ngpu)
  --nj N             parallel jobs (default $nj)
  --shards DIR       large corpora: stage 2 packs the training data into tar shards in DIR
                     (resumable, --nj at a time), stage 3 reads them sequentially (data.shards)
${corpus_usage:-}  -h, --help         this message"

# option_hint NAME: which recipes declare the option NAME (for the unknown-option error)
option_hint() {
  local found
  found=$(grep -l "^$1=" egs/*/run.sh 2>/dev/null | xargs -r -n1 dirname | xargs -r -n1 basename | paste -sd' ' -)
  [ -z "$found" ] || echo "--${1//_/-} goes with --corpus ${found// / or --corpus }"
}

. steps/parse_options.sh
. steps/common.sh

for var in data_root config exp overlay init_from shards ${corpus_paths:-}; do
  value=${!var}
  [ -z "$value" ] || [[ "$value" == /* ]] || printf -v "$var" '%s' "$caller_dir/$value"
done
[[ "$stage" =~ ^[0-9]+$ && "$stop_stage" =~ ^[0-9]+$ ]] || usage_error "--stage and --stop-stage take integers"
[[ "$calibrate" == true || "$calibrate" == false ]] || usage_error "--calibrate takes true or false"
: "${config:=$default_config}"
require_file "$config"

# recipe_start TASKS NAME [SUBSET]: see the header.
recipe_start() {
  local tasks=$1 t
  task=$(python -m spkpeft.bin.config_value --config "$config" task.type)
  for t in $tasks; do [ "$t" != "$task" ] || break; done
  [ "$t" = "$task" ] || {
    echo "$0: $config is a '$task' config (task.type), and corpus $corpus serves ${tasks// / or } (see egs/$corpus/README.md)" >&2
    exit 1
  }
  prepared="data/$2" data="data/$2${3:+/$3}"
  : "${exp:=$(experiment_dir "exp/$2" "$config" "$upstream" "$overlay")${3:+/$3}}"
  # One run per experiment directory: $exp/.lock (pid, host) is taken before anything is written
  # there, released on exit; another live run's lock stops this one (spkpeft.io.lock).
  lock_token=$(SPKPEFT_LOCK_COMMAND="$cmdline" python -m spkpeft.bin.lock acquire "$exp" $$) || exit 1
  trap 'python -m spkpeft.bin.lock release "$exp" "$lock_token"' EXIT
  export SPKPEFT_EXP_LOCK=$lock_token
  mkdir -p "$exp/log"
  { echo "# $(date '+%Y-%m-%dT%H:%M:%S')"; echo "$cmdline"; } >> "$exp/run.cmd"
  echo "$data" > "$exp/data_dir.tmp" && mv "$exp/data_dir.tmp" "$exp/data_dir"
}

# prepare_once OPTIONS CMD...: run CMD unless $prepared was made with OPTIONS and holds data
# directories ($prepared/.stage1_options records them); OPTIONS changed: CMD runs again.
prepare_once() {
  local options=$1 stamp="$prepared/.stage1_options"
  shift
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$options" ] \
     && { compgen -G "$prepared/*/wav.scp" || compgen -G "$prepared/*/*/wav.scp"; } > /dev/null; then
    log "$prepared is up to date with the options ($options); skipping"
    return 0
  fi
  "$@"
  mkdir -p "$prepared"
  echo "$options" > "$stamp.tmp" && mv "$stamp.tmp" "$stamp"
  log "prepared $prepared"
}

# stage1_options [EXTRA]: the options stage 1 records: corpus, root (absolute), then EXTRA.
stage1_options() {
  echo "corpus=$corpus root=$(realpath -m "$data_root") mini_opts=${mini_opts-} vox1_lists=${vox1_lists-}${1:-}"
}

# run_stage1 OPTIONS CMD...: stage 1 when it is among the stages (log in EXP/log/stage1_prepare.log).
run_stage1() {
  in_stages 1 || return 0
  log "Stage 1: data preparation ($corpus from $data_root) -> $prepared"
  run_logged "$exp/log/stage1_prepare.log" prepare_once "$@"
}

# run_pipeline: stages max(2, stage)-stop_stage on $data (steps/pipeline.sh), then the closing log line.
run_pipeline() {
  local first=$(( stage < 2 ? 2 : stage ))
  if [ "$first" -le "$stop_stage" ]; then
    steps/pipeline.sh --stage "$first" --stop-stage "$stop_stage" --data "$data" --exp "$exp" --config "$config" \
      --upstream "$upstream" --overlay "$overlay" --init-from "$init_from" --shards "$shards" --ngpu "$ngpu" \
      --nj "$nj" --calibrate "$calibrate" --bootstrap "$bootstrap" --asnorm-top-n "$asnorm_top_n"
  fi
  log "Done: stages $stage-$stop_stage ($exp)"
}

# run_sasv_stages SV_CORPUS SV_DATA_ROOT: stages max(2, stage)-stop_stage of a spoof-aware speaker
# verification recipe (steps/sasv_recipe.sh: the components not given by --sv-exp / --cm-exp are
# trained, the SV one by ./run.sh --corpus SV_CORPUS; then steps/pipeline.sh), then the closing log line.
run_sasv_stages() {
  [ -z "$upstream$overlay$init_from$shards" ] \
    || usage_error "--upstream, --overlay, --init-from and --shards do not apply to a SASV recipe (its models: --sv-exp, --cm-exp)"
  local first=$(( stage < 2 ? 2 : stage ))
  if [ "$first" -le "$stop_stage" ]; then
    steps/sasv_recipe.sh --stage "$first" --stop-stage "$stop_stage" --config "$config" --sv-exp "$sv_exp" \
      --cm-exp "$cm_exp" --sv-corpus "$1" --sv-data-root "$2" --sv-config "$sv_config" --cm-config "$cm_config" \
      --bootstrap "$bootstrap" --ngpu "$ngpu" --nj "$nj" "$data" "$exp"
  fi
  log "Done: stages $stage-$stop_stage ($exp)"
}
