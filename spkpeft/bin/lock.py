"""The experiment-directory lock of a shell script (run.sh), held in the name of its process.

Usage::

    python -m spkpeft.bin.lock acquire EXP PID     # prints the token to release with
    python -m spkpeft.bin.lock release EXP TOKEN

``acquire`` takes ``EXP/.lock`` for process ``PID`` (the script's ``$$``), or, when the
script runs under a run that holds it (``SPKPEFT_EXP_LOCK``), prints that run's token and
takes nothing; another live run's lock is a one-line error and exit 1.  ``$SPKPEFT_LOCK_COMMAND``
is the command line recorded in the lock file.  See :mod:`spkpeft.io.lock`.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Sequence

from spkpeft.bin._cli import run_main
from spkpeft.io.lock import ENV, ExperimentLock, release_token


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("acquire", "release"))
    parser.add_argument("exp", type=Path, help="experiment directory")
    parser.add_argument("value", help="acquire: the holder's pid; release: the token acquire printed")
    args = parser.parse_args(argv)
    if args.action == "release":
        release_token(args.exp, args.value)
        return 0
    if not args.value.isdigit():
        parser.error(f"acquire takes a pid, got {args.value!r}")
    lock = ExperimentLock(args.exp, pid=int(args.value), command=os.environ.get("SPKPEFT_LOCK_COMMAND"))
    lock.acquire()
    print(lock.token if lock.held else os.environ.get(ENV, ""))
    return 0


if __name__ == "__main__":
    run_main(main)
