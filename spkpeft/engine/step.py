"""One rank's optimizer steps, kept off the host: the batches of a step and the agreed skip of a
non-finite one (the hot loop of :class:`spkpeft.engine.trainer.Trainer`).

:meth:`StepRunner.batch` moves a batch to the device without blocking (the trainer's loader pins
it), runs the model and loss under the trainer's autocast and the scaled backward of
``loss / grad_accum`` -- every batch but the last of a step under DDP's ``no_sync``, so that the
gradients are all-reduced once per step -- and adds the loss and accuracy to the epoch's sums on
the device (float64, in batch order: the same sums as adding ``loss.item()`` on the host).

:meth:`StepRunner.step` then

1. unscales the gradients (fp16's loss scaler; nothing otherwise) and clips them
   (``grad_clip`` > 0) or measures their norm ``||g||``;
2. forms ``check = ||g|| + (sum of the step's losses)``, which is not finite exactly when a
   gradient or a loss was not, and sums it over ranks on the device, so that every rank reaches
   the same decision (NCCL propagates inf and NaN);
3. reads ``isfinite(check)`` on the host -- the step's one synchronisation -- and only then steps
   the optimizer and the learning-rate scheduler; a skipped step restores the BatchNorm
   statistics saved before its first batch and drops its batches from the epoch's sums;
4. lets the scaler update: after overflowed fp16 gradients it backs off, which is what lets
   fp16 training recover.

What the trainer does with a run of skipped steps (the patience, the stop): its docstring.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
from torch import nn
from torch.nn.modules.batchnorm import _NormBase

from spkpeft.engine.distributed import DistInfo, all_reduce_sum_


def autocast_context(amp: str, device: torch.device):
    """The training forward's autocast: bf16 or fp16 on CUDA (``train.amp``), none elsewhere."""
    if amp == "none" or device.type != "cuda":
        return nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16 if amp == "bf16" else torch.float16)


def running_statistics(module: nn.Module) -> list[torch.Tensor]:
    """The buffers a training forward changes: BatchNorm running means, variances and counts."""
    out = []
    for m in module.modules():
        if isinstance(m, _NormBase) and m.track_running_stats:
            out += [b for b in (m.running_mean, m.running_var, m.num_batches_tracked) if b is not None]
    return out


class StepRunner:
    """The batches and optimizer steps of one rank (see the module docstring).

    ``module`` is what the forward calls (the DDP wrapper, or ``trainee`` itself); the epoch's
    sums are :meth:`epoch_totals` (``{"loss", "acc", "n"}``, the trainer's checkpoint entry)."""

    def __init__(self, module: nn.Module, trainee: nn.Module, optimizer: torch.optim.Optimizer, scheduler,
                 scaler: torch.amp.GradScaler, cfg, dist: DistInfo) -> None:
        self.module, self.optimizer, self.scheduler, self.scaler = module, optimizer, scheduler, scaler
        self.cfg, self.dist, self.device = cfg, dist, dist.device
        self.params = [p for g in optimizer.param_groups for p in g["params"]]
        self.statistics = running_statistics(trainee)
        self.saved_statistics = [b.clone() for b in self.statistics]
        self.sums = torch.zeros(2, dtype=torch.float64, device=self.device)  # the epoch's loss, accuracy
        self.sums_before = self.sums.clone()  # ... before the current step's first batch
        self.n = self.n_before = 0
        self.batches_in_step = 0

    # ---- the epoch's sums -----------------------------------------------
    def epoch_totals(self) -> dict[str, float]:
        """``{"loss", "acc", "n"}``: the sums of the epoch's batches so far (reads the device)."""
        loss, acc = self.sums.tolist()
        return {"loss": loss, "acc": acc, "n": self.n}

    def set_epoch_totals(self, totals: dict[str, float]) -> None:
        """Start from ``totals`` (a checkpoint's, resuming mid-epoch; zeros for a new epoch)."""
        self.sums.copy_(torch.tensor([float(totals.get("loss", 0.0)), float(totals.get("acc", 0.0))],
                                     dtype=torch.float64))
        self.n = int(totals.get("n", 0))

    def epoch_means(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean loss and accuracy of the epoch's batches so far, on the device."""
        mean = self.sums / max(1, self.n)
        return mean[0], mean[1]

    # ---- the hot loop ----------------------------------------------------
    def batch(self, wavs: torch.Tensor, labels: torch.Tensor, last: bool) -> None:
        """Forward and backward of one batch (``last``: the last batch of its optimizer step)."""
        if self.batches_in_step == 0:
            if self.statistics:
                torch._foreach_copy_(self.saved_statistics, self.statistics)
            self.sums_before.copy_(self.sums)
            self.n_before = self.n
        wavs = wavs.to(self.device, non_blocking=True)
        labels = labels.to(self.device, non_blocking=True)
        lens = torch.full((wavs.shape[0],), wavs.shape[1], dtype=torch.long, device=self.device)
        accumulate = self.module.no_sync() if not last and hasattr(self.module, "no_sync") else nullcontext()
        with accumulate:
            with autocast_context(self.cfg.amp, self.device):
                loss, acc = self.module(wavs, lens, labels)
            self.scaler.scale(loss / self.cfg.grad_accum).backward()
        self.sums += torch.stack([loss.detach().to(torch.float64), acc.detach().to(torch.float64)])
        self.n += 1
        self.batches_in_step += 1

    def step(self) -> bool:
        """Steps 1-4 of the module docstring; True when the optimizer stepped."""
        self.scaler.unscale_(self.optimizer)
        if self.cfg.grad_clip > 0:
            norm = torch.nn.utils.clip_grad_norm_(self.params, self.cfg.grad_clip)
        else:
            norm = torch.nn.utils.get_total_norm([p.grad for p in self.params if p.grad is not None])
        check = norm.to(self.device, torch.float64) + (self.sums[0] - self.sums_before[0])
        stepped = bool(torch.isfinite(all_reduce_sum_(check.reshape(1), self.dist)))  # the step's host read
        if stepped:
            self.optimizer.step()
        else:
            if self.statistics:
                torch._foreach_copy_(self.statistics, self.saved_statistics)
            self.sums.copy_(self.sums_before)
            self.n = self.n_before
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        if stepped:
            self.scheduler.step()
        self.batches_in_step = 0
        return stepped
