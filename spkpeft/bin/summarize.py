"""Print the parameter budget of a config as one JSON object.

    python -m spkpeft.bin.summarize --config conf/lora.yaml [--upstream random:tiny_wavlm]

Output (one line on stdout)::

    {"upstream": NAME, "upstream_params": N, "trainable": {"peft": N, "aggregation": N, "head": N},
     "trainable_pct": P}

``upstream_params`` counts the bare upstream; ``trainable_pct`` is the share (in percent)
of trainable parameters among all parameters of the model (bare upstream, PEFT-added
modules, aggregation and head).
"""

from __future__ import annotations

import argparse
import json
from typing import Sequence

from spkpeft.bin._cli import run_main
from spkpeft.config import load_config


def summarize(config: str, upstream: str | None = None) -> dict:
    """The summary dict of ``config`` (``upstream`` overrides ``upstream.name``)."""
    from spkpeft.model import build_model

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
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="summarize", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="YAML config file")
    parser.add_argument("--upstream", default=None, help="override upstream.name (hub name, checkpoint path or random:<arch>)")
    args = parser.parse_args(argv)
    print(json.dumps(summarize(args.config, args.upstream)))
    return 0


if __name__ == "__main__":
    run_main(main)
