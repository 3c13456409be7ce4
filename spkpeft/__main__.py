"""``python -m spkpeft COMMAND ...``: the ``spkpeft`` command (:mod:`spkpeft.cli`)."""

from spkpeft.cli import main

main()
