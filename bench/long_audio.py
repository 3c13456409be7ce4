"""Peak memory of stage 4 on one long recording: an hour-long file through extraction.

Run by hand (not part of the tests)::

    .venv/bin/python bench/long_audio.py [--seconds 120 600 3600] [--configs conf/sv/mini.yaml ...]
        [--roots BEFORE_CHECKOUT THIS_CHECKOUT] [--results FILE.jsonl] [--doc docs/benchmarks.md]

For each ``--seconds`` a 16 kHz 16-bit WAV of noise (115 MB for an hour) is written, one
second at a time, in a temporary directory, with a one-utterance data directory.  Each
``--roots`` checkout (default: this one) then runs, in a process of its own, the model of
each ``--configs`` config (its upstream with random weights, as ``build_model`` makes it;
one torch thread) through ``spkpeft.engine.extract.extract_data_dir`` with the config's
``extract`` section (20 s chunks, 120 s of padded audio per batch), and reports its peak
resident set size (``ru_maxrss``), the same after only building the model (the baseline),
and the wall time.  Rows are appended to ``--results``; ``--doc`` writes the section
``long_audio`` of the benchmarks file from all rows of ``--results``.  A checkout that
decodes the whole file before chunking holds its float32 samples too (230 MB an hour); one
that reads chunks as the batches need them holds one batch.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def child(root: str, config: str, data: str, out: str, extract: bool) -> None:
    """In a fresh process: build the model and (with ``extract``) run stage 4; print a JSON line."""
    sys.path.insert(0, root)
    import torch

    torch.set_num_threads(1)
    from spkpeft.engine.extract import extract_data_dir
    from spkpeft.tasks.base import get_task
    from spkpeft.tasks.config import load_config

    cfg = load_config(config)
    model = get_task(cfg).inference_model(cfg, None).eval()
    start = time.time()
    if extract:
        extract_data_dir(model, data, out, cfg.extract, torch.device("cpu"), {"bench": 1})
    print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "seconds": round(time.time() - start, 1)}))


def write_long_wav(path: Path, seconds: int) -> None:
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", 16000, 1, subtype="PCM_16") as handle:
        for _ in range(seconds):
            handle.write(rng.uniform(-0.3, 0.3, 16000).astype(np.float32))


#: glibc's mmap threshold pinned at 128 kB (its default is dynamic: after large blocks are freed it
#: rises, and later large blocks come from the heap, whose freed pages the process keeps)
FIXED_MMAP = {"MALLOC_MMAP_THRESHOLD_": "131072"}


def measure(root: str, config: str, data: Path, out: Path, extract: bool, fixed_mmap: bool = False) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": root, **(FIXED_MMAP if fixed_mmap else {})}
    res = subprocess.run([sys.executable, __file__, "--child", root, config, str(data), str(out),
                          "1" if extract else "0"], capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise SystemExit(f"{root}: {res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def render(rows: list[dict]) -> str:
    """The ``long_audio`` section of docs/benchmarks.md."""
    lines = ["## Long recordings at extraction (peak memory)", "",
             "`bench/long_audio.py`: one recording of the given length through stage 4 "
             "(`extract_data_dir`, 20 s chunks, 120 s of audio per batch, one torch thread), peak RSS of "
             "the process; *model only*: the same process after building the model. `before`: the "
             "checkout before issue 27 (it decodes the whole file, then chunks it); `after`: chunks read "
             "as the batches need them.", "",
             "| config | malloc | audio | checkout | model only (MB) | extraction peak (MB) | peak - model (MB) | "
             "extraction (s) | load |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        minutes = r["seconds_of_audio"] / 60
        lines.append(f"| `{r['config']}` | {r.get('allocator', 'default')} | {minutes:g} min | {r['checkout']} | "
                     f"{r['model_only_rss_mb']} | "
                     f"{r['extraction_peak_rss_mb']} | {r['extraction_peak_rss_mb'] - r['model_only_rss_mb']} | "
                     f"{r['extraction_seconds']} | {r['load']} |")
    lines += ["", "Times are wall seconds on the shared 2-core machine under the load shown (other jobs "
              "running): compare the memory columns.  An hour of float32 samples is 230 MB.  Command: "
              "`bench/long_audio.py --seconds 3600 --configs conf/sv/mini_fbank.yaml --roots BEFORE_CHECKOUT . "
              "--results bench/results/long_audio.jsonl --doc docs/benchmarks.md` (OMP_NUM_THREADS=1)."]
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6] == "1")
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, nargs="*", default=[3600],
                        help="recording lengths; none: only write --doc from --results")
    parser.add_argument("--configs", nargs="+", default=["conf/sv/mini.yaml"], help="relative to this checkout")
    parser.add_argument("--roots", nargs="+", default=[str(REPO)], help="checkouts to measure")
    parser.add_argument("--fixed-mmap-threshold", action="store_true",
                        help="run the children with MALLOC_MMAP_THRESHOLD_=131072 (see FIXED_MMAP)")
    parser.add_argument("--results", type=Path, default=None, help="jsonl file the rows are appended to")
    parser.add_argument("--doc", type=Path, default=None, help="write the long_audio section of this file")
    args = parser.parse_args()
    rows = []
    for seconds in args.seconds:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            wav = tmp / "long.wav"
            write_long_wav(wav, seconds)
            data = tmp / "data"
            data.mkdir()
            (data / "wav.scp").write_text(f"long {wav}\n")
            (data / "utt2spk").write_text("long long\n")
            (data / "spk2utt").write_text("long long\n")
            for config in args.configs:
                for i, root in enumerate(args.roots):
                    fixed = args.fixed_mmap_threshold
                    base = measure(root, str(REPO / config), data, tmp / f"out{i}", False, fixed)
                    run = measure(root, str(REPO / config), data, tmp / f"out{i}", True, fixed)
                    rows.append({"config": config, "checkout": "after" if Path(root).resolve() == REPO else "before",
                                 "allocator": "mmap threshold 128 kB" if fixed else "default",
                                 "root": root, "seconds_of_audio": seconds,
                                 "model_only_rss_mb": round(base["peak_rss_mb"]),
                                 "extraction_peak_rss_mb": round(run["peak_rss_mb"]),
                                 "extraction_seconds": run["seconds"], "load": round(os.getloadavg()[0], 1)})
                    print(json.dumps(rows[-1]), flush=True)
                    if args.results:
                        with open(args.results, "a", encoding="utf-8") as handle:
                            handle.write(json.dumps(rows[-1]) + "\n")
    if args.doc:
        from bench.peft_cost import update_section

        if args.results:
            rows = [json.loads(line) for line in args.results.read_text().splitlines() if line.strip()]
        rows.sort(key=lambda r: (r["config"], r.get("allocator", "default") != "default", r["seconds_of_audio"],
                                 r["checkout"] != "before"))
        update_section(args.doc, "long_audio", render(rows))


if __name__ == "__main__":
    main()
