"""Stage 4: run a trained experiment on data directories; what it writes is the task's.

Usage::

    python -m spkpeft.bin.extract --exp EXP --data data/mini [data/mini/test ...] \
        [--checkpoint best|last|avg|PATH] [--device cpu|cuda]

Each ``--data`` is a data directory (holding ``wav.scp``) or a corpus directory
(``data/<corpus>``), which stands for the data directories its task runs on
(:meth:`spkpeft.tasks.base.Task.inference_sets`: ``sv`` every one, ``train`` included;
``cls`` and ``cm`` every one but ``train``).  ``sv``: embeddings,
``EXP/embeddings/<data dir name>/xvector.scp`` (and its ark shards); ``cls``: class posteriors,
``EXP/posteriors/<data dir name>/posteriors.scp``; ``cm``: bona fide scores,
``EXP/cm_scores/<data dir name>/scores.txt``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence

import torch

from spkpeft.bin._cli import run_main
from spkpeft.bin.train import load_trained
from spkpeft.io.lock import experiment_lock
from spkpeft.tasks.experiment import expand_data_dirs, load_trained_model, read_experiment_config


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--exp", required=True, type=Path)
    parser.add_argument("--data", required=True, nargs="+", type=Path, help="data or corpus directories")
    parser.add_argument("--checkpoint", default=None, help="best | last | avg | a path (default: extract.checkpoint)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")

    from spkpeft.tasks.base import get_task

    device = torch.device(args.device)
    with experiment_lock(args.exp):  # one run per --exp
        cfg = read_experiment_config(args.exp)
        task = get_task(cfg)
        data_dirs = expand_data_dirs(args.data, task.inference_sets)

        def load_model():
            model, _, source = load_trained_model(args.exp, args.checkpoint, device)
            return model, source

        def progress(data_dir: Path):
            return lambda i, n: logging.info("%s: shard %d/%d", data_dir, i, n)

        done = task.extract(cfg, args.exp, data_dirs, load_model, device, progress, load_trained=load_trained)
        for data_dir, n in done.items():
            logging.info("%s: %d utterances processed (task %s)", data_dir, n, task.name)
    return 0


if __name__ == "__main__":
    run_main(main)
