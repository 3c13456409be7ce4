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
utterances per second) and peak memory.

Learning rate (per parameter group, ``lr0`` = ``lr_peft`` or ``lr_head``),
with ``w`` warm-up steps out of ``T`` and ``r = final_lr_ratio``:
``lr(t) = lr0 * t / w`` for ``t < w``, then with ``p = (t - w) / (T - w)``
cosine: ``lr0 * (r + (1 - r) * (1 + cos(pi p)) / 2)``; exponential: ``lr0 * r ** p``.

Two-phase schedule (``train.freeze_upstream_epochs: F``, e.g. the attentive-merging
recipe of Pan et al. 2024: back-end first, then fine-tuning): during the first ``F`` epochs
the upstream runs without gradients and in eval mode, so only the aggregation and the head
(and the loss classes) learn, and the ``peft`` group's learning rate is 0; from epoch
``F + 1`` its schedule starts, warm-up included, over the remaining steps
(``lr_peft * lr_factor(t - F S, w, T - F S)``, ``S`` steps per epoch).
"""

from __future__ import annotations

import csv
import logging
import math
import os
import random
import resource
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from spkpeft.data.crops import BalancedBatchSampler, CropDataset, collate_crops
from spkpeft.data.shards import sharded_crops
from spkpeft.engine.checkpoint import average_state_dicts, load_checkpoint, remove_partial_writes, save_atomic
from spkpeft.engine.distributed import all_reduce_mean, barrier, cleanup, init_distributed
from spkpeft.errors import SpkpeftError
from spkpeft.io.atomic import atomic_open, write_json_atomic
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

    def __post_init__(self) -> None:
        validate_train_config(self)


def validate_train_config(cfg: TrainConfig) -> None:
    """Value checks that types cannot express; errors name the key."""
    if cfg.scheduler not in ("cosine", "exponential"):
        raise SpkpeftError(f"train.scheduler must be 'cosine' or 'exponential', got {cfg.scheduler!r}")
    if cfg.amp not in ("none", "bf16", "fp16"):
        raise SpkpeftError(f"train.amp must be 'none', 'bf16' or 'fp16', got {cfg.amp!r}")
    for key in ("epochs", "grad_accum"):
        if getattr(cfg, key) < 1:
            raise SpkpeftError(f"train.{key} must be >= 1")
    if not 0 < cfg.final_lr_ratio <= 1:
        raise SpkpeftError("train.final_lr_ratio must be in (0, 1]")
    if not 0 <= cfg.freeze_upstream_epochs < cfg.epochs:
        raise SpkpeftError(f"train.freeze_upstream_epochs must be in [0, train.epochs = {cfg.epochs}), "
                           f"got {cfg.freeze_upstream_epochs}")


def lr_factor(step: int, warmup_steps: int, total_steps: int, scheduler: str, final_ratio: float) -> float:
    """Multiplier of the base learning rate at optimizer step ``step`` (see the module docstring);
    0 before step 0 (the ``peft`` group during the frozen phase of a two-phase schedule)."""
    if step < 0:
        return 0.0
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
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
    """AdamW with two groups by module ownership (``model.param_groups()``): the method's
    upstream parameters (``lr_peft``) and the rest, loss classes included (``lr_head``)."""
    groups_of = trainee.model.param_groups()
    peft = groups_of["peft"]
    head = groups_of["head"] + [p for p in trainee.loss.parameters() if p.requires_grad]
    groups = [{"params": head, "lr": cfg.lr_head, "name": "head"}]
    if peft:
        groups.append({"params": peft, "lr": cfg.lr_peft, "name": "peft"})
    return torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)


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


def peak_memory_mb(device: torch.device) -> float:
    """Peak CUDA memory allocated, or peak resident set size of this process on the CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def autocast_context(amp: str, device: torch.device):
    if amp == "none" or device.type != "cuda":
        return nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16 if amp == "bf16" else torch.float16)


def csv_fields(metrics) -> list[str]:
    """Columns of ``train_epochs.csv`` with the task's validation ``metrics``."""
    return ["epoch", "step", "train_loss", "train_acc", *metrics, "lr_peft", "lr_head",
            "utts_per_s", "peak_memory_mb", "epoch_seconds"]


def append_csv(path: Path, row: dict[str, Any], fields: list[str]) -> None:
    new = not path.is_file()
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        if new:
            writer.writeheader()
        writer.writerow({k: row.get(k, "") for k in fields})
        f.flush()
        os.fsync(f.fileno())


class Trainer:
    """One training run of ``task`` in ``exp_dir``; ``run()`` resumes from ``checkpoints/last.pt`` when present."""

    def __init__(self, cfg, task, data_dir: str | Path, exp_dir: str | Path, device: str = "cpu",
                 config_name: str = "", dev_dir: str | Path | None = None):
        self.cfg = cfg
        self.task = task
        self.exp = Path(exp_dir)
        self.ckpt_dir = self.exp / "checkpoints"
        self.dist = init_distributed(device.split(":")[0])
        self.device = torch.device(f"cuda:{self.dist.local_rank}" if device == "cuda" else device)
        seed_everything(cfg.train.seed + self.dist.rank, cfg.train.deterministic)

        data_dir = read_data_dir(data_dir)
        self.data = task.training_data(cfg, data_dir, cfg.train.seed, dev_dir)
        self.n_classes = self.data.num_classes
        self.dataset, self.sampler = self.training_source(data_dir)
        model = task.build_model(cfg, self.data)
        counts = model.param_counts()
        trainable = counts["peft"] + counts["aggregation"] + counts["head"]
        self.summary = {"task": task.name, "config": config_name, "upstream": cfg.upstream.name,
                        "trainable_params": trainable, "total_params": counts["upstream"] + trainable}
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
            self.optimizer, [self.lr_lambda(g["name"]) for g in self.optimizer.param_groups])
        self.scaler = torch.amp.GradScaler("cuda", enabled=cfg.train.amp == "fp16" and self.device.type == "cuda")
        self.epoch, self.batch_in_epoch, self.step = 0, 0, 0
        self.best_metric, self.best_epoch = task.worst(), -1
        self.epoch_totals = _zero_totals()  # loss/accuracy sums of the current epoch's batches so far
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
                              speed_changes_label=self.data.speed_changes_label)
        sampler = BalancedBatchSampler([u[2] for u in items], cfg.data.batch_size,
                                       cfg.train.seed, self.dist.rank, self.dist.world_size)
        return dataset, sampler

    def lr_lambda(self, group: str):
        """The learning-rate multiplier of parameter group ``group`` by optimizer step (module docstring)."""
        cfg = self.cfg.train
        total = self.steps_per_epoch * cfg.epochs
        delay = self.steps_per_epoch * cfg.freeze_upstream_epochs if group == "peft" else 0
        warmup = int(round(cfg.warmup_epochs * self.steps_per_epoch))
        return lambda s: lr_factor(s - delay, warmup, total - delay, cfg.scheduler, cfg.final_lr_ratio)

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
            "epoch_totals": dict(self.epoch_totals),
            "n_classes": self.n_classes,
            "train_seconds": self.train_seconds(),
        }

    def train_seconds(self) -> float:
        """Wall time spent training so far, summed over resumed runs."""
        return self.seconds_before + time.time() - self.run_start

    def save_last(self) -> None:
        if self.dist.is_main:
            save_atomic(self.state(), self.ckpt_dir / "last.pt")

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
        if not self.dist.is_main or not path.is_file():
            return
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
        keep = rows[:1] + [r for r in rows[1:] if r and (not r[0].isdigit() or int(r[0]) <= epochs_done)]
        if len(keep) < len(rows):
            with atomic_open(path, "w", newline="") as f:
                csv.writer(f).writerows(keep)  # the same dialect as append_csv
            log.info("%s: dropped %d row(s) of epochs after epoch %d (the checkpoint's)", path,
                     len(rows) - len(keep), epochs_done)

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
        self.scaler.load_state_dict(ckpt["scaler"])
        if self.dist.is_main:
            set_rng_state(ckpt["rng"])
        else:
            torch.manual_seed(self.cfg.train.seed + self.dist.rank + ckpt["step"])
        self.epoch, self.batch_in_epoch, self.step = ckpt["epoch"], ckpt["batch_in_epoch"], ckpt["step"]
        self.best_metric, self.best_epoch = ckpt["best_metric"], ckpt["best_epoch"]
        self.epoch_totals = {**_zero_totals(), **ckpt.get("epoch_totals", {})}  # older checkpoints: none
        self.seconds_before, self.run_start = ckpt["train_seconds"], time.time()
        log.info("resumed from %s: epoch %d, batch %d, step %d", path, self.epoch + 1, self.batch_in_epoch, self.step)
        return True

    # ---- training ----------------------------------------------------
    def loader(self) -> DataLoader:
        workers = self.cfg.data.num_workers
        batching = ({"batch_size": self.cfg.data.batch_size} if self.sampler is self.dataset
                    else {"batch_sampler": self.sampler})
        return DataLoader(self.dataset, **batching, num_workers=workers,
                          collate_fn=collate_crops, generator=torch.Generator(), worker_init_fn=_one_thread,
                          persistent_workers=False, prefetch_factor=2 if workers else None)

    def train_epoch(self) -> dict[str, float]:
        cfg = self.cfg.train
        module = self.ddp or self.trainee
        self.trainee.train()
        self.trainee.model.upstream_frozen = self.upstream_frozen()
        if self.trainee.model.upstream_frozen:
            self.trainee.model.upstream.eval()
        self.sampler.set_epoch(self.epoch, self.batch_in_epoch)
        n_batches = len(self.sampler) + self.batch_in_epoch
        totals = self.epoch_totals  # restored by resume() when resuming mid-epoch
        utts = 0
        start = time.time()
        bar = _progress(len(self.sampler), f"epoch {self.epoch + 1}", self.dist.is_main)
        for wavs, labels in self.loader():
            if hasattr(self.trainee.loss, "set_epoch"):  # margin warm-up
                self.trainee.loss.set_epoch(self.epoch + self.batch_in_epoch / n_batches)
            wavs, labels = wavs.to(self.device), labels.to(self.device)
            lens = torch.full((wavs.shape[0],), wavs.shape[1], dtype=torch.long, device=self.device)
            with autocast_context(cfg.amp, self.device):
                loss, acc = module(wavs, lens, labels)
            if not torch.isfinite(loss):
                raise SpkpeftError(f"training loss is {loss.item()} at epoch {self.epoch + 1}, "
                                   f"step {self.step + 1}; stopping")
            self.scaler.scale(loss / cfg.grad_accum).backward()
            self.batch_in_epoch += 1
            totals["loss"] += loss.item()
            totals["acc"] += float(acc)
            totals["n"] += 1
            utts += wavs.shape[0]
            if self.batch_in_epoch % cfg.grad_accum == 0 or self.batch_in_epoch == n_batches:
                self.optimizer_step()
                if cfg.save_every_steps and self.step % cfg.save_every_steps == 0 and self.batch_in_epoch < n_batches:
                    self.save_last()
                if self.dist.is_main and cfg.log_every_steps and self.step % cfg.log_every_steps == 0:
                    log.info("epoch %d step %d loss %.4f acc %.3f", self.epoch + 1, self.step,
                             totals["loss"] / totals["n"], totals["acc"] / totals["n"])
            bar.update(1)
            bar.set_postfix(loss=f"{totals['loss'] / totals['n']:.3f}")
        bar.close()
        seconds = time.time() - start
        n = max(1, totals["n"])
        self.epoch_totals = _zero_totals()
        return {"train_loss": all_reduce_mean(totals["loss"] / n, self.dist),
                "train_acc": all_reduce_mean(totals["acc"] / n, self.dist),
                "utts_per_s": utts * self.dist.world_size / max(seconds, 1e-9),
                "epoch_seconds": seconds}

    def optimizer_step(self) -> None:
        cfg = self.cfg.train
        if cfg.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_([p for g in self.optimizer.param_groups for p in g["params"]],
                                           cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        self.step += 1

    def end_epoch(self, stats: dict[str, float]) -> None:
        metrics = self.task.validate(self.trainee, self.data, self.cfg, self.device) if self.dist.is_main else {}
        lrs = {g["name"]: g["lr"] for g in self.optimizer.param_groups}
        epoch_no = self.epoch + 1
        if self.dist.is_main:
            value = metrics[self.task.selection[0]]
            if self.task.better(value, self.best_metric):
                self.best_metric, self.best_epoch = value, epoch_no
                save_atomic({"trainable": trainable_state(self.trainee), "epoch": epoch_no}, self.ckpt_dir / "best.pt")
            save_atomic({"trainable": trainable_state(self.trainee), "epoch": epoch_no},
                        self.ckpt_dir / f"epoch_{epoch_no:03d}.pt")
            row = {"epoch": epoch_no, "step": self.step, **stats, **metrics,
                   "lr_peft": lrs.get("peft", ""), "lr_head": lrs["head"],
                   "peak_memory_mb": peak_memory_mb(self.device)}
            append_csv(self.exp / "train_epochs.csv", {k: _round(v) for k, v in row.items()}, self.csv_fields)
            log.info("epoch %d done: %s", epoch_no, ", ".join(f"{k} {_round(v)}" for k, v in row.items()))
        self.epoch, self.batch_in_epoch = epoch_no, 0
        self.save_last()
        barrier(self.dist)

    def average(self) -> None:
        n = self.cfg.train.average_last
        if n <= 0 or not self.dist.is_main:
            return
        paths = [self.ckpt_dir / f"epoch_{e:03d}.pt" for e in range(max(1, self.epoch - n + 1), self.epoch + 1)]
        states = [load_checkpoint(p)["trainable"] for p in paths]
        save_atomic({"trainable": average_state_dicts(states), "epochs": [p.name for p in paths]},
                    self.ckpt_dir / "avg.pt")
        log.info("averaged %s into avg.pt", ", ".join(p.name for p in paths))

    def run(self) -> None:
        try:
            if self.dist.is_main:
                self.task.prepare_exp(self.exp, self.data)
            self.resume()
            while self.epoch < self.cfg.train.epochs:
                stats = self.train_epoch()
                self.end_epoch(stats)
            self.average()
            if self.dist.is_main:
                write_json_atomic(self.exp / "train_done.json", {
                    **self.summary, "epochs": self.epoch, "steps": self.step, "best_epoch": self.best_epoch,
                    f"best_{self.task.selection[0]}": self.best_metric, "train_seconds": round(self.train_seconds(), 1),
                    "peak_memory_mb": round(peak_memory_mb(self.device), 1)})
        finally:
            cleanup(self.dist)


def _zero_totals() -> dict[str, float]:
    return {"loss": 0.0, "acc": 0.0, "n": 0}


def _one_thread(_worker_id: int) -> None:
    """Data-loader workers only read and crop audio: one torch thread each, so they do not
    compete with the training process's threads."""
    torch.set_num_threads(1)


def _round(value: Any) -> Any:
    return round(value, 6) if isinstance(value, float) else value


def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, disable=not (enabled and sys.stderr.isatty()), leave=False)
