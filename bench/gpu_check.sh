#!/usr/bin/env bash
# GPU check: one script, under 5 minutes on one GPU (a total time budget, --budget).
#   1. bf16 training steps of lora, adapter_parallel_sv and full_ft on random:wavlm_base_plus
#      (bench/peft_cost.py --device cuda --flops: step time, memory, inference, FLOPs per step);
#   2. torchrun DDP (nccl) of spkpeft.bin.train --ddp on every visible GPU, 1 epoch of a tiny
#      synthetic corpus in bf16: --ddp makes the NCCL process group and DistributedDataParallel
#      even when there is one GPU, so a CPU tensor in a collective fails here as on 8 GPUs;
#   3. the same with fp16 (GradScaler) on one GPU, a 1-rank NCCL group;
#   4. BEST-RQ pre-training (spkpeft.bin.pretrain --device cuda) of random:tiny_wavlm, a few steps;
#   5. GPU extraction (spkpeft.bin.extract --device cuda) with the bf16 experiment;
#   6. the report (bench/gpu_check.py): the peft_cost_cuda section of --doc, with the model FLOP
#      utilisation of the training step (counted FLOPs / step time / the GPU's dense bf16 peak),
#      peak memory per method, and the DDP, fp16, pre-training and extraction runs.
# Without CUDA it stops at once with an error.  --device cpu --dry-run true runs every part on the
# CPU with tiny settings (random:tiny_wavlm, 2 gloo processes, 1 step) and writes its report to
# OUT/benchmarks.md, never to docs/: tests/test_large_corpus.py runs it so that the script cannot rot.
# Usage: bench/gpu_check.sh [--device cuda|cpu] [--dry-run true|false] [--budget SECONDS] [--out DIR]
#                           [--doc FILE] [--peak-tflops T] [--configs "lora adapter_parallel_sv full_ft"]
set -euo pipefail
cd "$(dirname "$0")/.."
device=cuda
dry_run=false
budget=280
out=
doc=docs/benchmarks.md
peak_tflops=
configs="lora adapter_parallel_sv full_ft"
usage="Usage: $0 [--device cuda|cpu] [--dry-run true|false] [--budget S] [--out DIR] [--doc FILE] [--peak-tflops T] [--configs L]
  --device D        cuda (default) or cpu (only with --dry-run true)
  --dry-run B       true: tiny settings on the CPU, report to OUT/benchmarks.md (default $dry_run)
  --budget S        total time budget in seconds (default $budget); each part gets what is left
  --out DIR         where logs, results and the experiment go (default: a new temporary directory)
  --doc FILE        Markdown file whose peft_cost_cuda section is written (default $doc)
  --peak-tflops T   the GPU's dense bf16 peak for the utilisation (default: looked up by GPU name)
  --configs L       configs of the step timing, space-separated (default \"$configs\")"
. steps/parse_options.sh
. steps/common.sh
case "$device/$dry_run" in
  cuda/false|cuda/true|cpu/true) ;;
  cpu/false) usage_error "--device cpu is only a dry run: add --dry-run true" ;;
  *) usage_error "--device takes cuda or cpu, --dry-run true or false" ;;
esac
[[ "$budget" =~ ^[0-9]+$ ]] || usage_error "--budget takes whole seconds"
[ -n "$out" ] || out=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")
mkdir -p "$out"
out=$(realpath "$out")

if [ "$device" = cuda ]; then
  nproc=$(python -c 'import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)')
  [ "$nproc" -gt 0 ] || { log "ERROR: no CUDA device (torch.cuda.is_available() is False); on a machine" \
    "without a GPU run '$0 --device cpu --dry-run true' to exercise the script"; exit 1; }
  backend=nccl upstream=random:wavlm_base_plus config=conf/sv/lora.yaml
  cost_opts=() amp=bf16 batch=32 crop=2.0 pretrain_steps=30
else
  nproc=2 backend=gloo upstream=random:tiny_wavlm config=conf/sv/mini.yaml
  cost_opts=(--batch 2 --seconds 1 --steps 1 --warmup 0 --infer-runs 1 --infer-seconds 1)
  amp=none batch=8 crop=0.5 pretrain_steps=2
  export OMP_NUM_THREADS=1
fi
$dry_run && doc="$out/benchmarks.md"
[ -z "$peak_tflops" ] || cost_opts+=(--peak-tflops "$peak_tflops")
log "device $device ($nproc process(es), $backend), upstream $upstream, budget ${budget}s, output in $out"

# within_budget LOG CMD...: run CMD, its output in LOG, with the time left of --budget (killed when
# that runs out); on failure the end of LOG goes to stderr and the script stops with CMD's status.
within_budget() {
  local logfile=$1 left=$((budget - SECONDS)) rc=0
  shift
  # a budget spent before CMD starts is the same time-out as one spent while it runs (bash's SECONDS
  # counts whole seconds of the clock: with a tiny budget either can happen first)
  [ "$left" -gt 0 ] || { log "ERROR: '$1' ran out of the ${budget}s budget (spent before it started)"; exit 124; }
  timeout --kill-after 10 "$left" "$@" > "$logfile" 2>&1 || rc=$?
  [ "$rc" -eq 0 ] && return 0
  tail -n 20 "$logfile" >&2
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then log "ERROR: '$1' ran out of the ${budget}s budget"
  else log "ERROR: '$*' failed (exit $rc; log $logfile)"; fi
  exit "$rc"
}
now() { date +%s.%N; }

read -ra config_list <<< "$configs"
log "1/6: bf16 training steps and FLOPs (bench/peft_cost.py --device $device --flops)"
within_budget "$out/peft_cost.log" python bench/peft_cost.py --device "$device" --upstreams "$upstream" \
  --configs "${config_list[@]}" --flops "${cost_opts[@]}" --results "$out/cost.jsonl" --doc ''

log "2/6: a tiny corpus, then torchrun DDP ($nproc x $backend) of spkpeft.bin.train --ddp for 1 epoch ($amp)"
within_budget "$out/corpus.log" local/make_mini_corpus.sh \
  --mini-opts "--n-train-spk 16 --n-test-spk 4 --n-sessions 2 --n-utts 4 --min-dur 1 --max-dur 2" "$out/raw"
within_budget "$out/prepare.log" local/prepare_voxceleb1.sh "$out/raw" "$out/data"
cat > "$out/overlay.yaml" <<EOF
train: {epochs: 1, warmup_epochs: 0.0, amp: $amp, save_every_steps: 1000}
data: {crop_seconds: $crop, batch_size: $batch, num_workers: 1}
task: {val_speakers: 4, val_max_seconds: 2.0}
extract: {checkpoint: last}
EOF
start=$(now)
within_budget "$out/ddp.log" torchrun --standalone --nproc_per_node "$nproc" -m spkpeft.bin.train --config "$config" \
  --overlay "$out/overlay.yaml" --upstream "$upstream" --data "$out/data/train" --exp "$out/exp" --device "$device" --ddp
echo "{\"nproc\": $nproc, \"backend\": \"$backend\", \"amp\": \"$amp\", \"wall_s\": $(awk "BEGIN {print $(now) - $start}")}" \
  > "$out/ddp.json"

log "3/6: fp16 (GradScaler) training on one $device process, a 1-rank $backend group (--ddp)"
sed "s/amp: $amp/amp: fp16/" "$out/overlay.yaml" > "$out/overlay_fp16.yaml"
start=$(now)
within_budget "$out/fp16.log" torchrun --standalone --nproc_per_node 1 -m spkpeft.bin.train --config "$config" \
  --overlay "$out/overlay_fp16.yaml" --upstream "$upstream" --data "$out/data/train" --exp "$out/exp_fp16" \
  --device "$device" --ddp
echo "{\"nproc\": 1, \"backend\": \"$backend\", \"amp\": \"fp16\", \"wall_s\": $(awk "BEGIN {print $(now) - $start}")}" \
  > "$out/fp16.json"

log "4/6: BEST-RQ pre-training on $device ($pretrain_steps steps of random:tiny_wavlm)"
start=$(now)
within_budget "$out/pretrain.log" python -m spkpeft.bin.pretrain --data "$out/data/train" --out "$out/pretrain" \
  --device "$device" --steps "$pretrain_steps" --batch-size 4 --crop-seconds 1.0 --warmup-steps 1 --stats-utts 8 \
  --save-every "$pretrain_steps"
echo "{\"device\": \"$device\", \"steps\": $pretrain_steps, \"wall_s\": $(awk "BEGIN {print $(now) - $start}")}" \
  > "$out/pretrain.json"

log "5/6: extraction on $device"
start=$(now)
within_budget "$out/extract.log" python -m spkpeft.bin.extract --exp "$out/exp" --data "$out/data/test" \
  --device "$device"
echo "{\"device\": \"$device\", \"wall_s\": $(awk "BEGIN {print $(now) - $start}")}" > "$out/extract.json"

log "6/6: report -> the peft_cost_cuda section of $doc"
report_opts=()
$dry_run && report_opts+=(--dry-run)
[ -z "$peak_tflops" ] || report_opts+=(--peak-tflops "$peak_tflops")
within_budget "$out/report.md" python bench/gpu_check.py --out "$out" --doc "$doc" "${report_opts[@]}"
log "done in ${SECONDS}s (budget ${budget}s): $doc, logs in $out"
