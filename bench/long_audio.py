"""Peak memory of stage 4 on one long recording: an hour-long file through extraction.

Run by hand (not part of the tests)::

    .venv/bin/python bench/long_audio.py [--seconds 3600] [--config conf/sv/mini.yaml]
        [--roots BEFORE_CHECKOUT ...] [--doc docs/benchmarks.md]

A ``--seconds`` long 16 kHz 16-bit WAV of noise (115 MB for an hour) is written once, one
second at a time, in a temporary directory, with a one-utterance data directory.  Each
``--roots`` checkout (default: this one) then runs, in a process of its own, the model of
``--config`` (its upstream with random weights, as ``build_model`` makes it; one torch
thread) through ``spkpeft.engine.extract.extract_data_dir`` with the config's ``extract``
section (20 s chunks, 120 s of padded audio per batch), and reports its peak resident set
size (``ru_maxrss``), the same after only building the model (the baseline), and the wall
time.  Extraction reads the file chunk by chunk, so the peak stays the model plus one
batch; a checkout that decodes the whole file first adds its float32 samples (230 MB an hour).
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


def measure(root: str, config: str, data: Path, out: Path, extract: bool) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": root}
    res = subprocess.run([sys.executable, __file__, "--child", root, config, str(data), str(out),
                          "1" if extract else "0"], capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise SystemExit(f"{root}: {res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6] == "1")
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=3600)
    parser.add_argument("--config", default=str(REPO / "conf" / "sv" / "mini.yaml"))
    parser.add_argument("--roots", nargs="+", default=[str(REPO)], help="checkouts to measure")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        wav = tmp / "long.wav"
        write_long_wav(wav, args.seconds)
        data = tmp / "data"
        data.mkdir()
        (data / "wav.scp").write_text(f"long {wav}\n")
        (data / "utt2spk").write_text("long long\n")
        (data / "spk2utt").write_text("long long\n")
        rows = []
        for i, root in enumerate(args.roots):
            base = measure(root, args.config, data, tmp / f"out{i}", extract=False)
            run = measure(root, args.config, data, tmp / f"out{i}", extract=True)
            rows.append({"root": root, "seconds_of_audio": args.seconds, "model_only_rss_mb": round(base["peak_rss_mb"]),
                         "extraction_peak_rss_mb": round(run["peak_rss_mb"]), "extraction_seconds": run["seconds"],
                         "load": round(os.getloadavg()[0], 1)})
            print(json.dumps(rows[-1]), flush=True)


if __name__ == "__main__":
    main()
