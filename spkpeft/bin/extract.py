"""Stage 4: run a trained experiment on data directories; what it writes depends on the task.

Usage::

    python -m spkpeft.bin.extract --exp EXP --data data/mini/test [data/mini/train ...] \
        [--checkpoint best|last|avg|PATH] [--device cpu|cuda]

``sv``: embeddings, ``EXP/embeddings/<data dir name>/xvector.scp`` (and its ark shards);
``cls``: class posteriors, ``EXP/posteriors/<data dir name>/posteriors.scp``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence

import torch

from spkpeft.bin._cli import run_main
from spkpeft.io.lock import experiment_lock
from spkpeft.tasks.experiment import load_trained_model


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--exp", required=True, type=Path)
    parser.add_argument("--data", required=True, nargs="+", type=Path)
    parser.add_argument("--checkpoint", default=None, help="best | last | avg | a path (default: extract.checkpoint)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")

    from spkpeft.tasks.base import get_task

    device = torch.device(args.device)
    with experiment_lock(args.exp):  # one run per --exp
        model, cfg, source = load_trained_model(args.exp, args.checkpoint, device)
        task = get_task(cfg)
        for data_dir in args.data:
            n = task.infer(model, cfg, args.exp, data_dir, device, source,
                           progress=lambda i, n: logging.info("%s: shard %d/%d", data_dir, i, n))
            logging.info("%s: %d utterances processed (task %s)", data_dir, n, task.name)
    return 0


if __name__ == "__main__":
    run_main(main)
