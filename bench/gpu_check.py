"""The report of ``bench/gpu_check.sh``: its measurements -> the ``peft_cost_cuda`` section.

Usage (the shell script calls it; by hand only to re-render)::

    python bench/gpu_check.py --out DIR [--doc docs/benchmarks.md] [--section peft_cost_cuda]
        [--peak-tflops T] [--dry-run]

Reads what the script left in ``DIR``:

* ``cost.jsonl`` -- ``bench/peft_cost.py --flops`` rows (bf16 step times, memory, inference,
  FLOPs per step); rendered by :func:`bench.peft_cost.render` with the model FLOP utilisation;
* ``ddp.json`` -- ``{"nproc", "backend", "amp", "wall_s"}`` of the ``torchrun ... --ddp`` run
  (bf16 on a GPU), with ``exp/train_done.json`` (steps, training seconds, peak memory);
* ``fp16.json`` -- the same for the one-process fp16 run (a 1-rank group), ``exp_fp16/``;
* ``pretrain.json`` -- ``{"device", "steps", "wall_s"}`` of the BEST-RQ run, with
  ``pretrain/loss.csv`` (every loss must be finite);
* ``extract.json`` -- ``{"wall_s"}`` of the extraction, with ``data/test/wav.scp`` (utterances,
  audio seconds) and ``exp/embeddings/test/xvector.scp`` (every embedding must be finite).

Writes the section into ``--doc`` (``--doc ''``: print only); a missing or inconsistent
input is a one-line error and exit status 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from anywhere

from bench.peft_cost import read_results, render, update_section  # noqa: E402
from spkpeft.bin._cli import run_main  # noqa: E402
from spkpeft.errors import SpkpeftError, file_error  # noqa: E402


def read_json(path: Path) -> dict:
    """A JSON object; a missing or malformed file is an error naming it."""
    if not path.is_file():
        raise file_error(path, "missing (did that part of bench/gpu_check.sh run?)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise file_error(path, f"not JSON ({err})") from None


def audio_seconds(wav_scp: Path) -> tuple[int, float]:
    """(utterances, total seconds) of a data directory's ``wav.scp`` (from the audio headers)."""
    from spkpeft.io.audio import audio_info
    from spkpeft.io.datadir import read_key_value

    wav = read_key_value(wav_scp, rest_of_line=True)
    total = 0.0
    for path in wav.values():
        info = audio_info(path)
        total += info.frames / info.samplerate
    return len(wav), total


def ddp_lines(out: Path, run: str = "ddp", exp: str = "exp") -> list[str]:
    """A torchrun training run: processes, backend, precision, steps, step rate, peak memory."""
    ddp, done = read_json(out / f"{run}.json"), read_json(out / exp / "train_done.json")
    steps, seconds = done["steps"], done["train_seconds"]
    return [f"- **training ({ddp.get('amp', 'bf16')})**: `torchrun --standalone --nproc_per_node {ddp['nproc']}` "
            f"({ddp['backend']}, process group and DDP even for one process: `--ddp`) `spkpeft.bin.train` for "
            f"{done['epochs']} epoch(s), {steps} optimizer steps in {seconds:.1f} s of training "
            f"({steps / max(seconds, 1e-9):.2f} steps/s; whole command {ddp['wall_s']:.1f} s), peak memory "
            f"{done['peak_memory_mb']:.0f} MB per process."]


def pretrain_lines(out: Path) -> list[str]:
    """The BEST-RQ run: steps, time per step, first and last loss (all finite)."""
    run = read_json(out / "pretrain.json")
    curve = out / "pretrain" / "loss.csv"
    if not curve.is_file():
        raise file_error(curve, "missing (did the pre-training run?)")
    losses = [float(line.split(",")[1]) for line in curve.read_text().splitlines()[1:]]
    if len(losses) != run["steps"] or not np.isfinite(losses).all():
        raise file_error(curve, f"{len(losses)} finite losses expected {run['steps']}")
    return [f"- **pre-training**: `spkpeft.bin.pretrain --device {run['device']}` (BEST-RQ, random:tiny_wavlm), "
            f"{run['steps']} steps in {run['wall_s']:.1f} s, model build included; loss {losses[0]:.3f} -> "
            f"{losses[-1]:.3f}, every loss finite."]


def extract_lines(out: Path) -> list[str]:
    """The extraction: utterances and audio seconds per second of wall clock; embeddings finite."""
    from spkpeft.tasks.sv.scoring import load_embeddings

    ext = read_json(out / "extract.json")
    n, seconds = audio_seconds(out / "data" / "test" / "wav.scp")
    embeddings = load_embeddings([out / "exp" / "embeddings" / "test" / "xvector.scp"])
    if len(embeddings) != n:
        raise SpkpeftError(f"{out}: {len(embeddings)} embeddings for {n} utterances")
    if not all(np.isfinite(v).all() for v in embeddings.values()):
        raise SpkpeftError(f"{out / 'exp' / 'embeddings' / 'test' / 'xvector.scp'}: non-finite embedding")
    return [f"- **extraction**: `spkpeft.bin.extract --device {ext['device']}` of {n} utterances "
            f"({seconds:.0f} s of audio) in {ext['wall_s']:.1f} s, model load included "
            f"({seconds / max(ext['wall_s'], 1e-9):.0f} s of audio per second); every embedding finite."]


def report(out: Path, peak: float | None, dry_run: bool) -> str:
    """The whole section: the PEFT cost tables (with utilisation), then DDP and extraction."""
    results = read_results(str(out / "cost.jsonl"))
    if not results:
        raise file_error(out / "cost.jsonl", "no bench/peft_cost.py rows")
    lines = [render(results, None, peak).rstrip(), "", "### GPU check (`bench/gpu_check.sh`)", ""]
    if dry_run:
        lines += ["**Dry run on the CPU** (`--device cpu --dry-run true`): tiny settings that only exercise "
                  "the script; none of these numbers is a measurement of a GPU.", ""]
    lines += ddp_lines(out) + ddp_lines(out, "fp16", "exp_fp16") + pretrain_lines(out) + extract_lines(out) + [""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="the directory bench/gpu_check.sh wrote")
    parser.add_argument("--doc", default=str(REPO / "docs" / "benchmarks.md"), help="Markdown file ('': print only)")
    parser.add_argument("--section", default="peft_cost_cuda")
    parser.add_argument("--peak-tflops", type=float, default=None, help="GPU peak (default: by GPU name)")
    parser.add_argument("--dry-run", action="store_true", help="label the section as a CPU dry run")
    args = parser.parse_args(argv)
    text = report(args.out, args.peak_tflops, args.dry_run)
    print(text)
    if args.doc:
        update_section(Path(args.doc), args.section, text)
    return 0


if __name__ == "__main__":
    run_main(main)
