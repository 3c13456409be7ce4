"""What each PEFT method costs: trainable parameters, training step time, peak memory, inference time.

Run by hand (not part of the tests)::

    .venv/bin/python bench/peft_cost.py [--device cpu|cuda] [--upstreams NAME[@cfg,cfg] ...]
        [--configs lora full_ft ...] [--batch B] [--seconds S] [--steps N] [--warmup W]
        [--infer-seconds S] [--infer-runs N] [--threads T] [--clock cpu|wall]
        [--results FILE.jsonl] [--from-results FILE.jsonl] [--doc docs/benchmarks.md]

For every config (``conf/<name>.yaml``, all method variants by default) on every upstream
(default ``random:wavlm_base_plus``; ``random:wav2vec2_large@full_ft,lora`` limits a large
upstream to some configs), a fresh subprocess (``--one CONFIG``: peak memory is per process)
builds the model exactly as the trainer does (:func:`spkpeft.nn.model.build_model`, the
config's aggregation and ECAPA head, :func:`spkpeft.nn.losses.build_loss`,
:func:`spkpeft.engine.trainer.build_optimizer`) and measures

* **trainable parameters**: method + aggregation + head (the loss classes are not counted,
  as in ``results.json``), and their share of all parameters;
* **training step time**: forward + backward + gradient clipping + AdamW step on a batch of
  ``B`` random ``S``-second crops, median of ``N`` steps after ``W`` warm-up steps (CPU:
  process CPU time with one thread by default, robust on a shared machine; CUDA: wall clock);
* **peak training memory**: the rise of the peak over the memory held once the model,
  loss and optimizer are built (so weights are excluded; gradients, AdamW states and
  stored activations are included), and the absolute peak (less the bare upstream kept
  for the inference timing, which is loaded first).  CUDA: ``max_memory_allocated``
  after ``reset_peak_memory_stats``.  CPU: the process's resident set size, its high-water
  mark reset through ``/proc/self/clear_refs`` after ``malloc_trim``, with glibc told
  (``mallopt``, from the process start) to return every allocation of 128 KiB or more to
  the system when freed, so that the resident set follows the live tensors.  Memory is
  taken over the first two steps (the AdamW states appear in the first), timing afterwards
  with glibc's usual large thresholds (no page fault per tensor);
* **inference time per second of audio** of ``upstream(wav)`` (every hidden state, batch 1,
  ``torch.inference_mode``, eval mode): the bare upstream (``build_upstream`` alone), the
  upstream with the method (unmerged) and, for LoRA / Spectral-LoRA, merged
  (:meth:`SpeakerEncoder.merge`); the three are timed in turn, round after round, and
  each reports its median.

On CUDA the forward passes run under bf16 autocast and every timing is bracketed by
``torch.cuda.synchronize()``.  The parent prints one Markdown table per upstream, with the
ratios to ``full_ft`` (step time, memory) and to the bare upstream (inference), and writes
it into its own section of ``--doc`` (other sections are kept).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from anywhere

CONF_DIR = REPO / "conf"
NOT_METHODS = ("base", "mini")  # conf/*.yaml that are no method variant
DEFAULT_DOC = REPO / "docs" / "benchmarks.md"
DEFAULT_UPSTREAM = "random:wavlm_base_plus"
MEMORY_STEPS = 2  # training steps measured for memory (they also warm up)
MMAP_THRESHOLD_MEMORY = 128 * 1024  # glibc: allocations from this size are unmapped when freed
MMAP_THRESHOLD_SPEED = 32 * 1024 * 1024  # glibc's own largest dynamic threshold (64-bit)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)
SAMPLE_RATE = 16000
#: dense bf16 tensor-core peaks (TFLOP/s) of GPUs by name fragment, from NVIDIA's data sheets (the
#: "with sparsity" figures halved); the first fragment found in ``torch.cuda.get_device_name()`` wins
PEAK_BF16_TFLOPS = (("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H200 NVL", 835.0), ("H100", 989.4),
                    ("H200", 989.4), ("GH200", 989.4), ("B200", 2250.0), ("A100", 312.0), ("L40S", 362.0),
                    ("L40", 181.0), ("L4", 121.0), ("A10", 125.0), ("A6000", 154.8))
CPU_DEFAULTS = {"batch": 2, "steps": 3, "warmup": 1, "infer_runs": 9, "threads": 1}
CUDA_DEFAULTS = {"batch": 32, "steps": 10, "warmup": 3, "infer_runs": 20, "threads": None}
#: options handed to the child process and recorded with every result
SETTINGS = ("batch", "seconds", "steps", "warmup", "infer_seconds", "infer_runs", "num_classes", "threads")


# ----------------------------------------------------------------------------- configs


def default_configs() -> list[str]:
    """Names of every method variant in ``conf/`` (``conf/<name>.yaml``)."""
    return sorted(p.stem for p in CONF_DIR.glob("*.yaml") if p.stem not in NOT_METHODS)


def config_path(name: str) -> Path:
    """``conf/<name>.yaml`` for a bare name, else the path as given."""
    path = Path(name)
    return path if path.suffix in (".yaml", ".yml") else CONF_DIR / f"{name}.yaml"


def parse_upstream(spec: str) -> tuple[str, list[str] | None]:
    """``NAME`` or ``NAME@cfg1,cfg2`` -> (upstream name, configs or None for all)."""
    name, _, subset = spec.partition("@")
    return name, ([c for c in subset.split(",") if c] if subset else None)


# ----------------------------------------------------------------------------- machine


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (or platform.processor())."""
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def load_line(results: list[dict]) -> str:
    """The 1-minute load average seen at the end of the measurements (or now)."""
    loads = [r["loadavg_1min"] for r in results if r.get("loadavg_1min") is not None]
    if loads:
        return f"1-minute load average at the end of each measurement: {min(loads):.1f} to {max(loads):.1f}"
    now = ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return f"load average when rendered (1, 5, 15 min): {now}"


def machine_lines(device: str, results: list[dict]) -> list[str]:
    """Markdown bullet lines describing the machine, its load and the software."""
    import torch

    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpu = torch.cuda.get_device_name(0) if device == "cuda" and torch.cuda.is_available() else "none used"
    return [
        f"- CPU: {cpu_model()}, {threads} usable cores (os.cpu_count() = {os.cpu_count()})",
        f"- GPU: {gpu}",
        f"- python {platform.python_version()}, torch {torch.__version__}",
        f"- {load_line(results)}",
    ]


# ----------------------------------------------------------------------------- measuring


def sync(device) -> None:
    """Wait for queued CUDA work (no-op on the CPU)."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device) -> dict[str, float]:
    """``{"wall": s, "cpu": s}``: wall-clock and process CPU seconds of ``fn()``, synchronised on CUDA."""
    sync(device)
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    sync(device)
    return {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}


def medians(times: list[dict[str, float]], skip: int) -> dict[str, float]:
    """Median wall and CPU seconds of ``times[skip:]``."""
    return {clock: statistics.median(t[clock] for t in times[skip:]) for clock in ("wall", "cpu")}


def _proc_status_mb(field: str) -> float:
    """A ``kB`` field of /proc/self/status (``VmRSS``, ``VmHWM``) in MiB."""
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise OSError(f"no {field} in /proc/self/status")


def set_malloc_thresholds(mmap_bytes: int, trim_bytes: int) -> None:
    """glibc ``mallopt``: serve allocations of ``mmap_bytes`` or more by ``mmap`` (returned to
    the system when freed) and trim the heap top above ``trim_bytes`` (no-op elsewhere).

    Small thresholds make the resident set follow the live tensors (memory phase) at the cost
    of page faults; large ones keep freed memory for reuse, as glibc's defaults do after
    warm-up (timing phase)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(M_MMAP_THRESHOLD, mmap_bytes)
        libc.mallopt(M_TRIM_THRESHOLD, trim_bytes)


class MemoryMeter:
    """Peak memory from :meth:`start` on: CUDA allocator statistics, or the CPU resident set."""

    def __init__(self, device) -> None:
        self.device = device
        self.baseline = 0.0

    def current_mb(self) -> float:
        """Memory in use now (CUDA: allocated by torch; CPU: resident set)."""
        import torch

        if self.device.type == "cuda":
            return torch.cuda.memory_allocated(self.device) / 2**20
        return _proc_status_mb("VmRSS")

    def start(self) -> None:
        """Forget earlier peaks; the baseline is the memory in use now."""
        import torch

        if self.device.type == "cuda":
            sync(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            with contextlib.suppress(OSError, AttributeError):
                ctypes.CDLL("libc.so.6").malloc_trim(0)
            with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
                handle.write("5")  # reset VmHWM to the current VmRSS (Linux >= 4.0)
        self.baseline = self.current_mb()

    def peak_mb(self) -> float:
        """Highest memory in use since :meth:`start`."""
        import torch

        if self.device.type == "cuda":
            sync(self.device)
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        return _proc_status_mb("VmHWM")


def autocast(device):
    """bf16 autocast on CUDA, nothing on the CPU."""
    import torch

    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def task_classes(cfg, num_classes: int) -> int:
    """Classes of the config's task: its fixed classes when it has some (countermeasures: bona
    fide and spoof), else ``num_classes``."""
    from spkpeft.tasks.base import get_task

    fixed = get_task(cfg).fixed_classes
    return len(fixed) if fixed else num_classes


def build_trainee(cfg, num_classes: int, device):
    """(Trainee, AdamW) as :class:`spkpeft.engine.trainer.Trainer` builds them: the model and
    loss of the config's task (``sv``: embeddings + margin softmax over ``num_classes``
    speakers; ``cm``: the 2-class layer + its loss)."""
    from spkpeft.engine.trainer import Trainee, build_optimizer
    from spkpeft.tasks.base import TrainingData, get_task

    task = get_task(cfg)
    n = task_classes(cfg, num_classes)
    data = TrainingData(items=[], class_names=[str(c) for c in range(n)], num_classes=n, class_counts=[1] * n)
    model = task.build_model(cfg, data)
    loss = task.build_loss(cfg, model, data)
    if hasattr(loss, "set_epoch"):
        loss.set_epoch(1e9)  # full margin, as after the warm-up
    trainee = Trainee(model, loss).to(device)
    return trainee, build_optimizer(trainee, cfg.train)


def load_bare(cfg, device):
    """The config's upstream without the method (``build_upstream`` alone, any family), in eval mode.

    Loaded before the model, so that both get their memory from the allocator in the same
    state (loaded after the training steps, its weights land elsewhere and its forward ran
    a few percent slower than the same weights in the model)."""
    from spkpeft.upstream import build_upstream

    return build_upstream(cfg.upstream).to(device).eval()


def size_mb(module) -> float:
    """Bytes of the parameters and buffers of ``module``, in MiB."""
    tensors = list(module.parameters()) + list(module.buffers())
    return sum(t.numel() * t.element_size() for t in tensors) / 2**20


def train_step(trainee, optimizer, batch, grad_clip: float, device) -> None:
    """Forward, backward, gradient clipping and optimizer step, as the trainer does them."""
    import torch

    wavs, lens, labels = batch
    with autocast(device):
        loss, _ = trainee(wavs, lens, labels)
    loss.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def random_batch(batch: int, seconds: float, num_classes: int, device):
    """``batch`` random crops of ``seconds``, their lengths and random speaker labels."""
    import torch

    gen = torch.Generator().manual_seed(0)
    samples = int(seconds * SAMPLE_RATE)
    wavs = 0.1 * torch.randn(batch, samples, generator=gen)
    labels = torch.randint(0, num_classes, (batch,), generator=gen)
    lens = torch.full((batch,), samples, dtype=torch.long)
    return wavs.to(device), lens.to(device), labels.to(device)


def measure_training(trainee, optimizer, cfg, args, device) -> dict:
    """Peak memory over the first :data:`MEMORY_STEPS` steps (rise over the built model, and
    absolute), then the median time of ``args.steps`` steps after ``args.warmup`` more."""
    batch = random_batch(args.batch, args.seconds, task_classes(cfg, args.num_classes), device)
    step = lambda: train_step(trainee, optimizer, batch, cfg.train.grad_clip, device)  # noqa: E731
    trainee.train()
    meter = MemoryMeter(device)
    meter.start()
    for _ in range(MEMORY_STEPS):  # the AdamW states appear at the first step, the peak at the second
        step()
    peak = meter.peak_mb()
    set_malloc_thresholds(MMAP_THRESHOLD_SPEED, 2 * MMAP_THRESHOLD_SPEED)
    times = [timed(step, device) for _ in range(args.warmup + args.steps)]
    return {
        "step_s": medians(times, args.warmup),
        "step_times_wall_s": [t["wall"] for t in times],
        "peak_mb": peak - meter.baseline,
        "peak_abs_mb": peak,
        "baseline_mb": meter.baseline,
    }


def count_step_flops(trainee, optimizer, cfg, args, device) -> int:
    """FLOPs of one training step (forward + backward) counted by ``torch.utils.flop_counter``:
    matrix products, convolutions and attention (2 FLOPs per multiply-add); element-wise work
    and the optimizer are not counted, as in the usual model-FLOP utilisation."""
    from torch.utils.flop_counter import FlopCounterMode

    batch = random_batch(args.batch, args.seconds, task_classes(cfg, args.num_classes), device)
    with FlopCounterMode(display=False) as counter:
        train_step(trainee, optimizer, batch, cfg.train.grad_clip, device)
    return int(counter.get_total_flops())


def peak_tflops(gpu_name: str) -> float | None:
    """Dense bf16 peak of a GPU (:data:`PEAK_BF16_TFLOPS`), None when its name is not in the table."""
    return next((peak for fragment, peak in PEAK_BF16_TFLOPS if fragment in gpu_name), None)


def upstream_variants(bare, model, device) -> dict[str, Callable[[], object]]:
    """``{"bare", "unmerged"[, "merged"]}`` -> a function readying that upstream for a timed
    forward and returning it.  ``merged`` and ``unmerged`` are the model's own upstream, put
    in that state by ``model.merge()`` / ``model.unmerge()`` before each run (a deep copy
    could not be made of every upstream, and would double its memory)."""
    from spkpeft.peft import is_mergeable

    upstream = model.upstream.to(device).eval()

    def state(merged: bool):
        (model.merge if merged else model.unmerge)()
        return upstream

    variants = {"bare": lambda: bare, "unmerged": lambda: state(False)}
    if is_mergeable(model.upstream):
        variants["merged"] = lambda: state(True)
    return variants


def measure_inference(bare, model, args, device) -> dict:
    """Median seconds of compute per second of audio for each :func:`upstream_variants`."""
    import torch

    variants = upstream_variants(bare, model, device)
    samples = int(args.infer_seconds * SAMPLE_RATE)
    wav = (0.1 * torch.randn(1, samples, generator=torch.Generator().manual_seed(1))).to(device)
    lens = torch.tensor([samples], device=device)
    times: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    names = list(variants)
    with torch.inference_mode(), autocast(device):
        for run in range(args.warmup + args.infer_runs):  # round-robin: the load hits all alike,
            for name in names[run % len(names):] + names[:run % len(names)]:  # each first in turn
                module = variants[name]()
                times[name].append(timed(lambda: module(wav, lens), device))
    model.unmerge()
    result = {}
    for name in ("bare", "unmerged", "merged"):
        per_run = medians(times[name], args.warmup) if name in times else None
        result[f"infer_{name}"] = per_run and {k: v / args.infer_seconds for k, v in per_run.items()}
    return result


def measure_one(args) -> dict:
    """Every number of one config on one upstream (run in its own process)."""
    import torch

    from spkpeft.tasks.config import load_config

    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    # from the start: building the models then leaves no large free holes in the heap, which
    # the training steps would fill (raising the resident set) instead of mapping fresh memory
    set_malloc_thresholds(MMAP_THRESHOLD_MEMORY, MMAP_THRESHOLD_MEMORY)
    cfg = load_config(config_path(args.one), {"upstream.name": args.upstream})
    bare = load_bare(cfg, device)
    trainee, optimizer = build_trainee(cfg, args.num_classes, device)
    counts = trainee.model.param_counts()
    trainable = counts["peft"] + counts["aggregation"] + counts["head"]
    result = {
        "config": Path(args.one).stem,
        "task": cfg.task.type,
        "classes": task_classes(cfg, args.num_classes),
        "upstream": args.upstream,
        "device": args.device,
        "trainable": trainable,
        "trainable_pct": 100.0 * trainable / counts["total"],
        "trainable_upstream": counts["peft"],
        "total_params": counts["total"],
        "settings": {key: getattr(args, key) for key in SETTINGS},
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
    }
    result.update(measure_training(trainee, optimizer, cfg, args, device))
    if args.flops:
        result["step_flops"] = count_step_flops(trainee, optimizer, cfg, args, device)
    result["peak_abs_mb"] -= size_mb(bare)  # the bare copy is only there for the inference timing
    del optimizer
    for p in trainee.parameters():
        p.grad = None
    result.update(measure_inference(bare, trainee.model, args, device))
    result["loadavg_1min"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return result


# ----------------------------------------------------------------------------- driving


def child_command(args, config: str, upstream: str) -> list[str]:
    """The ``--one`` command line measuring ``config`` on ``upstream``."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one", config, "--upstream", upstream]
    for key in ("device",) + SETTINGS:
        if getattr(args, key) is not None:
            cmd += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
    return cmd + (["--flops"] if args.flops else [])


def run_child(args, config: str, upstream: str) -> dict:
    """Measure one config in a fresh process; its last stdout line is the JSON result."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(child_command(args, config, upstream), env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{config} on {upstream} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def read_results(path: str | None) -> list[dict]:
    """The rows of a JSON-lines results file (none when it does not exist)."""
    if not path or not Path(path).is_file():
        return []
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def collect(args) -> list[dict]:
    """Run every (upstream, config) pair, appending each result to ``--results`` as it comes;
    pairs already there with the same device and settings are kept, not measured again."""
    settings = {key: getattr(args, key) for key in SETTINGS}
    done = {(r["upstream"], r["config"]): r for r in read_results(args.results)
            if r["device"] == args.device and r["settings"] == settings
            and (not args.flops or "step_flops" in r)}
    results = []
    for spec in args.upstreams:
        upstream, subset = parse_upstream(spec)
        for config in subset or args.configs:
            row = done.get((upstream, Path(config).stem))
            if row is None:
                start = time.time()
                row = run_child(args, config, upstream)
                print(f"{upstream} {config}: {time.time() - start:.0f} s", file=sys.stderr, flush=True)
                if args.results:
                    with open(args.results, "a", encoding="utf-8") as handle:
                        handle.write(json.dumps(row) + "\n")
            results.append(row)
    return results


# ----------------------------------------------------------------------------- reporting


def _num(value: float | None, fmt: str) -> str:
    """``value`` formatted, or ``n/a``."""
    return "n/a" if value is None else format(value, fmt)


def _ratio(value: float | None, ref: float | None) -> str:
    """``value / ref`` to two decimals, or ``n/a``."""
    return "n/a" if value is None or not ref else f"{value / ref:.2f}"


def table_row(row: dict, ref: dict | None, clock: str) -> str:
    """One Markdown row; ratios against the reference row ``ref`` and the bare upstream."""
    step = row["step_s"][clock]
    ref_step = ref["step_s"][clock] if ref else None
    ref_mem = ref["peak_mb"] if ref else None
    infer = {k: row[f"infer_{k}"] and row[f"infer_{k}"][clock] for k in ("bare", "unmerged", "merged")}
    cells = [
        f"`{row['config']}`",
        f"{row['trainable'] / 1e6:.2f} M",
        f"{row['trainable_pct']:.2f}",
        f"{step:.2f}",
        _ratio(step, ref_step),
        f"{row['peak_mb']:.0f}",
        _ratio(row["peak_mb"], ref_mem),
        f"{row['peak_abs_mb']:.0f}",
        f"{infer['bare']:.4f}",
        f"{infer['unmerged']:.4f}",
        _num(infer["merged"], ".4f"),
        _ratio(infer["unmerged"], infer["bare"]),
        _ratio(infer["merged"], infer["bare"]),
    ]
    return "| " + " | ".join(cells) + " |"


def header(ref: str) -> str:
    """The table header, ratios against the config ``ref``."""
    return (f"| config | trainable params | trainable % | step time (s) | step vs {ref} | peak mem (MB) "
            f"| mem vs {ref} | peak abs (MB) | infer s/s bare | infer unmerged | infer merged "
            "| unmerged vs bare | merged vs bare |\n"
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")


def reference_row(rows: list[dict]) -> dict:
    """The row the ratios refer to: full fine-tuning (``full_ft``, ``ast_full_ft``) when
    measured, else the upstream's first row."""
    return next((r for r in rows if r["config"] in ("full_ft", "ast_full_ft")), rows[0])


def upstream_table(rows: list[dict], clock: str) -> str:
    """The Markdown table of one upstream's rows."""
    ref = reference_row(rows)
    return "\n".join([header(ref["config"])] + [table_row(r, ref, clock) for r in rows])


def settings_lines(settings: dict, device: str, clock: str, classes: int | None = None) -> list[str]:
    """The bullet list explaining the columns, with the settings the rows were measured with."""
    amp = "bf16 autocast" if device == "cuda" else "fp32"
    mem = ("CUDA `max_memory_allocated`" if device == "cuda"
           else "resident set size (`VmHWM`, reset through `/proc/self/clear_refs`)")
    when = ("wall-clock seconds between `torch.cuda.synchronize()` calls" if clock == "wall" else
            "CPU seconds of the measuring process (`time.process_time`: on a shared machine the wall "
            "clock mostly measures the other jobs)")
    threads = settings.get("threads") or "torch default"
    back_end = f"the config's head (part of the cost) and its loss over {classes or settings['num_classes']} classes"
    return [
        f"- Each config runs in its own process on a random-weight upstream (same architecture, hence "
        f"same cost, as the published checkpoint), with the config's aggregation and {back_end} "
        f"and AdamW as in training; {amp}; torch intra-op threads: {threads}; times are {when}.",
        f"- **step time**: forward + backward + grad clipping + AdamW on a batch of B = {settings['batch']} "
        f"random {settings['seconds']:g} s crops, median of N = {settings['steps']} steps after the "
        f"{MEMORY_STEPS} memory steps and {settings['warmup']} warm-up step(s).",
        f"- **peak mem**: rise of the peak {mem} during the first {MEMORY_STEPS} steps over the memory held "
        f"once model, loss "
        f"and optimizer are built (weights excluded; gradients, AdamW states, stored activations included); "
        f"**peak abs**: the absolute peak of the process (less the bare upstream kept for the inference "
        f"timing).",
        f"- **infer**: seconds of compute per second of audio for the upstream forward (all hidden states, "
        f"batch 1, {settings['infer_seconds']:g} s of audio, `inference_mode`, eval mode), median of "
        f"{settings['infer_runs']} runs after {settings['warmup']} warm-up; bare upstream (`build_upstream` "
        f"alone), method unmerged, and merged (`model.merge()`, LoRA and Spectral-LoRA only; n/a for the "
        f"others) timed in turn, round after round. The bare upstream is the config's own "
        f"(a config with `upstream.num_layers` keeps its first blocks only: `attentive_merge` 8 for sv, 12 for cm).",
        "- **trainable params**: method + aggregation + head (not the loss's class weights), and their "
        "share of all parameters. Ratios: to `full_ft` of the same upstream (else to the table's first "
        "row, named in the header), and to the bare upstream.",
    ]


def check_lines(rows: list[dict], clock: str) -> list[str]:
    """What the table says about the claims: merged LoRA costs nothing at inference, and
    every method trains with less memory than full fine-tuning."""
    by_name = {r["config"]: r for r in rows}
    ratio = lambda r, k: r[f"infer_{k}"][clock] / r["infer_bare"][clock]  # noqa: E731
    lines = []
    merged = [f"`{r['config']}` {ratio(r, 'merged'):.2f}" for r in rows if r["infer_merged"]]
    if merged:
        noise = f"; `frozen` (unmerged = bare, an A/A comparison) gives {ratio(by_name['frozen'], 'unmerged'):.2f}" \
            if "frozen" in by_name else ""
        lines.append(f"- merged vs bare inference: {', '.join(merged)}{noise}.")
    full = reference_row(rows)
    others = [r for r in rows if r is not full]
    if others:
        worst = max(others, key=lambda r: r["peak_mb"])
        lines.append(f"- training memory vs `{full['config']}` ({full['peak_mb']:.0f} MB): at most "
                     f"{worst['peak_mb'] / full['peak_mb']:.2f} (`{worst['config']}`, {worst['peak_mb']:.0f} MB).")
    fewer = [f"`{r['config']}` {full['trainable_upstream'] / r['trainable_upstream']:.0f}x"
             for r in others if r.get("trainable_upstream") and full.get("trainable_upstream")]
    if fewer:
        lines.append(f"- trainable upstream parameters, `{full['config']}` "
                     f"({full['trainable_upstream'] / 1e6:.2f} M) over each: {', '.join(fewer)}.")
    return ["Checks:", "", *lines, ""] if lines else []


def flops_lines(rows: list[dict], clock: str, peak: float | None = None) -> list[str]:
    """Model FLOP utilisation of the training step: counted FLOPs / step time / the GPU's peak
    (``peak``, else :func:`peak_tflops` of the GPU's name); nothing when no FLOPs were counted."""
    rows = [r for r in rows if r.get("step_flops")]
    if not rows:
        return []
    lines = ["Model FLOP utilisation of the training step (FLOPs of forward + backward counted by "
             "`torch.utils.flop_counter`: matrix products, convolutions, attention; the GPU's dense bf16 peak "
             "from `PEAK_BF16_TFLOPS` in `bench/peft_cost.py`, NVIDIA data sheets):", "",
             "| config | GFLOP / step | step time (s) | achieved TFLOP/s | peak TFLOP/s | MFU % |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        achieved = r["step_flops"] / r["step_s"][clock] / 1e12
        top = peak or (peak_tflops(r["gpu"]) if r.get("gpu") else None)
        lines.append(f"| `{r['config']}` | {r['step_flops'] / 1e9:.1f} | {r['step_s'][clock]:.3f} | {achieved:.2f} "
                     f"| {_num(top, '.1f')} | {_num(top and 100 * achieved / top, '.1f')} |")
    return lines + [""]


def task_title(task: str | None) -> str:
    """`` of the <task description> configs`` for the results of a task other than the default one."""
    from spkpeft.tasks.base import TASKS, TaskConfig
    from spkpeft.tasks import registered  # noqa: F401  (every task registered)

    if task is None or task == TaskConfig().type:
        return ""
    return f" of the {TASKS.get(task).description} configs"


def render(results: list[dict], clock: str | None = None, peak: float | None = None) -> str:
    """The whole Markdown section: settings, one table per upstream, machine."""
    device = results[0]["device"]
    clock = clock or ("wall" if device == "cuda" else "cpu")
    title = "PEFT cost" + task_title(results[0].get("task"))
    lines = [f"## {title} ({'GPU' if device == 'cuda' else 'CPU'})", "",
             f"`bench/peft_cost.py --device {device}` (see its docstring).", ""]
    lines += settings_lines(results[0]["settings"], device, clock, results[0].get("classes")) + [""]
    for upstream in dict.fromkeys(r["upstream"] for r in results):
        rows = [r for r in results if r["upstream"] == upstream]
        lines += [f"### `{upstream}`", "", upstream_table(rows, clock), ""] + check_lines(rows, clock)
        lines += flops_lines(rows, clock, peak)
    lines += ["Machine:", ""] + machine_lines(device, results) + [""]
    if device == "cpu":
        lines += [f"No GPU was used for these numbers. On a machine with one, `bench/peft_cost.py --device cuda` "
                  f"measures the same columns with bf16 autocast, wall-clock times between "
                  f"`torch.cuda.synchronize()` calls, `torch.cuda.max_memory_allocated` and, by default, "
                  f"B = {CUDA_DEFAULTS['batch']}, N = {CUDA_DEFAULTS['steps']} after {CUDA_DEFAULTS['warmup']} "
                  f"warm-up steps; it writes its own section (`peft_cost_cuda`) of this file.", ""]
    return "\n".join(lines)


def update_section(path: Path, name: str, text: str) -> None:
    """Put ``text`` between ``<!-- BEGIN name -->`` and ``<!-- END name -->`` in ``path``
    (appending the section when absent, creating the file when needed); other text is kept."""
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    block = f"{begin}\n{text.strip()}\n{end}\n"
    old = path.read_text(encoding="utf-8") if path.is_file() else "# Benchmarks\n"
    if begin in old and end in old:
        head, rest = old.split(begin, 1)
        new = head + block + rest.split(end, 1)[1].lstrip("\n")
    else:
        new = old.rstrip("\n") + "\n\n" + block
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(new, encoding="utf-8")
    os.replace(tmp, path)


# ----------------------------------------------------------------------------- command line


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; per-device defaults for batch, steps, warm-up and inference runs."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--upstreams", nargs="+", default=[DEFAULT_UPSTREAM],
                        help="upstream names; NAME@cfg1,cfg2 runs only those configs on NAME")
    parser.add_argument("--configs", nargs="+", default=None, help="conf/<name>.yaml names or paths (default: all)")
    parser.add_argument("--batch", type=int, default=None, help=f"crops per step (CPU {CPU_DEFAULTS['batch']}, CUDA {CUDA_DEFAULTS['batch']})")
    parser.add_argument("--seconds", type=float, default=3.0, help="crop length")
    parser.add_argument("--steps", type=int, default=None, help="timed training steps")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps / inference runs first")
    parser.add_argument("--infer-seconds", type=float, default=6.0, help="waveform length for inference")
    parser.add_argument("--infer-runs", type=int, default=None, help="timed inference runs per variant")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (CPU default 1: robust on a shared machine; CUDA: torch default)")
    parser.add_argument("--clock", choices=("cpu", "wall"), default=None,
                        help="times in the table: process CPU time (CPU default) or wall clock (CUDA default)")
    parser.add_argument("--num-classes", type=int, default=1211, help="speakers of the loss (VoxCeleb1 dev: 1211)")
    parser.add_argument("--results", default=None, help="append every result as a JSON line to this file; rows already there are reused")
    parser.add_argument("--from-results", default=None, help="only render the tables of this JSON-lines file")
    parser.add_argument("--doc", default=str(DEFAULT_DOC), help="Markdown file to update ('' : print only)")
    parser.add_argument("--section", default=None,
                        help="section of --doc to write (default peft_cost_<device>; e.g. peft_cost_cm_cpu)")
    parser.add_argument("--flops", action="store_true",
                        help="also count the FLOPs of a training step: achieved TFLOP/s and model FLOP utilisation")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="the GPU's dense bf16 peak for the utilisation (default: looked up by GPU name)")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # child mode: one config
    parser.add_argument("--upstream", default=DEFAULT_UPSTREAM, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    defaults = CUDA_DEFAULTS if args.device == "cuda" else CPU_DEFAULTS
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.configs = args.configs or default_configs()
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.one:
        print(json.dumps(measure_one(args)), flush=True)
        return
    if args.from_results:
        results = read_results(args.from_results)
    else:
        results = collect(args)
    if not results:
        raise SystemExit("no results")
    text = render(results, args.clock, args.peak_tflops)
    print(text)
    if args.doc:
        update_section(Path(args.doc), args.section or f"peft_cost_{results[0]['device']}", text)


if __name__ == "__main__":
    main()
