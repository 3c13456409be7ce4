"""Test-only: in a subprocess of the fast tier (``tests/run.sh --fast``), record which spkpeft
modules it imported, appended at exit to ``$SPKPEFT_IMPORT_LOG`` (conftest.run puts this
directory on ``PYTHONPATH`` only then), so that the tier can check it covers every module."""

import atexit
import os
import sys


def _record() -> None:
    path = os.environ.get("SPKPEFT_IMPORT_LOG")
    if not path:
        return
    names = sorted(n for n in sys.modules if n == "spkpeft" or n.startswith("spkpeft."))
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and (spec.name or "").startswith("spkpeft"):
        names.append(spec.name)  # python -m spkpeft.bin.tool runs the tool as __main__
    try:
        with open(path, "a", encoding="utf-8") as log:
            log.write("".join(f"{n}\n" for n in names))
    except OSError:
        pass


atexit.register(_record)
