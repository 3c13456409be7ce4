"""The optimizer of a training run, and the epoch rules that read the validation history.

Optimizer (``train.optimizer``), over the parameter groups of the trainer:

* ``adamw`` (default): AdamW, decoupled weight decay (Loshchilov & Hutter, ICLR 2019), the
  optimizer of AttM and PETL-AST;
* ``adam``: Adam with L2 weight decay added to the gradient (``torch.optim.Adam``), as the
  SSL-AASIST reference (``main_SSL_LA.py``: ``Adam(lr=1e-6, weight_decay=1e-4)``);
* ``sgd``: SGD with ``train.momentum``, as the SpectralFT reference (``ECAPAModel.py``:
  ``SGD(momentum=0.9, weight_decay=1e-4)``);

with ``train.betas`` and ``train.eps`` for the Adam variants (PETL-AST: ``(0.9, 0.98)``,
``1e-6``; torch's defaults ``(0.9, 0.999)``, ``1e-8`` otherwise).

Plain-SGD groups: a parameter group with ``plain_sgd: True`` is updated by
``p <- p - lr * grad`` (no momentum, no weight decay) whatever the optimizer, as the
one-class softmax's centre is in the AIR-ASVspoof reference (``train.py``:
``torch.optim.SGD(ocsoftmax.parameters(), lr=args.lr)``), while the other groups take the
optimizer's own step.  The group's learning rate follows a step decay by epochs,
``lr0 * decay ** floor(epoch / every)`` (AIR-ASVspoof's ``adjust_learning_rate``: 0.5 every 10
epochs), given as its ``step_decay: (decay, every)``.  The module that owns such parameters
says so with an attribute ``plain_sgd = {"lr": lr0, "decay": d, "every": n}``
(:func:`plain_sgd_modules`).

Epoch rules over the rows of ``train_epochs.csv`` (one per finished epoch, in order):

* :func:`best_epochs`: the ``k`` epochs with the best value of a validation metric, ties in
  epoch order (``train.average_best``: AttM averages the 5 epochs of lowest development loss);
* :func:`stop_early`: whether training stops after the last row: no improvement of the
  metric for ``patience`` epochs once ``from_epoch`` epochs are done (AttM,
  ``main_antispoof.py``: patience 5 on the development loss, checked from its 0-based epoch
  20, i.e. after 21 epochs; an epoch improves when its loss is strictly below the best so far).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Iterable

import torch
from torch import nn

#: ``train.optimizer``
OPTIMIZERS = ("adamw", "adam", "sgd")


def plain_sgd_modules(model: nn.Module) -> list[nn.Module]:
    """The modules of ``model`` that ask for a plain-SGD group (``plain_sgd`` attribute)."""
    return [m for m in model.modules() if getattr(m, "plain_sgd", None)]


def with_plain_sgd_groups(base: type[torch.optim.Optimizer]) -> type[torch.optim.Optimizer]:
    """``base`` whose ``step`` updates the groups marked ``plain_sgd`` by ``p -= lr * grad``
    (module docstring) and every other group by ``base``'s rule."""

    class Optimizer(base):  # type: ignore[misc, valid-type]
        @torch.no_grad()
        def step(self, closure=None):
            plain = [(group["lr"], p, p.grad) for group in self.param_groups if group.get("plain_sgd")
                     for p in group["params"]]
            for _, p, _ in plain:
                p.grad = None  # the base rule skips parameters without a gradient
            try:
                loss = super().step(closure)
            finally:
                for _, p, grad in plain:
                    p.grad = grad
            for lr, p, grad in plain:
                if grad is not None:
                    p.add_(grad, alpha=-lr)
            return loss

    Optimizer.__name__ = f"{base.__name__}WithPlainSgd"
    return Optimizer


def make_optimizer(groups: list[dict], cfg) -> torch.optim.Optimizer:
    """The optimizer of ``train.optimizer`` over ``groups`` (module docstring)."""
    if cfg.optimizer == "sgd":
        base, options = torch.optim.SGD, {"momentum": cfg.momentum}
    else:
        base = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
        options = {"betas": tuple(cfg.betas), "eps": cfg.eps}
    if any(g.get("plain_sgd") for g in groups):
        base = with_plain_sgd_groups(base)
    return base(groups, weight_decay=cfg.weight_decay, **options)


def step_decay_factor(epoch: int, decay: float, every: int) -> float:
    """``decay ** floor(epoch / every)``: AIR-ASVspoof's learning-rate steps (module docstring)."""
    return decay ** (epoch // every)


# ---------------------------------------------------------------------- epoch rules


def read_epoch_metric(path: Path, metric: str) -> list[tuple[int, float]]:
    """``(epoch, value)`` of ``metric`` in every row of ``train_epochs.csv`` (NaN when empty)."""
    if not Path(path).is_file():
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    out = []
    for row in rows:
        text = row.get(metric, "")
        out.append((int(row["epoch"]), float(text) if text not in ("", None) else math.nan))
    return out


def best_epochs(history: Iterable[tuple[int, float]], k: int, mode: str) -> list[int]:
    """The ``k`` epochs of ``history`` with the best values (``mode`` min or max; NaN last), ties
    in epoch order, returned in epoch order."""
    sign = 1.0 if mode == "min" else -1.0
    ranked = sorted(history, key=lambda item: math.inf if math.isnan(item[1]) else sign * item[1])
    return sorted(epoch for epoch, _ in ranked[:k])


def stop_early(history: list[tuple[int, float]], patience: int, from_epoch: int, mode: str) -> bool:
    """Whether the last of ``history`` ends training: ``patience`` > 0, at least ``from_epoch``
    epochs done and no strict improvement in the last ``patience`` epochs (module docstring)."""
    if patience <= 0 or len(history) < max(from_epoch, 1):
        return False
    best, since = math.inf, 0
    sign = 1.0 if mode == "min" else -1.0
    for _, value in history:
        if not math.isnan(value) and sign * value < best:
            best, since = sign * value, 0
        else:
            since += 1
    return since >= patience
