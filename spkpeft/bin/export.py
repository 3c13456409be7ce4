"""Export a trained experiment as a self-contained package (see :mod:`spkpeft.inference.package`).

Usage::

    python -m spkpeft.bin.export --exp EXP --out DIR [--adapter-only] [--onnx] [--checkpoint best|last|avg|PATH]

Full package (default): resolved config, merged weights and the upstream's checkpoint file;
``--adapter-only``: only the trained parameters plus the upstream's name and checksum (the
upstream is found by name when loading, and refused when its checksum differs).  ``--onnx``
adds ``model.onnx`` (dynamic batch and length axes) and checks it against PyTorch with
onnxruntime (the largest difference is printed; an error at 1e-4 or more).  Prints the
package's size on stdout.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence

from spkpeft.bin._cli import run_main
from spkpeft.errors import SpkpeftError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--exp", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path, help="package directory to write (an older package there is replaced)")
    parser.add_argument("--adapter-only", action="store_true", help="only the trained parameters + upstream name and checksum")
    parser.add_argument("--onnx", action="store_true", help="also model.onnx, checked against PyTorch with onnxruntime")
    parser.add_argument("--checkpoint", default=None, help="best | last | avg | a path (default: extract.checkpoint)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    if args.onnx and args.adapter_only:
        raise SpkpeftError("--onnx exports the whole merged model; use it without --adapter-only")

    from spkpeft.inference.onnx_export import package_onnx
    from spkpeft.inference.package import export_package, package_bytes

    info = export_package(args.exp, args.out, args.adapter_only, args.checkpoint,
                          extra=package_onnx if args.onnx else None)
    size = package_bytes(info)
    if "onnx" in info:
        print(f"onnx ({info['onnx']['exporter']} exporter): {info['onnx']['file']}: largest |onnx - pytorch| output difference "
              f"{info['onnx']['max_abs_diff']:.3g} (lengths {', '.join(f'{s:g}' for s in info['onnx']['check_seconds'])} s)")
    print(f"{info['kind']} package {args.out}: {size} bytes ({size / 2**20:.2f} MiB), task {info['task']}, "
          f"method {info['method']}, upstream {info['upstream']['name']} sha256 {info['upstream']['sha256'][:16]}")
    return 0


if __name__ == "__main__":
    run_main(main)
