"""torchrun / DistributedDataParallel plumbing: NCCL on GPUs, gloo on the CPU.

Collectives run on the training device (:attr:`DistInfo.device`): spkpeft's own collectives
(the epoch means, the per-step finiteness check, the end-of-epoch agreement) build their few
scalars there.  The alternative, a process group with a CPU backend beside NCCL
(``backend="cpu:gloo,cuda:nccl"``), was not chosen: it would be a second transport with its
own network set-up on clusters (gloo picks an interface by hostname; nodes with several
need ``GLOO_SOCKET_IFNAME``) and its own timeout, it would carry a CPU tensor that reached a
collective by mistake silently where NCCL refuses it, and a one-GPU check with a 1-rank
NCCL group (``bench/gpu_check.sh``) could then not catch such a tensor.  The tensors are a few
scalars per step and per epoch: on the GPU they cost nothing.

``init_distributed(..., always=True)`` joins a process group and :class:`DistInfo` reports
``enabled`` even for one process (``torchrun --nproc_per_node 1`` or a plain ``python``): the
trainer then wraps its model in DistributedDataParallel and runs every collective, which is
how the multi-GPU path is checked on a machine with one GPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
import torch.distributed as dist


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    joined: bool = False  # a process group exists (world_size > 1, or asked for with one process)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.joined


def init_distributed(device_type: str, always: bool = False) -> DistInfo:
    """The rank's device (``cuda:<LOCAL_RANK>`` or the CPU) and, when launched by torchrun with
    ``WORLD_SIZE`` > 1 or with ``always``, its process group: NCCL bound to that GPU
    (``set_device`` first, ``device_id`` given), gloo on the CPU."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", local_rank) if device_type == "cuda" else torch.device(device_type)
    if world_size == 1 and not always:
        return DistInfo(device=device)
    rendezvous = {} if "MASTER_ADDR" in os.environ else {"store": dist.HashStore(), "rank": 0, "world_size": 1}
    if device.type == "cuda":
        torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl", device_id=device, **rendezvous)
    else:
        dist.init_process_group(backend="gloo", **rendezvous)
    return DistInfo(rank, world_size, local_rank, device, joined=True)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def all_reduce_means(values: list[float | torch.Tensor], info: DistInfo) -> list[float]:
    """Means over ranks of numbers (or one-element tensors), reduced together on the training
    device and read on the host once."""
    tensor = torch.stack([torch.as_tensor(v, dtype=torch.float64).to(info.device).reshape(()) for v in values])
    if info.enabled:
        dist.all_reduce(tensor)
        tensor = tensor / info.world_size
    return tensor.cpu().tolist()


def all_reduce_mean(value: float | torch.Tensor, info: DistInfo) -> float:
    """Mean over ranks of one number (see :func:`all_reduce_means`)."""
    return all_reduce_means([value], info)[0]


def all_reduce_sum_(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """``tensor`` (on the training device) summed over ranks in place, without a host wait."""
    if info.enabled:
        dist.all_reduce(tensor)
    return tensor


def any_rank(flag: bool, info: DistInfo) -> bool:
    """True on every rank when ``flag`` is True on any: a decision taken on one rank (an error
    of rank 0's validation) is everybody's, so that no rank waits alone in a collective."""
    if not info.enabled:
        return flag
    tensor = torch.tensor([1.0 if flag else 0.0], device=info.device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item() > 0)


def cleanup(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
