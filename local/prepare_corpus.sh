#!/usr/bin/env bash
# Stage 1: corpus root -> Kaldi data directories in OUT (data/<corpus>).
# Skips itself when OUT was prepared with the same options; redoes the work
# when they change (another root, another mini corpus size, ...).
#   mini       ROOT = where the synthetic corpus is written (local/make_mini_corpus.sh, then the VoxCeleb1 script)
#   voxceleb1  ROOT = VoxCeleb1 root (local/prepare_voxceleb1.sh); with --vox2-root the training set is
#              VoxCeleb2 dev instead (local/prepare_voxceleb2.sh: m4a -> 16 kHz wav in --vox2-wav, needs ffmpeg)
#   cnceleb1   ROOT = CN-Celeb1 root holding data/ and eval/ (local/prepare_cnceleb1.sh)
#   kaldi      ROOT = your Kaldi data directory to test on, with --kaldi-trials (local/prepare_kaldi_dir.sh)
#   mini_cls   ROOT = where the synthetic classification corpus is written (local/make_mini_cls_corpus.sh), then
#              its labelled Kaldi directories go through local/prepare_kaldi_dir.sh --task cls
#   mini_cm    ROOT = where the synthetic countermeasure corpus is written, in the ASVspoof 2019 LA layout
#              (local/make_mini_cm_corpus.sh), then local/prepare_asvspoof2019_la.sh
#   asvspoof2019_la, asvspoof2021, in_the_wild   ROOT = the release (local/prepare_<corpus>.sh)
#   esc50      ROOT = the ESC-50 release: 44.1 kHz -> 16 kHz wavs in --wav-dir, OUT/fold{1..5}/{train,dev,test}
#              (local/prepare_esc50.sh)
#   speechcommands  ROOT = the Speech Commands v2 release: OUT/{train,dev,test}, --sc-task 35|12
#              (local/prepare_speechcommands.sh; _silence_ clips and background noise in --wav-dir)
# Usage: local/prepare_corpus.sh --corpus NAME [options] ROOT OUT
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=
mini_opts=
vox1_lists=
vox2_root=
vox2_wav=
cnc_per_genre=false
kaldi_trials=
kaldi_train=
kaldi_enroll=
kaldi_dev=
task=sv
esc50_dev=previous
sc_task=35
wav_dir=
nj=1
usage="Usage: $0 --corpus mini|mini_cls|mini_cm|voxceleb1|cnceleb1|kaldi|asvspoof2019_la|asvspoof2021|in_the_wild|esc50|speechcommands [options] ROOT OUT
  --mini-opts STR       mini, mini_cls: options for local/make_mini_corpus.py / local/make_mini_cls_corpus.py
  --vox1-lists L        voxceleb1: trial lists in use (default: every official list present)
  --vox2-root DIR       voxceleb1: train on VoxCeleb2 dev (DIR/dev/aac/<spk>/<session>/<utt>.m4a)
  --vox2-wav DIR        voxceleb1: where the converted VoxCeleb2 wavs go (default data/raw/voxceleb2_wav)
  --cnc-per-genre BOOL  cnceleb1: also write trials/cnc_eval_<genre> (default $cnc_per_genre)
  --kaldi-trials FILE   kaldi: trials for ROOT (Kaldi 'utt1 utt2 target|nontarget' or VoxCeleb '1|0 utt1 utt2')
  --kaldi-train DIR     kaldi: Kaldi data directory to train on
  --kaldi-enroll DIR    kaldi: Kaldi data directory whose speakers are enrollment ids
  --kaldi-dev DIR       kaldi, --task cls: Kaldi data directory (with utt2label) to validate on
  --task sv|cls         kaldi: a trials corpus (sv, default) or labelled directories (cls)
  --esc50-dev WHICH     esc50: previous (dev = the fold before the test fold) | none (default $esc50_dev)
  --sc-task 35|12       speechcommands: the 35 words or the 12-class task (default $sc_task)
  --wav-dir DIR         esc50: the 16 kHz wavs (default data/raw/esc50_16k); speechcommands: the
                        _silence_ clips and background/noise/ (default data/raw/speechcommands)
  --nj N                parallel jobs (VoxCeleb2 and ESC-50 conversion; default $nj)"
allow_positional=true
. steps/parse_options.sh
. steps/common.sh
[ $# -eq 2 ] || usage_error "expected ROOT and OUT"
root=$1 out=$2
case "$corpus" in
  mini|mini_cls|mini_cm|voxceleb1|cnceleb1|kaldi|asvspoof2019_la|asvspoof2021|in_the_wild|esc50|speechcommands) ;;
  *) usage_error "unknown corpus '$corpus' (expected mini, mini_cls, mini_cm, voxceleb1, cnceleb1, kaldi, asvspoof2019_la, asvspoof2021, in_the_wild, esc50 or speechcommands)" ;;
esac
[ -z "$vox2_root" ] || [ "$corpus" = voxceleb1 ] || usage_error "--vox2-root goes with --corpus voxceleb1"
[ "$corpus" != kaldi ] || [ "$task" = cls ] || [ -n "$kaldi_trials" ] || usage_error "--corpus kaldi needs --kaldi-trials FILE"
: "${vox2_wav:=data/raw/voxceleb2_wav}"
case "$corpus" in
  esc50) : "${wav_dir:=data/raw/esc50_16k}" ;;
  speechcommands) : "${wav_dir:=data/raw/speechcommands}" ;;
esac

abs_or_empty() { [ -z "$1" ] || realpath -m "$1"; }
options="corpus=$corpus root=$(realpath -m "$root") mini_opts=$mini_opts vox1_lists=$vox1_lists"
[ -z "$vox2_root" ] || options+=" vox2_root=$(realpath -m "$vox2_root") vox2_wav=$(realpath -m "$vox2_wav")"
[ "$corpus" != cnceleb1 ] || options+=" cnc_per_genre=$cnc_per_genre"
[ "$corpus" != esc50 ] || options+=" esc50_dev=$esc50_dev wav_dir=$(realpath -m "$wav_dir")"
[ "$corpus" != speechcommands ] || options+=" sc_task=$sc_task wav_dir=$(realpath -m "$wav_dir")"
[ "$corpus" != kaldi ] || options+=" task=$task kaldi_trials=$(abs_or_empty "$kaldi_trials") kaldi_train=$(abs_or_empty "$kaldi_train") kaldi_enroll=$(abs_or_empty "$kaldi_enroll") kaldi_dev=$(abs_or_empty "$kaldi_dev")"
stamp="$out/.stage1_options"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$options" ] \
   && { compgen -G "$out/*/wav.scp" || compgen -G "$out/fold*/*/wav.scp"; } > /dev/null; then
  log "$out is up to date with the options ($options); skipping"
  exit 0
fi

case "$corpus" in
  mini)
    local/make_mini_corpus.sh --mini-opts "$mini_opts" "$root"
    local/prepare_voxceleb1.sh "$root" "$out" ;;
  mini_cm)
    local/make_mini_cm_corpus.sh --mini-opts "$mini_opts" "$root"
    local/prepare_asvspoof2019_la.sh "$root" "$out" ;;
  asvspoof2019_la|asvspoof2021|in_the_wild)
    "local/prepare_$corpus.sh" "$root" "$out" ;;
  esc50)
    local/prepare_esc50.sh --nj "$nj" --dev-fold "$esc50_dev" "$root" "$wav_dir" "$out" ;;
  speechcommands)
    local/prepare_speechcommands.sh --task "$sc_task" "$root" "$wav_dir" "$out" ;;
  mini_cls)
    local/make_mini_cls_corpus.sh --mini-opts "$mini_opts" "$root"
    local/prepare_kaldi_dir.sh --task cls --train-dir "$root/train" --dev-dir "$root/dev" "$root/test" "$out" ;;
  voxceleb1)
    local/prepare_voxceleb1.sh --lists "$vox1_lists" "$root" "$out"
    # VoxCeleb2 dev replaces the VoxCeleb1 training set (if any); the Vox1 trials stay.
    [ -z "$vox2_root" ] || local/prepare_voxceleb2.sh --nj "$nj" "$vox2_root" "$vox2_wav" "$out" ;;
  cnceleb1)
    local/prepare_cnceleb1.sh --per-genre "$cnc_per_genre" "$root" "$out" ;;
  kaldi)
    if [ "$task" = cls ]; then
      local/prepare_kaldi_dir.sh --task cls --train-dir "$kaldi_train" --dev-dir "$kaldi_dev" "$root" "$out"
    else
      local/prepare_kaldi_dir.sh --train-dir "$kaldi_train" --enroll-dir "$kaldi_enroll" "$root" "$kaldi_trials" "$out"
    fi ;;
esac
echo "$options" > "$stamp.tmp" && mv "$stamp.tmp" "$stamp"
log "prepared $out"
