#!/usr/bin/env bash
# VoxCeleb1 speaker verification: train on the dev speakers (or, with --vox2-root, on VoxCeleb2
# dev, its m4a decoded to 16 kHz wav by PyAV), score the official trial lists (Vox1-O, and -E, -H
# when their lists are present), original and cleaned.  ../../run.sh --corpus voxceleb1 runs it too.
#   egs/voxceleb1/run.sh --data-root /data/VoxCeleb1 [--config conf/sv/lora.yaml] [--ngpu 4]
#   egs/voxceleb1/run.sh --data-root /data/VoxCeleb1 --vox2-root /data/VoxCeleb2 --nj 32
set -euo pipefail
corpus=voxceleb1
default_config=conf/sv/adapter_parallel_sv.yaml
vox1_lists=      # VoxCeleb1 trial lists in use, e.g. vox1_o,vox1_o_clean (default: every official list present)
vox2_root=       # train on VoxCeleb2 dev (DIR/dev/aac/<spk>/<session>/<utt>.m4a)
vox2_wav=        # where the 16 kHz VoxCeleb2 wavs go (default data/raw/voxceleb2_wav)
corpus_paths="vox2_root vox2_wav"
recipe_usage="VoxCeleb1 speaker verification (egs/voxceleb1/README.md)."
corpus_usage="  --vox1-lists L     trial lists in use, e.g. vox1_o,vox1_o_clean (default: every official list
                     present among vox1_{o,e,h}[_clean])
  --vox2-root DIR    train on VoxCeleb2 dev (m4a decoded with PyAV, --nj in parallel)
  --vox2-wav DIR     where the decoded VoxCeleb2 wavs go (default data/raw/voxceleb2_wav)
"
. "$(dirname "$0")/../../steps/recipe.sh"
[ -n "$data_root" ] || usage_error "--corpus $corpus needs --data-root (the VoxCeleb1 root holding wav/ and the trial lists)"
: "${vox2_wav:=data/raw/voxceleb2_wav}"

recipe_start "sv" "$corpus"

prepare() {
  local/prepare_voxceleb1.sh --lists "$vox1_lists" "$data_root" "$prepared"
  # VoxCeleb2 dev replaces the VoxCeleb1 training set (if any); the Vox1 trials stay.
  [ -z "$vox2_root" ] || local/prepare_voxceleb2.sh --nj "$nj" "$vox2_root" "$vox2_wav" "$prepared"
}
run_stage1 "$(stage1_options "${vox2_root:+ vox2_root=$(realpath -m "$vox2_root") vox2_wav=$(realpath -m "$vox2_wav")}")" prepare
run_pipeline
