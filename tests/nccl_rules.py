"""NCCL's rules for the collectives of gloo ranks that train on fake CUDA (tests/fake_cuda.py).

On a GPU machine spkpeft's process group is NCCL, which (1) takes only CUDA tensors, on the
device the rank's communicator was made for (``torch.cuda.set_device(local_rank)`` first), and
(2) needs every rank to issue the same collectives in the same order, or the ranks wait on each
other until NCCL's timeout.  :func:`nccl_rules` lets ranks on a machine without a GPU keep to
both rules while they run the trainer on fake CUDA tensors (which hold no values):

* ``torch.distributed.init_process_group(backend="nccl", ...)`` makes a real gloo group over
  the same rendezvous instead, with a short timeout (the kwargs asked for are recorded);
* every collective function of ``torch.distributed`` checks its tensors -- a CPU tensor, or a
  CUDA tensor of another device than the one ``set_device`` chose, is refused with NCCL's own
  words ("No backend type associated with device type cpu") -- and then exchanges its
  fingerprint (operation, dtypes and shapes, reduction) with the other ranks through the gloo
  group: a rank that issues another collective, or none (it stopped alone), fails every rank
  within the timeout instead of hanging.  The fake values themselves are not reduced;
* ``DistributedDataParallel`` becomes a stand-in that checks what NCCL and DDP need of it (one
  CUDA device per process: ``device_ids == [local_rank]``, every parameter there, the same
  parameter shapes on every rank) and offers ``no_sync`` (logged); DDP's own gradient all-reduce runs
  for real in the CPU gloo tests (tests/test_train.py, tests/test_multirank.py).

Each rank's fingerprints are kept in ``Rules.log``.
"""

from __future__ import annotations

import contextlib
import datetime
from dataclasses import dataclass, field
from typing import Any, Iterator
from unittest import mock

import torch
import torch.distributed as dist
from torch import nn
from torch.utils._python_dispatch import _disable_current_modes

#: the collective functions of torch.distributed that take tensors (positional index of the
#: tensor or tensor-list arguments) and those that take Python objects
TENSOR_COLLECTIVES = {"all_reduce": (0,), "broadcast": (0,), "reduce": (0,), "all_gather": (0, 1),
                      "all_gather_into_tensor": (0, 1), "reduce_scatter_tensor": (0, 1), "gather": (0,),
                      "scatter": (0,), "all_to_all_single": (0, 1)}
OBJECT_COLLECTIVES = ("barrier", "all_gather_object", "broadcast_object_list", "gather_object")
TIMEOUT = datetime.timedelta(seconds=60)


class NcclRuleError(RuntimeError):
    """A collective that NCCL would refuse, or that the ranks do not agree on."""


@dataclass
class Rules:
    """What the ranks did: the init arguments, the devices set and each collective's fingerprint."""

    local_rank: int
    init_kwargs: dict = field(default_factory=dict)
    devices_set: list[int] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    _originals: dict[str, Any] = field(default_factory=dict)

    def device(self) -> torch.device:
        if not self.devices_set:
            raise NcclRuleError("a collective before torch.cuda.set_device(local_rank): NCCL would put every "
                                "rank's communicator on GPU 0")
        return torch.device("cuda", self.devices_set[-1])

    def check_tensor(self, op: str, tensor: torch.Tensor) -> str:
        """NCCL's device rule for one tensor; returns its fingerprint."""
        if tensor.device.type != "cuda":
            raise NcclRuleError(f"{op}: No backend type associated with device type {tensor.device.type} "
                                f"(NCCL takes CUDA tensors only; the training device is {self.device()})")
        if tensor.device != self.device():
            raise NcclRuleError(f"{op}: a tensor on {tensor.device}, but this rank's communicator is on {self.device()}")
        return f"{str(tensor.dtype).removeprefix('torch.')}{list(tensor.shape)}"

    def agree(self, fingerprint: str) -> None:
        """Exchange ``fingerprint`` with every rank through the gloo group; differing ones fail all ranks."""
        self.log.append(fingerprint)
        gathered: list = [None] * dist.get_world_size()
        with _disable_current_modes():
            self._originals["all_gather_object"](gathered, f"#{len(self.log)} {fingerprint}")
        if len(set(gathered)) > 1:
            raise NcclRuleError("the ranks issue different collectives (NCCL would hang until its timeout): "
                                + "; ".join(f"rank {r}: {g}" for r, g in enumerate(gathered)))

    def collective(self, op: str, tensor_args: tuple, args: tuple, kwargs: dict) -> None:
        parts = []
        for index in tensor_args:
            value = args[index] if index < len(args) else None
            tensors = value if isinstance(value, (list, tuple)) else [value]
            parts += [self.check_tensor(op, t) for t in tensors if isinstance(t, torch.Tensor)]
        extra = {k: str(v) for k, v in kwargs.items() if k in ("op", "src", "dst")}
        self.agree(f"{op}({', '.join(parts)}){extra or ''}")


class CheckedDDP(nn.Module):
    """Stand-in for DistributedDataParallel on fake CUDA (see the module docstring)."""

    rules: Rules

    def __init__(self, module: nn.Module, device_ids=None, output_device=None, find_unused_parameters=False,
                 **kwargs) -> None:
        super().__init__()
        self.module = module
        self.find_unused_parameters = find_unused_parameters
        device = self.rules.device()
        params = list(module.parameters())
        if any(p.device != device for p in params):
            raise NcclRuleError(f"DistributedDataParallel: parameters off this rank's device {device}")
        if device_ids != [device.index]:
            raise NcclRuleError(f"DistributedDataParallel: device_ids={device_ids}, a CUDA module needs [{device.index}]")
        self.rules.agree("DDP(" + ", ".join(self.rules.check_tensor("DDP", p) for p in params) + ")")
        self.syncing = True

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        self.rules.log.append("no_sync")
        self.syncing = False
        try:
            yield
        finally:
            self.syncing = True


@contextlib.contextmanager
def nccl_rules(local_rank: int) -> Iterator[Rules]:
    """NCCL's rules for the body (see the module docstring); enter it inside ``fake_cuda()``."""
    rules = Rules(local_rank)
    rules._originals = {name: getattr(dist, name) for name in (*TENSOR_COLLECTIVES, *OBJECT_COLLECTIVES)}
    init = dist.init_process_group

    def init_process_group(backend=None, **kwargs):
        rules.init_kwargs = {"backend": backend, **kwargs}
        with _disable_current_modes():
            init(backend="gloo", timeout=TIMEOUT)

    def wrap(name: str, tensor_args: tuple):
        def collective(*args, **kwargs):
            rules.collective(name, tensor_args, args, kwargs)
        return collective

    checked = type("CheckedDDP", (CheckedDDP,), {"rules": rules})
    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.object(dist, "init_process_group", init_process_group))
        stack.enter_context(mock.patch("torch.nn.parallel.DistributedDataParallel", checked))
        stack.enter_context(mock.patch("torch.cuda.set_device", side_effect=lambda d: rules.devices_set.append(
            torch.device(d).index if not isinstance(d, int) else d)))
        for name, tensor_args in TENSOR_COLLECTIVES.items():
            stack.enter_context(mock.patch.object(dist, name, wrap(name, tensor_args)))
        for name in OBJECT_COLLECTIVES:
            stack.enter_context(mock.patch.object(dist, name, wrap(name, ())))
        yield rules
