#!/usr/bin/env bash
# spkpeft recipe driver: parameter-efficient fine-tuning of a self-supervised
# upstream for the config's task (task.type: sv speaker verification, cls
# utterance classification).  A bare ./run.sh runs the speaker-verification mini
# recipe (synthetic corpus, random tiny upstream) end to end on CPU;
# ./run.sh --corpus mini_cls --config conf/cls/mini.yaml the classification one.
set -euo pipefail
caller_dir=$PWD
cd "$(dirname "$0")"

stage=1          # first stage to run
stop_stage=6     # last stage to run
corpus=mini      # mini | mini_cls | mini_cm | voxceleb1 | cnceleb1 | kaldi | asvspoof2019_la | asvspoof2021 | in_the_wild
                 # | esc50 | speechcommands
data_root=       # corpus root; mini, mini_cls: where the synthetic corpus is written (default data/raw/<corpus>)
config=          # YAML config (default conf/sv/mini.yaml)
upstream=        # overrides upstream.name of the config (s3prl name, checkpoint path, random:<arch>)
overlay=         # YAML overlay on top of the config, e.g. conf/overlays/large_margin.yaml
init_from=       # checkpoint to start training from (large-margin fine-tuning)
asnorm_top_n=300 # AS-norm cohort size (top-N cohort scores of each side)
calibrate=true   # sv stage 5: fit the score calibration on held-out training speakers first
bootstrap=1000   # sv stage 5: bootstrap draws for the 95 % intervals (0: none)
exp=             # experiment directory (default exp/<corpus>/<config name>[_<upstream>])
ngpu=0           # GPUs for training (torchrun); 0 = CPU
nj=2             # parallel jobs for data preparation, validation and extraction
mini_opts=       # extra options for local/make_mini_corpus.py (mini_cls: local/make_mini_cls_corpus.py)
vox1_lists=      # VoxCeleb1 trial lists in use, e.g. vox1_o,vox1_o_clean (default: all present)
vox2_root=       # voxceleb1: train on VoxCeleb2 dev (DIR/dev/aac/<spk>/<session>/<utt>.m4a; needs ffmpeg)
vox2_wav=        # voxceleb1: where the 16 kHz VoxCeleb2 wavs go (default data/raw/voxceleb2_wav)
cnc_per_genre=false  # cnceleb1: also score per-genre trial lists trials/cnc_eval_<genre>
kaldi_trials=    # kaldi: trials file for the Kaldi data directory given as --data-root
kaldi_train=     # kaldi: Kaldi data directory to train on
kaldi_enroll=    # kaldi: Kaldi data directory whose speakers are enrollment ids
kaldi_dev=       # kaldi, cls task: Kaldi data directory (with utt2label) to validate on
fold=            # esc50: the cross-validation fold (1-5) stages 2-6 use (steps/cv.sh runs every fold)
esc50_dev=previous  # esc50: previous = validate on the fold before the test fold (PETL-AST); none = no dev
sc_task=35       # speechcommands: 35 (the 35 words) | 12 (ten words + _unknown_ + _silence_)
wav_dir=         # esc50: the 16 kHz wavs (default data/raw/esc50_16k); speechcommands: _silence_
                 # clips and background noise (default data/raw/speechcommands)
shards=          # train from tar shards: stage 2 packs data/<corpus>/train into DIR, stage 3 reads them

usage="Usage: $0 [options]
  --stage N          first stage (default $stage)      1 data prep, 2 validation, 3 training,
  --stop-stage M     last stage (default $stop_stage)       4 extraction, 5 scoring, 6 report
  --corpus NAME      mini | mini_cls | mini_cm | voxceleb1 | cnceleb1 | kaldi | asvspoof2019_la |
                     asvspoof2021 | in_the_wild | esc50 | speechcommands (default $corpus)
  --data-root DIR    corpus root (mini, mini_cls, mini_cm: where to write it; default data/raw/<corpus>)
  --config FILE      YAML config (default conf/sv/mini.yaml); its task.type picks stages 2, 4-6
  --upstream NAME    override the config's upstream (hub name, checkpoint path, random:<arch>)
  --overlay FILE     YAML overlay on top of the config (e.g. conf/overlays/large_margin.yaml)
  --init-from CKPT   start training from this checkpoint's weights
  --asnorm-top-n N   AS-norm: top-N cohort scores per side (default 300)
  --calibrate B      sv: fit the score calibration in stage 5, true|false (default $calibrate)
  --bootstrap N      sv: bootstrap draws (speakers resampled) for the 95% intervals, 0 = none (default $bootstrap)
  --exp DIR          experiment directory (default exp/<corpus>/<config>)
  --ngpu N           GPUs for training, 0 = CPU (default $ngpu)
  --nj N             parallel jobs (default $nj)
  --mini-opts STR    options for local/make_mini_corpus.py / make_mini_cls_corpus.py (corpus size etc.)
  --vox1-lists L     VoxCeleb1 trial lists in use (default: every official list present)
  --vox2-root DIR    voxceleb1: train on VoxCeleb2 dev (m4a converted with ffmpeg, --nj in parallel)
  --vox2-wav DIR     voxceleb1: where the converted wavs go (default data/raw/voxceleb2_wav)
  --cnc-per-genre B  cnceleb1: also trial lists per genre, true|false (default $cnc_per_genre)
  --kaldi-trials F   kaldi: trials (Kaldi or VoxCeleb format) for the data directory --data-root
  --kaldi-train DIR  kaldi: Kaldi data directory to train on
  --kaldi-enroll DIR kaldi: Kaldi data directory of enrollment ids (first field of the trials)
  --kaldi-dev DIR    kaldi, cls task: Kaldi data directory (with utt2label) to validate on
  --fold K           esc50: cross-validation fold 1-5 of stages 2-6 (data/esc50/foldK, exp .../foldK);
                     steps/cv.sh runs all five and writes the mean +- std
  --esc50-dev WHICH  esc50: previous (validate on the fold before the test fold, PETL-AST) | none
                     (train on the four other folds; validation from task.val_fraction) (default $esc50_dev)
  --sc-task 35|12    speechcommands: the 35 words, or ten words + _unknown_ + _silence_ (default $sc_task)
  --wav-dir DIR      esc50: where the 16 kHz wavs go; speechcommands: the _silence_ clips and
                     DIR/background/noise/ (default data/raw/esc50_16k, data/raw/speechcommands)
  --shards DIR       large corpora: stage 2 packs the training data into tar shards in DIR
                     (resumable, --nj at a time), stage 3 reads them sequentially (data.shards)
  -h, --help         this message"

cmdline="$(printf '%q ' "$0" "$@")"
. steps/parse_options.sh
. steps/common.sh

# Paths given on the command line are relative to where run.sh was called from.
for var in data_root config exp overlay init_from vox2_root vox2_wav kaldi_trials kaldi_train kaldi_enroll kaldi_dev wav_dir shards; do
  value=${!var}
  [ -z "$value" ] || [[ "$value" == /* ]] || printf -v "$var" '%s' "$caller_dir/$value"
done

[[ "$stage" =~ ^[0-9]+$ && "$stop_stage" =~ ^[0-9]+$ ]] || usage_error "--stage and --stop-stage take integers"
[[ "$sc_task" =~ ^(35|12)$ ]] || usage_error "--sc-task takes 35 or 12"
[[ "$esc50_dev" =~ ^(previous|none)$ ]] || usage_error "--esc50-dev takes previous or none"
[ -z "$fold" ] || [ "$corpus" = esc50 ] || usage_error "--fold goes with --corpus esc50"
[ -z "$fold" ] || [[ "$fold" =~ ^[1-5]$ ]] || usage_error "--fold takes 1 to 5"
[ "$corpus" != esc50 ] || [ -n "$fold" ] || [ "$stop_stage" -lt 2 ] \
  || usage_error "--corpus esc50 needs --fold 1..5 for stages 2-6 (steps/cv.sh runs the 5-fold cross-validation)"
: "${config:=conf/sv/mini.yaml}"
require_file "$config"
task=$(python -m spkpeft.bin.config_value --config "$config" task.type)
case "$corpus" in
  mini|mini_cls|mini_cm) : "${data_root:=data/raw/$corpus}" ;;
  asvspoof2019_la|asvspoof2021|in_the_wild|esc50|speechcommands)
    [ -n "$data_root" ] || usage_error "--corpus $corpus needs --data-root (the release root)" ;;
  voxceleb1) [ -n "$data_root" ] || usage_error "--corpus $corpus needs --data-root (the VoxCeleb1 root holding wav/ and the trial lists)" ;;
  cnceleb1) [ -n "$data_root" ] || usage_error "--corpus $corpus needs --data-root (the CN-Celeb1 root holding data/ and eval/)" ;;
  kaldi) if [ "$task" = cls ]; then
           [ -n "$data_root" ] && [ -n "$kaldi_train" ] \
             || usage_error "--corpus kaldi with a cls config needs --data-root (a Kaldi data directory with utt2label) and --kaldi-train DIR"
         else
           [ -n "$data_root" ] && [ -n "$kaldi_trials" ] \
             || usage_error "--corpus $corpus needs --data-root (a Kaldi data directory: wav.scp, utt2spk) and --kaldi-trials FILE"
         fi ;;
  *) usage_error "unknown corpus '$corpus' (expected mini, mini_cls, mini_cm, voxceleb1, cnceleb1, kaldi, asvspoof2019_la, asvspoof2021, in_the_wild, esc50 or speechcommands)" ;;
esac
[ -z "$vox2_root" ] || [ "$corpus" = voxceleb1 ] || usage_error "--vox2-root goes with --corpus voxceleb1"

# Stage 1 writes data/<name>; the later stages read $data (esc50: one fold of it).
name=$corpus
[ "$corpus" != speechcommands ] || name="speechcommands_$sc_task"
prepared="data/$name" data="data/$name"
[ "$corpus" != esc50 ] || [ -z "$fold" ] || data="$prepared/fold$fold"
if [ -z "$exp" ]; then
  exp="exp/$name/$(basename "$config" .yaml)"
  [ -z "$upstream" ] || exp="${exp}_${upstream//[^A-Za-z0-9_.-]/_}"
  [ -z "$overlay" ] || exp="${exp}_$(basename "$overlay" .yaml)"
  [ -z "$fold" ] || exp="$exp/fold$fold"
fi
# One run per experiment directory: $exp/.lock (pid, host) is taken before anything is written
# there, released on exit; another live run's lock stops this one (spkpeft.io.lock).
lock_token=$(SPKPEFT_LOCK_COMMAND="$cmdline" python -m spkpeft.bin.lock acquire "$exp" $$) || exit 1
trap 'python -m spkpeft.bin.lock release "$exp" "$lock_token"' EXIT
export SPKPEFT_EXP_LOCK=$lock_token
mkdir -p "$exp/log"
{ echo "# $(date '+%Y-%m-%dT%H:%M:%S')"; echo "$cmdline"; } >> "$exp/run.cmd"

if in_stages 1; then
  log "Stage 1: data preparation ($corpus from $data_root) -> $prepared"
  run_logged "$exp/log/stage1_prepare.log" \
    local/prepare_corpus.sh --corpus "$corpus" --mini-opts "$mini_opts" --vox1-lists "$vox1_lists" \
      --vox2-root "$vox2_root" --vox2-wav "$vox2_wav" --cnc-per-genre "$cnc_per_genre" \
      --kaldi-trials "$kaldi_trials" --kaldi-train "$kaldi_train" --kaldi-enroll "$kaldi_enroll" \
      --kaldi-dev "$kaldi_dev" --task "$task" --esc50-dev "$esc50_dev" --sc-task "$sc_task" --wav-dir "$wav_dir" \
      --nj "$nj" "$data_root" "$prepared"
fi

if in_stages 2; then
  log "Stage 2: validating $data (task $task)"
  [ "$task" = cm ] || require_file "$data/test/wav.scp"   # cm corpora name their sets (dev, eval, la_eval, ...)
  [ "$task" != sv ] || require_file "$data/trials"
  run_logged "$exp/log/stage2_validate.log" \
    python -m spkpeft.bin.validate_data_dir --task "$task" --nj "$nj" "$data"
  if [ -n "$shards" ]; then
    log "Stage 2: packing $data/train into shards in $shards"
    run_logged "$exp/log/stage2_shards.log" steps/make_shards.sh --nj "$nj" "$data/train" "$shards"
  fi
fi

device=cpu
[ "$ngpu" -eq 0 ] || device=cuda

if in_stages 3; then
  log "Stage 3: training ($config, exp $exp)"
  require_file "$config" "$data/train/wav.scp"
  dev=
  [ "$task" = sv ] || [ ! -f "$data/dev/wav.scp" ] || dev="$data/dev"
  run_logged "$exp/log/stage3_train.log" \
    steps/train.sh --ngpu "$ngpu" --config "$config" --upstream "$upstream" \
      --overlay "$overlay" --init-from "$init_from" --dev "$dev" --shards "$shards" "$data/train" "$exp"
fi

if in_stages 4; then
  log "Stage 4: inference (sv: embeddings, cls: class posteriors, cm: bona fide scores)"
  require_file "$exp/config.yaml" "$exp/train_done.json"
  eval_dirs=()
  for d in "$data"/*/; do
    d=${d%/}
    [ "$task" = sv ] || [ "$(basename "$d")" != train ] || continue  # sv needs train embeddings (norms)
    [ -f "$d/wav.scp" ] && eval_dirs+=("$d")
  done
  run_logged "$exp/log/stage4_extract.log" \
    python -m spkpeft.bin.extract --exp "$exp" --data "${eval_dirs[@]}" --device "$device"
fi

if in_stages 5 && [ "$task" != sv ]; then
  # cls: accuracy and macro-F1 of every labelled evaluation set, per-class table and confusion
  # matrix; cm: EER, min t-DCF (with the corpus's ASV scores) and per-attack EER.
  log "Stage 5: $task results"
  label_dirs=()
  for d in "$data"/*/; do
    d=${d%/}
    [ "$(basename "$d")" = train ] || [ ! -f "$d/utt2label" ] || label_dirs+=("$d")
  done
  run_logged "$exp/log/stage5_evaluate.log" \
    python -m spkpeft.bin.evaluate --exp "$exp" --data "${label_dirs[@]}" --info "$exp/train_done.json" \
      --results "$exp/results.json"
fi

if in_stages 5 && [ "$task" = sv ]; then
  # Calibration (held-out training speakers -> $exp/calibration/), then raw cosine scores, plus
  # S-norm and AS-norm (top-N cohort) when training embeddings exist: train is used for the mean
  # and the cohort only; enroll and test are evaluation embeddings.
  require_file "$data/trials" "$exp/embeddings/test/xvector.scp"
  [[ "$calibrate" == true || "$calibrate" == false ]] || usage_error "--calibrate takes true or false"
  if $calibrate && [ -f "$exp/embeddings/train/xvector.scp" ]; then
    log "Stage 5: score calibration on held-out training speakers -> $exp/calibration.json"
    run_logged "$exp/log/stage5_calibrate.log" \
      python -m spkpeft.bin.calibrate --exp "$exp" --data "$data/train" --top-n "$asnorm_top_n" --skip-without-held-out
  fi
  log "Stage 5: cosine scoring and score normalisation"
  eval_scps=() train_opts=() enroll_opt=() info_opt=() cal_files=() spk_files=()
  for scp in "$exp"/embeddings/*/xvector.scp; do
    case "$scp" in
      */train/xvector.scp)
        train_opts=(--mean "$scp")
        [ ! -f "$data/train/utt2spk" ] \
          || train_opts+=(--cohort "$scp" --cohort-utt2spk "$data/train/utt2spk" --top-n "$asnorm_top_n") ;;
      *) eval_scps+=("$scp")
         set_dir="$data/$(basename "$(dirname "$scp")")"
         [ ! -f "$set_dir/utt2spk" ] || spk_files+=("$set_dir/utt2spk") ;;
    esac
  done
  for norm in none snorm asnorm; do
    [ ! -f "$exp/calibration/$norm.json" ] || cal_files+=("$exp/calibration/$norm.json")
  done
  [ "${#cal_files[@]}" -gt 0 ] || [ ! -f "$exp/calibration.json" ] || cal_files=("$exp/calibration.json")
  [ "${#cal_files[@]}" -eq 0 ] || cal_files=(--calibration "${cal_files[@]}")
  [ "${#spk_files[@]}" -eq 0 ] || spk_files=(--utt2spk "${spk_files[@]}")
  [ ! -f "$data/enroll/spk2utt" ] || enroll_opt=(--enroll "$data/enroll/spk2utt")
  [ ! -f "$exp/train_done.json" ] || info_opt=(--info "$exp/train_done.json")
  run_logged "$exp/log/stage5_score.log" \
    python -m spkpeft.bin.score --embeddings "${eval_scps[@]}" --trials "$data"/trials/* \
      "${train_opts[@]}" "${enroll_opt[@]}" "${info_opt[@]}" "${cal_files[@]}" "${spk_files[@]}" \
      --bootstrap "$bootstrap" --score-dir "$exp/scores" --results "$exp/results.json"
fi

if in_stages 6; then
  # The results table on stdout; sv: DET and score-distribution plots, cls: per-class
  # tables and confusion matrices, cm: per-attack DET and score histograms, in $exp/plots/.
  log "Stage 6: report and plots"
  require_file "$exp/results.json"
  trials_opt=()
  [ ! -d "$data/trials" ] || trials_opt=(--trials-dir "$data/trials")
  python -m spkpeft.bin.report "$exp/results.json" "${trials_opt[@]}" --corpus-dir "$data" --plot-dir "$exp/plots" \
    | tee "$exp/log/stage6_report.log"
fi

log "Done: stages $stage-$stop_stage ($exp)"
