"""The ``spkpeft`` command (``pip install -e .`` installs it; ``python -m spkpeft`` is the same):
one entry point whose subcommands are the tools of :mod:`spkpeft.bin`.

Usage::

    spkpeft infer --model EXP_OR_PACKAGE embed a.wav b.wav
    spkpeft export --exp EXP --out DIR [--onnx]
    spkpeft compute-metrics --trials T --scores S [--json]
    spkpeft COMMAND --help

``spkpeft <command> ARGS`` runs ``python -m spkpeft.bin.<command with _ for -> ARGS`` in the same
process (the same options, outputs and exit status; errors are one line on stderr naming the
command).  ``spkpeft --help`` lists the commands with the first line of each tool's docstring.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import pkgutil
import sys
from pathlib import Path
from typing import Sequence

from spkpeft.bin._cli import run_main

PROG = "spkpeft"


def commands() -> dict[str, str]:
    """``{command: module}`` of every tool in :mod:`spkpeft.bin` (``validate_data_dir`` ->
    ``validate-data-dir``), sorted."""
    import spkpeft.bin

    names = sorted(m.name for m in pkgutil.iter_modules(spkpeft.bin.__path__) if not m.name.startswith("_"))
    return {name.replace("_", "-"): name for name in names}


def summary(module: str) -> str:
    """The first line of a tool's docstring, read from its source (no import: fast)."""
    spec = importlib.util.find_spec(f"spkpeft.bin.{module}")
    source = Path(spec.origin).read_text(encoding="utf-8") if spec and spec.origin else ""
    doc = ast.get_docstring(ast.parse(source)) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def usage() -> str:
    table = commands()
    width = max(map(len, table))
    lines = [f"usage: {PROG} COMMAND [options]   ({PROG} COMMAND --help for a command's options)", "", "commands:"]
    lines += [f"  {name:<{width}}  {summary(module)}" for name, module in table.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Run ``spkpeft COMMAND ARGS`` (see the module docstring); exits with the tool's status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help"):
        print(usage())
        sys.exit(0)
    table = commands()
    if not args or args[0] not in table:
        what = f"unknown command '{args[0]}'" if args else "a command is required"
        print(f"{PROG}: error: {what} (expected one of: {', '.join(table)})\n\n{usage()}", file=sys.stderr)
        sys.exit(1)
    module = importlib.import_module(f"spkpeft.bin.{table[args[0]]}")
    sys.argv[0] = f"{PROG} {args[0]}"  # argparse's usage lines name the subcommand
    run_main(module.main, args[1:])


if __name__ == "__main__":
    main()
