"""Self-supervised pre-training of a tiny upstream on the audio of a data directory (BEST-RQ).

Usage::

    python -m spkpeft.bin.pretrain --data data/mini/train --out exp/pretrain_tiny_wavlm \
        [--init random:tiny_wavlm] [--steps 600] [--batch-size 8] [--crop-seconds 2] ...

Writes ``OUT/last.pt`` (resumable: the same command continues an interrupted run),
``OUT/loss.csv`` and ``OUT/loss.png`` (the loss curve) and, at the end, ``OUT/upstream.pt`` in s3prl's local
format: use it as ``--upstream OUT/upstream.pt``.  Objective and files:
:mod:`spkpeft.upstream.s3prl.bestrq`, :mod:`spkpeft.engine.pretrain`.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Sequence

from spkpeft.bin._cli import run_main
from spkpeft.engine.pretrain import PretrainConfig, Pretrainer
from spkpeft.eval.plots import plot_loss_curve

PLOT = "loss.png"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, type=Path, help="data directory (only its wav.scp is read)")
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--save-every", type=int, default=100, help="steps between resumable checkpoints")
    for spec in dataclasses.fields(PretrainConfig):
        flag = "--" + spec.name.replace("_", "-")
        parser.add_argument(flag, type=type(spec.default), default=spec.default,
                            help=f"default {spec.default}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = PretrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(PretrainConfig)})
    trainer = Pretrainer(cfg, args.data, args.out, args.device, args.save_every,
                         log=lambda line: print(line, file=sys.stderr, flush=True))
    result = trainer.run()
    steps, losses = zip(*[(h[0], h[1]) for h in trainer.history])
    plot_loss_curve(steps, losses, args.out / PLOT, title=f"BEST-RQ pre-training of {cfg.init}")
    print(result)
    return 0


if __name__ == "__main__":
    run_main(main)
