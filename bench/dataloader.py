"""Data-pipeline throughput: training crops per second of one DataLoader worker process, and
how many workers keep a GPU fed.

Run by hand (not part of the tests)::

    .venv/bin/python bench/dataloader.py [--utts 24] [--crops 96] [--crop-seconds 3]
        [--min-seconds 4] [--max-seconds 12] [--flops-seconds 3] [--mfu 0.4]
        [--gpu-steps FILE.jsonl] [--doc docs/benchmarks.md] [--section dataloader]

**Crops per second.**  A synthetic corpus of ``--utts`` utterances (durations uniform in
``[--min-seconds, --max-seconds]``, VoxCeleb2's mean is about 7.8 s; speech-band coloured
noise, 16-bit, written as WAV and as FLAC), a MUSAN-like directory (``noise/``, ``music/``,
``speech/``, 30 s files) and simulated RIRs (0.3-0.8 s) are made in a temporary directory.
Each pipeline is :class:`spkpeft.data.crops.CropDataset` exactly as the trainer uses it, run
in the measuring process itself (one process = what one DataLoader worker does, one torch /
BLAS thread as the trainer sets for its workers): ``--crops`` items ``(index, crop_seed)``
cycling through the corpus, crops/s = items / process CPU seconds (robust on a shared
machine; the wall clock is printed too).  Pipelines: ``plain`` (read, crop), ``musan``
(``prob: 1``), ``rir`` (``prob: 1``, reverberation only), ``speed`` (speed perturbation,
two thirds of the items resampled), ``rawboost`` (algorithm 5, as ``conf/cm/ssl_aasist.yaml``);
and ``shards``: the same ``plain`` crops read by :class:`spkpeft.data.shards.ShardedCrops`
from tar shards (``--audio copy``) instead of one file per utterance.

**Workers needed.**  Without a GPU the GPU's training step rate is estimated from the
model's FLOPs: the training step FLOPs per crop ``F`` of ``random:wavlm_base_plus`` (the
published WavLM Base+ architecture) with the config's aggregation and ECAPA head are
*counted* by ``torch.utils.flop_counter.FlopCounterMode`` over one forward + backward of
a batch of two ``--flops-seconds`` crops, halved (matrix products and convolutions; 2 FLOPs
per MAC), for ``full_ft``, ``lora`` and ``frozen``.  They agree with the rule of thumb ``F ~ 3 F_fwd``
for full fine-tuning (forward, gradients of activations, gradients of weights), ``F ~ 2
F_fwd`` for LoRA / adapters (no weight gradients of the frozen upstream, but the
activations' gradients flow through it) and ``F ~ F_fwd`` of the upstream plus ``3 F_fwd``
of the head for ``frozen`` (no gradient enters the upstream); the table gives ``F / F_fwd``.
At a model FLOP utilisation ``--mfu`` (default 40 %) of an H100 SXM's dense bf16 peak
``P = 989 TFLOP/s``, the GPU consumes ``R = mfu P / F`` crops per second, and
``workers = ceil(R / r)`` for a worker rate ``r``.  ``--gpu-steps FILE.jsonl`` (rows of
``bench/peft_cost.py --device cuda --results``: ``config``, ``settings.batch``,
``step_s.wall``) replaces the estimate by measured step rates ``R = B / step time``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from anywhere

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

from bench.peft_cost import machine_lines, update_section  # noqa: E402

SR = 16000
H100_BF16_DENSE = 989e12  # FLOP/s, H100 SXM5 dense bf16 (no sparsity)
PIPELINES = ("plain", "musan", "rir", "speed", "rawboost", "shards")
FLOPS_CONFIGS = ("full_ft", "lora", "frozen")


# ----------------------------------------------------------------------------- synthetic data


def speechlike(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """Coloured noise with a syllable-rate envelope (compresses in FLAC roughly as speech does)."""
    from scipy.signal import lfilter

    n = int(seconds * SR)
    x = lfilter([1.0], [1.0, -0.95], rng.standard_normal(n))
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 4.0 * np.arange(n) / SR + rng.uniform(0, 6.3))
    x = x * envelope
    return (0.3 * x / np.max(np.abs(x))).astype(np.float32)


def make_corpus(root: Path, utts: int, low: float, high: float) -> dict[str, list[tuple[str, str, int]]]:
    """WAV and FLAC copies of the corpus, MUSAN-like and RIR directories; the items per format."""
    from spkpeft.data.synth import make_rir

    rng = np.random.default_rng(0)
    items: dict[str, list[tuple[str, str, int]]] = {"wav": [], "flac": []}
    for i in range(utts):
        x = speechlike(rng, rng.uniform(low, high))
        for fmt in items:
            path = root / fmt / f"u{i:04d}.{fmt}"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(path), x, SR, subtype="PCM_16")
            items[fmt].append((f"u{i:04d}", str(path), i % 8))
    for sub in ("noise", "music", "speech"):
        for j in range(4):
            path = root / "musan" / sub / f"{sub}{j}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(path), speechlike(rng, 30.0), SR, subtype="PCM_16")
    for j in range(8):
        path = root / "rir" / f"rir{j}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), make_rir(rng, rng.uniform(0.3, 0.8), rng.uniform(-3, 6)).astype(np.float32), SR)
    return items


def augment_config(name: str, root: Path):
    from spkpeft.data.augment import AugmentConfig

    return {
        "plain": AugmentConfig(), "shards": AugmentConfig(),
        "musan": AugmentConfig(musan_dir=str(root / "musan"), prob=1.0),
        "rir": AugmentConfig(rir_dir=str(root / "rir"), prob=1.0),
        "speed": AugmentConfig(speed_perturb=True),
        "rawboost": AugmentConfig(rawboost=5),
    }[name]


# ----------------------------------------------------------------------------- crops per second


def dataset_for(pipeline: str, items, crop_seconds: float, root: Path):
    """The dataset of a pipeline (``shards``: the items packed into a shard directory first)."""
    from spkpeft.data.crops import CropDataset

    crops = CropDataset(items, 8, crop_seconds, augment_config(pipeline, root))
    if pipeline != "shards":
        return crops
    from spkpeft.data.shards import ShardedCrops
    from spkpeft.io.datadir import read_data_dir, write_data_dir
    from spkpeft.io.shards import pack_data_dir

    data_dir = root / f"datadir_{Path(items[0][1]).suffix[1:]}"
    write_data_dir(data_dir, {u: p for u, p, _ in items}, {u: f"s{label}" for u, _, label in items})
    shard_set = pack_data_dir(read_data_dir(data_dir), root / f"shards_{data_dir.name}", utts_per_shard=8)
    return ShardedCrops(shard_set, items, crops, batch_size=8, seed=0, buffer_size=16)


def crops_of(dataset, count: int) -> int:
    """Make ``count`` crops (a sharded dataset: whole epochs until ``count``); returns the number made."""
    made = 0
    if hasattr(dataset, "iter_items"):
        epoch = 0
        while made < count:
            dataset.set_epoch(epoch)
            for _ in dataset:
                made += 1
            epoch += 1
        return made
    for k in range(count):
        dataset[(k % len(dataset), k)]
        made += 1
    return made


def measure(pipeline: str, items, args, root: Path, profile: bool = False) -> dict:
    """Crops per CPU second (and per wall second) of one process running ``pipeline``."""
    dataset = dataset_for(pipeline, items, args.crop_seconds, root)
    crops_of(dataset, min(8, args.crops))  # warm-up: directory scans, headers, caches
    profiler = cProfile.Profile() if profile else None
    wall, cpu = time.perf_counter(), time.process_time()
    if profiler:
        profiler.enable()
    made = crops_of(dataset, args.crops)
    if profiler:
        profiler.disable()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    result = {"pipeline": pipeline, "crops": made, "cpu_s": cpu, "wall_s": wall,
              "crops_per_cpu_s": made / cpu, "crops_per_wall_s": made / wall}
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(18)
        text = out.getvalue().replace(str(REPO) + "/", "")
        result["profile"] = text.replace(str(Path(np.__file__).parents[1]) + "/", "")
    return result


# ----------------------------------------------------------------------------- FLOPs


def step_flops(config: str, seconds: float) -> dict:
    """Counted FLOPs of one training crop: forward, and forward + backward (module docstring)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from bench.peft_cost import build_trainee, config_path
    from spkpeft.tasks.config import load_config

    torch.manual_seed(0)
    cfg = load_config(config_path(config), {"upstream.name": "random:wavlm_base_plus"})
    trainee, _ = build_trainee(cfg, 1211, torch.device("cpu"))
    trainee.train()
    wav = torch.randn(2, int(seconds * SR))  # two crops: batch norm needs more than one in training
    lens = torch.tensor([wav.shape[1]] * 2)
    labels = torch.tensor([0, 1])
    with FlopCounterMode(display=False) as forward:
        with torch.no_grad():
            trainee(wav, lens, labels)
    with FlopCounterMode(display=False) as step:
        loss, _ = trainee(wav, lens, labels)
        loss.backward()
    return {"config": config, "seconds": seconds, "forward": forward.get_total_flops() / 2,
            "step": step.get_total_flops() / 2}


def gpu_rates(path: Path) -> dict[str, float]:
    """Measured crops/s per config from ``bench/peft_cost.py --device cuda --results`` rows."""
    rates = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        rates[Path(row["config"]).stem] = row["settings"]["batch"] / row["step_s"]["wall"]
    return rates


# ----------------------------------------------------------------------------- report


def render(rows: list[dict], flops: list[dict], args, measured_gpu: dict[str, float], profile: str,
           before: list[dict] | None) -> str:
    """The Markdown section."""
    lines = ["## Data pipeline", "",
             f"`bench/dataloader.py` (see its docstring): one process (= one DataLoader worker, one thread) "
             f"making {args.crop_seconds:g} s training crops from {args.utts} utterances of "
             f"{args.min_seconds:g}-{args.max_seconds:g} s; crops per second of process CPU time "
             f"(wall-clock rate in brackets; the machine is shared).", "",
             "| pipeline | WAV input crops/s | FLAC input crops/s |", "|---|---:|---:|"]
    by = {(r["pipeline"], r["format"]): r for r in rows}
    for pipeline in PIPELINES:
        cells = []
        for fmt in ("wav", "flac"):
            r = by.get((pipeline, fmt))
            cells.append(f"{r['crops_per_cpu_s']:.0f} ({r['crops_per_wall_s']:.0f})" if r else "n/a")
        lines.append(f"| `{pipeline}` | {cells[0]} | {cells[1]} |")
    for pipeline in dict.fromkeys(r["pipeline"] for r in before or []):
        old = {r["format"]: r for r in before if r["pipeline"] == pipeline}
        cells = [f"{old[f]['crops_per_cpu_s']:.0f} ({old[f]['crops_per_wall_s']:.0f})" if f in old else "n/a"
                 for f in ("wav", "flac")]
        lines.append(f"| `{pipeline}` before the speed-ups | {cells[0]} | {cells[1]} |")
    lines += ["", f"**Workers to feed one GPU** (model `random:wavlm_base_plus` = WavLM Base+, "
              f"{args.flops_seconds:g} s crops). FLOPs counted by `torch.utils.flop_counter` "
              f"(2 per MAC, matrix products and convolutions) for one crop; GPU rate "
              f"`R = {args.mfu:.0%} x 989 TFLOP/s / F` (H100 SXM dense bf16 peak at "
              f"{args.mfu:.0%} utilisation)" + (", or measured (`--gpu-steps`)" if measured_gpu else "")
              + "; workers = ceil(R / r) with r the WAV rate of the pipeline.", "",
              "| config | forward GFLOP | step GFLOP (F) | F / forward | GPU crops/s (R) | "
              + " | ".join(f"workers `{p}`" for p in PIPELINES) + " |",
              "|---|---:|---:|---:|---:|" + "---:|" * len(PIPELINES)]
    for f in flops:
        rate = measured_gpu.get(f["config"], args.mfu * H100_BF16_DENSE / f["step"])
        workers = [math.ceil(rate / by[(p, "wav")]["crops_per_cpu_s"]) for p in PIPELINES]
        lines.append(f"| `{f['config']}` | {f['forward'] / 1e9:.1f} | {f['step'] / 1e9:.1f} | "
                     f"{f['step'] / f['forward']:.2f} | {rate:.0f} | " + " | ".join(map(str, workers)) + " |")
    lines += ["", "Profile of the slowest pipeline (cumulative CPU time, top entries):", "", "```",
              profile.strip(), "```", "", "Machine:", ""] + machine_lines("cpu", []) + [""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--utts", type=int, default=24)
    parser.add_argument("--crops", type=int, default=96)
    parser.add_argument("--crop-seconds", type=float, default=3.0)
    parser.add_argument("--min-seconds", type=float, default=4.0)
    parser.add_argument("--max-seconds", type=float, default=12.0)
    parser.add_argument("--flops-seconds", type=float, default=3.0)
    parser.add_argument("--mfu", type=float, default=0.4)
    parser.add_argument("--gpu-steps", type=Path, default=None)
    parser.add_argument("--pipelines", nargs="+", default=list(PIPELINES), choices=PIPELINES)
    parser.add_argument("--before", type=Path, default=None,
                        help="--results rows (JSON lines) measured before a speed-up: extra table rows")
    parser.add_argument("--results", type=Path, default=None, help="write every measured row here (JSON lines)")
    parser.add_argument("--doc", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--section", default="dataloader")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        items = make_corpus(root, args.utts, args.min_seconds, args.max_seconds)
        for pipeline in args.pipelines:
            for fmt in ("wav", "flac"):
                row = {**measure(pipeline, items[fmt], args, root), "format": fmt}
                rows.append(row)
                print(f"{pipeline:9s} {fmt:4s} {row['crops_per_cpu_s']:8.1f} crops/CPU-s "
                      f"({row['crops_per_wall_s']:.1f}/wall-s)", file=sys.stderr)
        slowest = min((r for r in rows if r["format"] == "wav"), key=lambda r: r["crops_per_cpu_s"])
        profile = measure(slowest["pipeline"], items["wav"], args, root, profile=True)["profile"]
    print(profile, file=sys.stderr)
    if args.results:
        args.results.write_text("".join(json.dumps(r) + "\n" for r in rows))
    if set(args.pipelines) != set(PIPELINES):
        return 0  # a partial run (e.g. before / after one change) does not rewrite the section
    flops = [step_flops(c, args.flops_seconds) for c in FLOPS_CONFIGS]
    for f in flops:
        print(f"{f['config']}: forward {f['forward'] / 1e9:.1f} GFLOP, step {f['step'] / 1e9:.1f} GFLOP",
              file=sys.stderr)
    before = [json.loads(line) for line in args.before.read_text().splitlines()] if args.before else None
    measured = gpu_rates(args.gpu_steps) if args.gpu_steps else {}
    section = render(rows, flops, args, measured, profile, before)
    update_section(args.doc, args.section, section)
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
