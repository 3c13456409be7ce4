"""Print one value of a resolved config (for shell recipes).

Usage::

    python -m spkpeft.bin.config_value --config conf/cls/mini.yaml task.type      # -> cls

The config is read strictly (``base:`` chain, unknown keys are errors); the key is dotted.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

from spkpeft.bin._cli import run_main
from spkpeft.errors import SpkpeftError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("key", help="dotted key, e.g. task.type")
    args = parser.parse_args(argv)
    from spkpeft.tasks.config import config_to_dict, load_config

    value = config_to_dict(load_config(args.config))
    for part in args.key.split("."):
        if not isinstance(value, dict) or part not in value:
            raise SpkpeftError(f"{args.config}: no key '{args.key}'")
        value = value[part]
    print(value)
    return 0


if __name__ == "__main__":
    run_main(main)
