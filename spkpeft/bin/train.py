"""Train the config's task (upstream + PEFT method + head) on a Kaldi training data directory (stage 3).

Usage (one process; for several GPUs launch it with ``torchrun --nproc_per_node N -m spkpeft.bin.train``)::

    python -m spkpeft.bin.train --config conf/sv/mini.yaml --data data/mini/train --exp exp/mini/mini \
        [--dev data/C/dev] [--upstream NAME] [--overlay FILE ...] [--init-from CKPT] [--shards DIR] [--device cpu|cuda]
        [--ddp]

``--dev``: a validation data directory (tasks that validate on one, e.g. ``cls``); ``auto``: the
one the task takes from the corpus directory of ``--data`` (``cls`` and ``cm``:
``<corpus>/dev`` when it exists; ``sv`` none: it validates on held-out training speakers).
``--ddp``: a process group and DistributedDataParallel even with one process (``torchrun
--nproc_per_node 1``): the multi-GPU code path, checked on a machine with one GPU.
``--shards DIR``: read the training audio from the shards of ``--data`` packed into ``DIR`` by
``spkpeft.bin.make_shards`` (sets ``data.shards``; see :mod:`spkpeft.data.shards`).

The resolved config is saved as ``EXP/config.yaml``; running again with the same
config resumes from ``EXP/checkpoints/last.pt``, a different config is refused.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import Sequence

from spkpeft.bin._cli import run_main
from spkpeft.io.lock import experiment_lock


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--data", required=True, type=Path, help="training data directory")
    parser.add_argument("--exp", required=True, type=Path, help="experiment directory")
    parser.add_argument("--dev", default=None,
                        help="validation data directory (cls, cm), or 'auto': the task's choice in the corpus of --data")
    parser.add_argument("--upstream", default=None, help="override upstream.name")
    parser.add_argument("--overlay", action="append", default=[], type=Path,
                        help="YAML overlay merged on top of the config (repeatable), e.g. conf/overlays/large_margin.yaml")
    parser.add_argument("--init-from", default=None, help="checkpoint to start from (sets train.init_from)")
    parser.add_argument("--shards", default=None, help="shard directory of --data (sets data.shards)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--ddp", action="store_true",
                        help="process group + DistributedDataParallel even with one process (checks the multi-GPU path)")
    args = parser.parse_args(argv)

    rank = int(os.environ.get("RANK", "0"))
    with experiment_lock(args.exp) if rank == 0 else contextlib.nullcontext():  # one run per --exp
        from spkpeft.tasks.experiment import prepare_experiment  # after the lock: a refused run stops at once

        cfg = prepare_experiment(args.config, args.exp, args.upstream, write=rank == 0,
                                 overlays=args.overlay, init_from=args.init_from,
                                 extra={"data.shards": args.shards} if args.shards else None)
        handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
        if rank == 0:
            handlers.append(LogFile(args.exp / "train.log"))
        logging.basicConfig(level=logging.INFO if rank == 0 else logging.WARNING, handlers=handlers,
                            format="%(asctime)s %(levelname)s %(message)s")

        from spkpeft.tasks.base import get_task

        task = get_task(cfg)
        dev = task.dev_dir(args.data.parent) if args.dev == "auto" else (Path(args.dev) if args.dev else None)
        task.train(cfg, args.data, args.exp, args.device, config_name=args.config.stem, dev_dir=dev,
                   ddp=args.ddp, load_trained=load_trained)
    return 0


def load_trained(path, device):
    """Another trained experiment or package, for tasks that consume trained models (:data:`TrainedLoader`)."""
    from spkpeft.inference.package import load_any

    return load_any(path, None, device)


class LogFile(logging.FileHandler):
    """``train.log``; a failed write (a full disk) is one line on stderr, once, instead of a
    traceback per record (the run goes on logging to stderr; its checkpoints are what counts)."""

    def handleError(self, record: logging.LogRecord) -> None:
        if not getattr(self, "_reported", False):
            self._reported = True
            error = sys.exc_info()[1]
            print(f"train: warning: {self.baseFilename}: cannot write the log ({error}); logging to stderr only",
                  file=sys.stderr)


if __name__ == "__main__":
    run_main(main)
