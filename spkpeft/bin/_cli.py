"""Shared entry-point wrapper for the command-line tools."""

from __future__ import annotations

import sys
from typing import Callable, Sequence

from spkpeft.errors import SpkpeftError


def one_line(err: BaseException) -> str:
    """The user-facing line of an error.

    An error raised in a DataLoader worker comes back as ``Caught SpkpeftError in
    DataLoader worker ... Original Traceback ...``: its last line holds the
    original message.
    """
    message = str(err).strip()
    if "Original Traceback" in message:
        message = message.splitlines()[-1]
        prefix = f"{type(err).__module__}.{type(err).__name__}: "
        message = message[len(prefix):] if message.startswith(prefix) else message
    return " ".join(message.split("\n"))


def run_main(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None) -> None:
    """Run ``main`` and exit; a :class:`SpkpeftError` becomes one line on stderr and exit 1."""
    try:
        code = main(argv)
    except SpkpeftError as err:
        module = getattr(main, "__module__", "spkpeft")
        if module == "__main__":  # python -m spkpeft.bin.tool or a script
            spec = getattr(sys.modules["__main__"], "__spec__", None)
            module = spec.name if spec else sys.argv[0].rsplit("/", 1)[-1].removesuffix(".py")
        prog = module.rsplit(".", 1)[-1]
        print(f"{prog}: error: {one_line(err)}", file=sys.stderr)
        sys.exit(1)
    except BrokenPipeError:  # e.g. `... | head`
        sys.exit(0)
    sys.exit(code or 0)
