"""The task-agnostic training loop (stage 3): the task's model and loss on the task's data.

The task (:class:`spkpeft.tasks.base.Task`) provides the training items and labels, the
model and the loss, the validation metrics and which of them picks ``best.pt``; this module
imports none of them.

Checkpoints (``$exp/checkpoints/``), each written atomically:

- ``last.pt``: everything needed to resume exactly -- trainable parameters
  (method + aggregation + head + loss classes; not the frozen upstream),
  optimizer, scheduler, AMP scaler, RNG states, epoch, batches done in the
  epoch (and their loss and accuracy sums, so a resumed epoch's row of
  ``train_epochs.csv`` covers all its batches), global step; rewritten
  every ``train.save_every_steps`` optimizer steps and at the end of every
  epoch;
- ``epoch_NNN.pt``: trainable parameters after epoch NNN (for averaging);
- ``best.pt``: trainable parameters of the epoch with the best validation
  metric of the task (``sv``: lowest EER on held-out training speakers; ``cls``: highest
  accuracy on the dev set; never the test data);
- ``avg.pt``: mean of the last ``train.average_last`` epoch checkpoints.

Resuming (:meth:`Trainer.resume`) first deletes the ``.<name>.tmp<pid>``
files that a writer killed mid-save left in ``checkpoints/`` (never read as
checkpoints) and the rows of ``train_epochs.csv`` for epochs that ``last.pt``
does not include (written just before a kill), so no epoch is listed twice.

Per epoch a row of ``$exp/train_epochs.csv``: epoch, step, train loss and
accuracy, the task's validation metrics, learning rates, throughput (training
utterances per second) and the epoch's own peak memory of training (CUDA: allocated by torch;
CPU: the resident set's high-water mark, reset through ``/proc/self/clear_refs`` where Linux
allows it), validation excluded.

The hot loop stays off the host (:mod:`spkpeft.engine.step`): batches come from pinned memory
and move without blocking, losses and accuracies are summed on the device, and each optimizer
step reads one number on the host -- whether it may step.  Gradient accumulation runs the first
batches of a step under DDP's ``no_sync``.

Non-finite values: a step whose loss or gradients are not finite on any rank is skipped on every
rank (the check is summed over ranks first): no optimizer or scheduler step, the BatchNorm
statistics of its forward passes undone, its batches left out of the epoch's loss; under fp16
the loss scaler backs off.  After ``train.nonfinite_patience`` such steps in a row the run stops
on every rank, naming the steps; ``last.pt`` is not rewritten during such a streak, so it keeps
the last good step.

Learning rate (per parameter group, ``lr0`` = ``lr_peft`` or ``lr_head``),
with ``w`` warm-up steps out of ``T`` and ``r = final_lr_ratio``:
``lr(t) = lr0 * (t + 1) / w`` for ``t < w``, then with ``p = (t - w) / (T - w)``
cosine: ``lr0 * (r + (1 - r) * (1 + cos(pi p)) / 2)``; exponential: ``lr0 * r ** p``;
constant: ``lr0``.  ``train.lr_step: batch`` (default) counts ``t``, ``w``, ``T`` in optimizer
steps taken (a skipped non-finite step advances no group's schedule); ``epoch`` counts them in
epochs of such steps, so the rate is constant within an epoch, as a
scheduler stepped once per epoch (AttM's ``LinearWarm_ExpDecay``: warm-up over 5 epochs, then
``0.8`` per epoch = ``exponential`` with ``r = 0.8 ** (T - w)``; SpectralFT's ``StepLR``).
The optimizer: :mod:`spkpeft.engine.optim` (``train.optimizer``, plain-SGD groups).

Two-phase schedule (``train.freeze_upstream_epochs: F``, e.g. the attentive-merging
recipe of Pan et al. 2024: back-end first, then fine-tuning): during the first ``F`` epochs
the upstream runs without gradients and in eval mode, so only the aggregation and the head
(and the loss classes) learn, and the ``peft`` group's learning rate is 0; from epoch
``F + 1`` its schedule starts, warm-up included, over the remaining steps
(``lr_peft * lr_factor(t - F S, w, T - F S)``, ``S`` steps per epoch;
``train.two_phase_schedule: restart``).  With ``continue`` every group follows one schedule
counted from step 0, so the upstream joins at the rate the schedule has reached, as in the
AttM reference (``main_antispoof.py`` steps both phases' schedulers every epoch: the
upstream's rate starts phase 2 at ``1e-4 * 0.8 ** 5 = 3.3e-5``).
``train.phase2_fresh_optimizer`` clears the optimizer's state (Adam moments) when phase 2
starts, as the reference builds a second optimizer for it.

Checkpoint averaging and early stopping (:mod:`spkpeft.engine.optim`): ``avg.pt`` is the mean
of the last ``train.average_last`` epochs or of the ``train.average_best`` epochs with the best
selection metric; ``train.early_stop_patience`` ends training once the selection metric has
not improved for that many epochs, from epoch ``train.early_stop_from_epoch`` on.
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import math
import random
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from spkpeft.data.crops import CropDataset, batch_sampler, collate_crops
from spkpeft.data.shards import sharded_crops
from spkpeft.engine.checkpoint import average_state_dicts, load_checkpoint, remove_partial_writes, save_atomic
from spkpeft.engine.optim import (OPTIMIZERS, best_epochs, make_optimizer, plain_sgd_modules, read_epoch_metric,
                                  step_decay_factor, stop_early)
from spkpeft.engine.distributed import all_reduce_means, any_rank, cleanup, init_distributed
from spkpeft.engine.step import StepRunner, autocast_context  # noqa: F401  (autocast_context: kept importable here)
from spkpeft.errors import SpkpeftError
from spkpeft.io.atomic import write_json_atomic, write_text_atomic
from spkpeft.io.datadir import read_data_dir
from spkpeft.io.shards import read_shard_set

log = logging.getLogger("spkpeft.engine.trainer")


@dataclass
class TrainConfig:
    """``train:`` section of a config."""

    epochs: int = 10
    lr_peft: float = 5e-4
    lr_head: float = 1e-3
    weight_decay: float = 1e-4
    warmup_epochs: float = 1.0
    scheduler: str = "cosine"
    final_lr_ratio: float = 0.01
    grad_clip: float = 5.0
    grad_accum: int = 1
    amp: str = "none"
    seed: int = 42
    save_every_steps: int = 100
    average_last: int = 0
    deterministic: bool = False
    log_every_steps: int = 10
    init_from: str = ""  # checkpoint whose trainable weights start a new run (large-margin fine-tuning)
    freeze_upstream_epochs: int = 0  # two-phase schedule: epochs of back-end-only training first
    two_phase_schedule: str = "restart"  # restart | continue: the upstream's schedule in phase 2
    phase2_fresh_optimizer: bool = False  # clear the optimizer state when phase 2 starts
    lr_step: str = "batch"  # batch | epoch: the schedule's unit
    optimizer: str = "adamw"  # adamw | adam | sgd (spkpeft.engine.optim)
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    momentum: float = 0.0  # optimizer sgd
    average_best: int = 0  # > 0: avg.pt = mean of the epochs with the best selection metric
    early_stop_patience: int = 0  # > 0: stop after that many epochs without improvement
    early_stop_from_epoch: int = 1  # ... once at least that many epochs are done
    nonfinite_patience: int = 10  # consecutive skipped non-finite steps before the run stops

    def __post_init__(self) -> None:
        validate_train_config(self)


def validate_train_config(cfg: TrainConfig) -> None:
    """Value checks that types cannot express; errors name the key."""
    if cfg.scheduler not in SCHEDULERS:
        raise SpkpeftError(f"train.scheduler must be one of {', '.join(SCHEDULERS)}, got {cfg.scheduler!r}")
    if cfg.amp not in ("none", "bf16", "fp16"):
        raise SpkpeftError(f"train.amp must be 'none', 'bf16' or 'fp16', got {cfg.amp!r}")
    for key in ("epochs", "grad_accum", "nonfinite_patience"):
        if getattr(cfg, key) < 1:
            raise SpkpeftError(f"train.{key} must be >= 1")
    if not 0 <= cfg.final_lr_ratio <= 1 or (cfg.final_lr_ratio == 0 and cfg.scheduler == "exponential"):
        raise SpkpeftError("train.final_lr_ratio must be in [0, 1] ((0, 1] with scheduler exponential)")
    for key, allowed in (("two_phase_schedule", ("restart", "continue")), ("lr_step", ("batch", "epoch")),
                         ("optimizer", OPTIMIZERS)):
        if getattr(cfg, key) not in allowed:
            raise SpkpeftError(f"train.{key} must be one of {', '.join(allowed)}, got {getattr(cfg, key)!r}")
    if len(cfg.betas) != 2 or not all(0 <= b < 1 for b in cfg.betas):
        raise SpkpeftError(f"train.betas must be two numbers in [0, 1), got {cfg.betas}")
    if cfg.eps <= 0 or cfg.momentum < 0:
        raise SpkpeftError("train.eps must be > 0 and train.momentum >= 0")
    if cfg.average_best < 0 or (cfg.average_best and cfg.average_last):
        raise SpkpeftError("train.average_best must be >= 0, and not set together with train.average_last")
    if cfg.early_stop_patience < 0 or cfg.early_stop_from_epoch < 1:
        raise SpkpeftError("train.early_stop_patience must be >= 0 and train.early_stop_from_epoch >= 1")
    if not 0 <= cfg.freeze_upstream_epochs < cfg.epochs:
        raise SpkpeftError(f"train.freeze_upstream_epochs must be in [0, train.epochs = {cfg.epochs}), "
                           f"got {cfg.freeze_upstream_epochs}")


#: ``train.scheduler``
SCHEDULERS = ("cosine", "exponential", "constant")


def lr_factor(step: int, warmup_steps: int, total_steps: int, scheduler: str, final_ratio: float) -> float:
    """Multiplier of the base learning rate at optimizer step ``step`` (see the module docstring);
    0 before step 0 (the ``peft`` group during the frozen phase of a two-phase schedule)."""
    if step < 0:
        return 0.0
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if scheduler == "constant":
        return 1.0
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    if scheduler == "cosine":
        return final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return final_ratio ** progress


class Trainee(nn.Module):
    """Model and loss in one module, so DistributedDataParallel synchronises both."""

    def __init__(self, model: nn.Module, loss: nn.Module):
        super().__init__()
        self.model = model
        self.loss = loss

    def forward(self, wavs: torch.Tensor, wav_lens: torch.Tensor, labels: torch.Tensor):
        return self.loss(self.model(wavs, wav_lens), labels)


def trainable_state(trainee: Trainee) -> dict[str, torch.Tensor]:
    """Trainable tensors on the CPU: ``model.<name>`` (method, aggregation, head) and ``loss.<name>`` (classes)."""
    state = {f"model.{k}": v.cpu() for k, v in trainee.model.trainable_state_dict().items()}
    state.update({f"loss.{k}": v.detach().cpu().clone() for k, v in trainee.loss.state_dict().items()})
    return state


def load_trainable_state(trainee: Trainee, state: dict[str, torch.Tensor], source: str) -> None:
    """Inverse of :func:`trainable_state`; a mismatch is an error naming ``source``."""
    parts: dict[str, dict[str, torch.Tensor]] = {"model": {}, "loss": {}}
    for key, value in state.items():
        part, _, name = key.partition(".")
        if part not in parts:
            raise SpkpeftError(f"{source}: unexpected checkpoint entry '{key}'")
        parts[part][name] = value
    try:
        trainee.model.load_trainable_state_dict(parts["model"])
        trainee.loss.load_state_dict(parts["loss"])
    except (SpkpeftError, RuntimeError) as err:
        raise SpkpeftError(f"{source}: {err}") from None


def build_optimizer(trainee: Trainee, cfg: TrainConfig) -> torch.optim.Optimizer:
    """``train.optimizer`` (AdamW by default) with two groups by module ownership
    (``model.param_groups()``): the method's upstream parameters (``lr_peft``) and the rest,
    loss classes included (``lr_head``); parameters of modules that ask for plain SGD (the
    one-class softmax's centre with ``loss.centre_optimizer: sgd``) form a third group
    (:mod:`spkpeft.engine.optim`)."""
    groups_of = trainee.model.param_groups()
    peft = groups_of["peft"]
    head = groups_of["head"] + [p for p in trainee.loss.parameters() if p.requires_grad]
    plain = [(m.plain_sgd, [p for p in m.parameters() if p.requires_grad]) for m in plain_sgd_modules(trainee)]
    own = {id(p) for _, params in plain for p in params}
    groups = [{"params": [p for p in head if id(p) not in own], "lr": cfg.lr_head, "name": "head"}]
    if peft:
        groups.append({"params": peft, "lr": cfg.lr_peft, "name": "peft"})
    for spec, params in plain:
        groups.append({"params": params, "lr": spec["lr"], "name": "centre", "plain_sgd": True,
                       "step_decay": (spec["decay"], spec["every"])})
    return make_optimizer(groups, cfg)


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def reset_peak_memory(device: torch.device) -> None:
    """Start a new peak for :func:`peak_memory_mb`: CUDA's allocator statistics, or the CPU
    resident set's high-water mark (``VmHWM``, reset to the current ``VmRSS`` by writing 5 to
    ``/proc/self/clear_refs``, Linux >= 4.0; elsewhere the peak stays the process's)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    with contextlib.suppress(OSError):
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory (MiB) since :func:`reset_peak_memory`: allocated by torch on CUDA; the resident
    set's high-water mark on the CPU (``VmHWM``; ``ru_maxrss`` where /proc is missing)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def csv_fields(metrics) -> list[str]:
    """Columns of ``train_epochs.csv`` with the task's validation ``metrics``."""
    return ["epoch", "step", "train_loss", "train_acc", *metrics, "lr_peft", "lr_head",
            "utts_per_s", "peak_memory_mb", "epoch_seconds"]


def append_csv(path: Path, row: dict[str, Any], fields: list[str]) -> None:
    """Add ``row`` to the csv ``path`` (header first when new) by rewriting it through the atomic
    writer: a full disk leaves the previous complete file, never half a row."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields)
    if not path.is_file():
        writer.writeheader()
    writer.writerow({k: row.get(k, "") for k in fields})
    old = ""
    if path.is_file():
        with open(path, newline="", encoding="utf-8") as f:  # csv's \r\n line ends kept as they are
            old = f.read()
    write_text_atomic(path, [(old + out.getvalue()).rstrip("\n")])


def drop_rows_after(path: Path, epochs_done: int) -> int:
    """Rewrite the csv ``path`` (atomically) without its rows of epochs after ``epochs_done``;
    returns how many were dropped."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    keep = rows[:1] + [r for r in rows[1:] if r and (not r[0].isdigit() or int(r[0]) <= epochs_done)]
    if len(keep) < len(rows):
        out = io.StringIO()
        csv.writer(out).writerows(keep)  # the same dialect as append_csv
        write_text_atomic(path, [out.getvalue().rstrip("\n")])
    return len(rows) - len(keep)


class Trainer:
    """One training run of ``task`` in ``exp_dir``; ``run()`` resumes from ``checkpoints/last.pt`` when present.

    ``ddp``: join a process group and wrap the model in DistributedDataParallel even when
    torchrun starts one process (:func:`~spkpeft.engine.distributed.init_distributed`)."""

    def __init__(self, cfg, task, data_dir: str | Path, exp_dir: str | Path, device: str = "cpu",
                 config_name: str = "", dev_dir: str | Path | None = None, ddp: bool = False):
        self.cfg = cfg
        self.task = task
        self.exp = Path(exp_dir)
        self.ckpt_dir = self.exp / "checkpoints"
        self.dist = init_distributed(device.split(":")[0], always=ddp)
        self.device = self.dist.device
        seed_everything(cfg.train.seed + self.dist.rank, cfg.train.deterministic)

        data_dir = read_data_dir(data_dir)
        self.data = task.training_data(cfg, data_dir, cfg.train.seed, dev_dir)
        self.n_classes = self.data.num_classes
        self.dataset, self.sampler = self.training_source(data_dir)
        model = task.build_model(cfg, self.data)
        counts = model.param_counts()
        trainable = counts["peft"] + counts["aggregation"] + counts["head"]
        self.summary = {"task": task.name, "config": config_name, "upstream": cfg.upstream.name,
                        "trainable_params": trainable, "total_params": counts["total"]}
        loss = task.build_loss(cfg, model, self.data)
        self.trainee = Trainee(model, loss).to(self.device)
        self.ddp = None
        if self.dist.enabled:  # the frozen phase leaves the upstream's trainable parameters without gradients
            self.ddp = torch.nn.parallel.DistributedDataParallel(
                self.trainee, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=cfg.train.freeze_upstream_epochs > 0)
        self.optimizer = build_optimizer(self.trainee, cfg.train)
        self.steps_per_epoch = math.ceil(len(self.sampler) / cfg.train.grad_accum)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, [self.lr_lambda(g) for g in self.optimizer.param_groups])
        self.scaler = torch.amp.GradScaler("cuda", enabled=cfg.train.amp == "fp16" and self.device.type == "cuda")
        self.runner = StepRunner(self.ddp or self.trainee, self.trainee, self.optimizer, self.scheduler,
                                 self.scaler, cfg.train, self.dist)
        self.epoch, self.batch_in_epoch, self.step = 0, 0, 0
        self.bad_steps = 0  # consecutive skipped (non-finite) optimizer steps
        self.saved_step: int | None = None  # the step of the last last.pt
        self.peak_mb = 0.0  # the highest epoch peak of this run
        self.best_metric, self.best_epoch = task.worst(), -1
        self.seconds_before = 0.0  # training wall time of earlier (interrupted) runs
        self.run_start = time.time()
        self.csv_fields = csv_fields(task.metrics)

    def training_source(self, data_dir):
        """``(dataset, batches)``: per-file crops with class-balanced batches, or with
        ``data.shards`` the sharded reader, which batches itself (``batches`` is the dataset)."""
        cfg, items = self.cfg, self.data.items
        if cfg.data.shards:
            shards = read_shard_set(cfg.data.shards)
            shards.check_matches(data_dir)
            dataset = sharded_crops(shards, items, len(self.data.class_names), cfg.data.crop_seconds,
                                    cfg.data.augment, self.data.speed_changes_label, batch_size=cfg.data.batch_size,
                                    seed=cfg.train.seed, buffer_size=cfg.data.shuffle_buffer, rank=self.dist.rank,
                                    world_size=self.dist.world_size, num_workers=cfg.data.num_workers)
            return dataset, dataset
        dataset = CropDataset(items, len(self.data.class_names), cfg.data.crop_seconds, cfg.data.augment,
                              speed_changes_label=self.data.speed_changes_label, first=cfg.data.train_crop == "first")
        sampler = batch_sampler(cfg.data, [u[2] for u in items], cfg.train.seed, self.dist.rank, self.dist.world_size)
        return dataset, sampler

    def lr_lambda(self, group: dict | str):
        """The learning-rate multiplier of parameter group ``group`` (an optimizer group or its
        name) by optimizer step (module docstring)."""
        group = {"name": group} if isinstance(group, str) else group
        cfg = self.cfg.train
        per_epoch = self.steps_per_epoch
        if "step_decay" in group:
            decay, every = group["step_decay"]
            return lambda s: step_decay_factor(s // per_epoch, decay, every)
        unit = per_epoch if cfg.lr_step == "epoch" else 1
        total = per_epoch * cfg.epochs // unit
        restart = group["name"] == "peft" and cfg.two_phase_schedule == "restart"
        delay = per_epoch * cfg.freeze_upstream_epochs // unit if restart else 0
        warmup = int(round(cfg.warmup_epochs * per_epoch / unit))
        return lambda s: lr_factor(s // unit - delay, warmup, total - delay, cfg.scheduler, cfg.final_lr_ratio)

    def upstream_frozen(self) -> bool:
        """Whether the current epoch is in the back-end-only phase of a two-phase schedule."""
        return self.epoch < self.cfg.train.freeze_upstream_epochs

    # ---- checkpoints -------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "trainable": trainable_state(self.trainee),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": rng_state(),
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "step": self.step,
            "best_metric": self.best_metric,
            "best_epoch": self.best_epoch,
            "epoch_totals": self.runner.epoch_totals(),
            "n_classes": self.n_classes,
            "train_seconds": self.train_seconds(),
        }

    def train_seconds(self) -> float:
        """Wall time spent training so far, summed over resumed runs."""
        return self.seconds_before + time.time() - self.run_start

    def save_last(self) -> None:
        if self.dist.is_main:
            save_atomic(self.state(), self.ckpt_dir / "last.pt")
        self.saved_step = self.step

    def initialise_from(self, path: str | Path) -> None:
        """Start from another run's trainable weights (loss classes too when the speakers match)."""
        state = load_checkpoint(path).get("trainable")
        if state is None:
            raise SpkpeftError(f"{path}: not a spkpeft training checkpoint (no 'trainable' entry)")
        own = trainable_state(self.trainee)
        if any(k.startswith("loss.") and (k not in state or state[k].shape != v.shape) for k, v in own.items()):
            state = {**state, **{k: v for k, v in own.items() if k.startswith("loss.")}}
            log.info("%s: speaker classes differ; the loss classes start afresh", path)
        load_trainable_state(self.trainee, state, str(path))
        log.info("initialised the trainable weights from %s", path)

    def trim_epochs_csv(self, epochs_done: int) -> None:
        """Drop ``train_epochs.csv`` rows of epochs after ``epochs_done`` (logged before a kill, redone now)."""
        path = self.exp / "train_epochs.csv"
        if self.dist.is_main and path.is_file():
            dropped = drop_rows_after(path, epochs_done)
            if dropped:
                log.info("%s: dropped %d row(s) of epochs after epoch %d (the checkpoint's)", path, dropped,
                         epochs_done)

    def resume(self) -> bool:
        path = self.ckpt_dir / "last.pt"
        if self.dist.is_main:
            for partial in remove_partial_writes(self.ckpt_dir):
                log.info("removed %s, left by a run killed while saving a checkpoint", partial)
        if not path.is_file():
            self.trim_epochs_csv(0)
            if self.cfg.train.init_from:
                self.initialise_from(self.cfg.train.init_from)
            return False
        ckpt = load_checkpoint(path)
        if ckpt.get("n_classes") != self.n_classes:
            raise SpkpeftError(f"{path}: trained for {ckpt.get('n_classes')} classes, the data now has "
                               f"{self.n_classes}; use another --exp")
        self.trim_epochs_csv(ckpt["epoch"])
        load_trainable_state(self.trainee, ckpt["trainable"], str(path))
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        if ckpt["scaler"]:  # a disabled scaler (CPU, fp32, bf16) saved {}: a new run's scale then
            self.scaler.load_state_dict(ckpt["scaler"])
        if self.dist.is_main:
            set_rng_state(ckpt["rng"])
        else:
            torch.manual_seed(self.cfg.train.seed + self.dist.rank + ckpt["step"])
        self.epoch, self.batch_in_epoch, self.step = ckpt["epoch"], ckpt["batch_in_epoch"], ckpt["step"]
        self.best_metric, self.best_epoch = ckpt["best_metric"], ckpt["best_epoch"]
        self.runner.set_epoch_totals(ckpt.get("epoch_totals", {}))  # older checkpoints: none
        self.saved_step = ckpt["step"]
        self.seconds_before, self.run_start = ckpt["train_seconds"], time.time()
        log.info("resumed from %s: epoch %d, batch %d, step %d", path, self.epoch + 1, self.batch_in_epoch, self.step)
        return True

    # ---- training ----------------------------------------------------
    def loader(self) -> DataLoader:
        workers = self.cfg.data.num_workers
        batching = ({"batch_size": self.cfg.data.batch_size} if self.sampler is self.dataset
                    else {"batch_sampler": self.sampler})
        return DataLoader(self.dataset, **batching, num_workers=workers, pin_memory=self.device.type == "cuda",
                          collate_fn=collate_crops, generator=torch.Generator(), worker_init_fn=_one_thread,
                          persistent_workers=False, prefetch_factor=2 if workers else None)

    def train_epoch(self) -> dict[str, float]:
        cfg = self.cfg.train
        self.trainee.train()
        if cfg.phase2_fresh_optimizer and self.epoch == cfg.freeze_upstream_epochs > 0 and self.batch_in_epoch == 0:
            self.optimizer.state.clear()  # phase 2 starts with a new optimizer, as the AttM reference
        self.trainee.model.upstream_frozen = self.upstream_frozen()
        if self.trainee.model.upstream_frozen:
            self.trainee.model.upstream.eval()
        self.sampler.set_epoch(self.epoch, self.batch_in_epoch)
        n_batches = len(self.sampler) + self.batch_in_epoch
        reset_peak_memory(self.device)
        utts = 0
        start = time.time()
        bar = _progress(len(self.sampler), f"epoch {self.epoch + 1}", self.dist.is_main)
        for wavs, labels in self.loader():
            if hasattr(self.trainee.loss, "set_epoch"):  # margin warm-up
                self.trainee.loss.set_epoch(self.epoch + self.batch_in_epoch / n_batches)
            self.batch_in_epoch += 1
            step_due = self.batch_in_epoch % cfg.grad_accum == 0 or self.batch_in_epoch == n_batches
            self.runner.batch(wavs, labels, last=step_due)
            utts += wavs.shape[0]
            if step_due:
                self.optimizer_step()
                if (cfg.save_every_steps and self.step % cfg.save_every_steps == 0 and self.batch_in_epoch < n_batches
                        and not self.bad_steps):
                    self.save_last()
                if self.dist.is_main and cfg.log_every_steps and self.step % cfg.log_every_steps == 0:
                    loss, acc = self.runner.epoch_means()
                    log.info("epoch %d step %d loss %.4f acc %.3f", self.epoch + 1, self.step, loss, acc)
            bar.update(1)
        bar.close()
        seconds = time.time() - start
        loss, acc = self.runner.epoch_means()
        self.runner.set_epoch_totals({})
        peak = peak_memory_mb(self.device)
        self.peak_mb = max(self.peak_mb, peak)
        train_loss, train_acc = all_reduce_means([loss, acc], self.dist)
        return {"train_loss": train_loss, "train_acc": train_acc, "utts_per_s": utts * self.dist.world_size / max(seconds, 1e-9),
                "epoch_seconds": seconds, "peak_memory_mb": peak}

    def optimizer_step(self) -> None:
        """One optimizer step (:meth:`StepRunner.step`); a run of ``train.nonfinite_patience``
        skipped steps stops the run, on every rank alike (their decisions are agreed)."""
        self.step += 1
        if self.runner.step():
            self.bad_steps = 0
            return
        self.bad_steps += 1
        backoff = f"; the fp16 loss scale is now {self.scaler.get_scale():g}" if self.scaler.is_enabled() else ""
        log.warning("epoch %d, step %d: non-finite loss or gradients (on some rank); the step is skipped%s",
                    self.epoch + 1, self.step, backoff)
        if self.bad_steps >= self.cfg.train.nonfinite_patience:
            first = self.step - self.bad_steps + 1
            steps = f"steps {first}-{self.step}" if first < self.step else f"step {self.step}"
            kept = (f"{self.ckpt_dir / 'last.pt'} holds step {self.saved_step}, the last good state"
                    if self.saved_step is not None else "no checkpoint was written")
            raise SpkpeftError(f"training loss or gradients non-finite at {self.bad_steps} consecutive optimizer "
                               f"steps (epoch {self.epoch + 1}, {steps}), each skipped{backoff}; stopping: {kept}")

    def end_epoch(self, stats: dict[str, float]) -> None:
        """Validation, checkpoints and the ``train_epochs.csv`` row on rank 0, then ``last.pt``;
        every rank learns whether rank 0 failed there (a collective), so that all stop together."""
        epoch_no = self.epoch + 1
        failed = None
        try:
            if self.dist.is_main:
                self.record_epoch(epoch_no, stats)
            self.epoch, self.batch_in_epoch = epoch_no, 0
            self.save_last()
        except Exception as err:  # noqa: BLE001  (raised again below, once every rank has heard of it)
            failed = err
        if any_rank(failed is not None, self.dist):
            raise failed or SpkpeftError(f"rank 0 failed at the end of epoch {epoch_no} (its log says why); "
                                         f"rank {self.dist.rank} stops too")

    def record_epoch(self, epoch_no: int, stats: dict[str, float]) -> None:
        """Rank 0's end of an epoch: validation, ``best.pt``, ``epoch_NNN.pt``, the csv row."""
        metrics = self.task.validate(self.trainee, self.data, self.cfg, self.device)
        lrs = {g["name"]: g["lr"] for g in self.optimizer.param_groups}
        value = metrics[self.task.selection[0]]
        if self.task.better(value, self.best_metric):
            self.best_metric, self.best_epoch = value, epoch_no
            save_atomic({"trainable": trainable_state(self.trainee), "epoch": epoch_no}, self.ckpt_dir / "best.pt")
        save_atomic({"trainable": trainable_state(self.trainee), "epoch": epoch_no},
                    self.ckpt_dir / f"epoch_{epoch_no:03d}.pt")
        row = {"epoch": epoch_no, "step": self.step, **stats, **metrics,
               "lr_peft": lrs.get("peft", ""), "lr_head": lrs["head"]}
        append_csv(self.exp / "train_epochs.csv", {k: _round(v) for k, v in row.items()}, self.csv_fields)
        log.info("epoch %d done: %s", epoch_no, ", ".join(f"{k} {_round(v)}" for k, v in row.items()))

    def selection_history(self) -> list[tuple[int, float]]:
        """``(epoch, value)`` of the selection metric of every finished epoch (``train_epochs.csv``)."""
        return read_epoch_metric(self.exp / "train_epochs.csv", self.task.selection[0])

    def stopped_early(self) -> bool:
        """Whether ``train.early_stop_patience`` ends training after the epochs done (module docstring)."""
        cfg = self.cfg.train
        if cfg.early_stop_patience <= 0:
            return False
        history = self.selection_history() if self.dist.is_main else []
        stop = stop_early(history, cfg.early_stop_patience, cfg.early_stop_from_epoch, self.task.selection[1])
        return any_rank(stop, self.dist)  # the main rank decides (the others' history is empty)

    def average(self) -> None:
        cfg = self.cfg.train
        if (cfg.average_last <= 0 and cfg.average_best <= 0) or not self.dist.is_main:
            return
        if cfg.average_best > 0:
            epochs = best_epochs(self.selection_history(), cfg.average_best, self.task.selection[1])
        else:
            epochs = list(range(max(1, self.epoch - cfg.average_last + 1), self.epoch + 1))
        paths = [self.ckpt_dir / f"epoch_{e:03d}.pt" for e in epochs]
        states = [load_checkpoint(p)["trainable"] for p in paths]
        save_atomic({"trainable": average_state_dicts(states), "epochs": [p.name for p in paths]},
                    self.ckpt_dir / "avg.pt")
        log.info("averaged %s into avg.pt", ", ".join(p.name for p in paths))

    def run(self) -> None:
        try:
            if self.dist.is_main:
                self.task.prepare_exp(self.exp, self.data)
            self.resume()
            while self.epoch < self.cfg.train.epochs and not self.stopped_early():
                stats = self.train_epoch()
                self.end_epoch(stats)
            self.average()
            if self.dist.is_main:
                write_json_atomic(self.exp / "train_done.json", {
                    **self.summary, "epochs": self.epoch, "steps": self.step, "best_epoch": self.best_epoch,
                    f"best_{self.task.selection[0]}": self.best_metric, "train_seconds": round(self.train_seconds(), 1),
                    "peak_memory_mb": round(self.peak_mb or peak_memory_mb(self.device), 1)})
        finally:
            cleanup(self.dist)


def _one_thread(_worker_id: int) -> None:
    """Data-loader workers only read and crop audio: one torch thread each, so they do not
    compete with the training process's threads."""
    torch.set_num_threads(1)


def _round(value: Any) -> Any:
    return round(value, 6) if isinstance(value, float) else value


def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, disable=not (enabled and sys.stderr.isatty()), leave=False)
