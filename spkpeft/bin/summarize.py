"""Print the parameter budget of a config as one JSON object.

    python -m spkpeft.bin.summarize --config conf/lora.yaml [--upstream random:tiny_wavlm] [--frames 300]

Output (one line on stdout)::

    {"upstream": NAME, "upstream_params": N, "trainable": {"peft": N, "aggregation": N, "head": N},
     "trainable_pct": P,
     "head_cost": {"params": N, "macs": N, "plain_params": N, "plain_macs": N, "num_frames": T}}

``upstream_params`` counts the bare upstream; ``trainable_pct`` is the share (in percent)
of trainable parameters among all parameters of the model (bare upstream, PEFT-added
modules, aggregation and head).  ``head_cost`` gives the head's trainable parameters and
multiply-accumulates for one utterance of ``--frames`` upstream frames
(:func:`spkpeft.nn.heads.count_macs`), next to those of the plain head: the same ``head:``
config with ``transform: none`` (equal to the former when the transform is off).
"""

from __future__ import annotations

import argparse
import json
from typing import Sequence

from spkpeft.bin._cli import run_main
from spkpeft.tasks.config import load_config
from spkpeft.errors import SpkpeftError

DEFAULT_FRAMES = 300


def summarize(config: str, upstream: str | None = None, num_frames: int = DEFAULT_FRAMES) -> dict:
    """The summary dict of ``config`` (``upstream`` overrides ``upstream.name``)."""
    from spkpeft.nn.heads import head_cost_vs_plain
    from spkpeft.nn.model import build_model

    overrides = {"upstream.name": upstream} if upstream else None
    cfg = load_config(config, overrides)
    model = build_model(cfg)
    counts = model.param_counts()
    trainable = {key: counts[key] for key in ("peft", "aggregation", "head")}
    return {
        "upstream": cfg.upstream.name,
        "upstream_params": counts["upstream"],
        "trainable": trainable,
        "trainable_pct": 100.0 * sum(trainable.values()) / counts["total"],
        "head_cost": head_cost_vs_plain(cfg.head, model.aggregation.output_dim, num_frames, head=model.head),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="summarize", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="YAML config file")
    parser.add_argument("--upstream", default=None, help="override upstream.name (hub name, checkpoint path or random:<arch>)")
    parser.add_argument("--frames", type=int, default=DEFAULT_FRAMES, help="utterance length in upstream frames for the head's MAC count (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.frames < 1:
        raise SpkpeftError(f"--frames must be a positive integer, got {args.frames}.")
    print(json.dumps(summarize(args.config, args.upstream, args.frames)))
    return 0


if __name__ == "__main__":
    run_main(main)
