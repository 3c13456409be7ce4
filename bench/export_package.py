"""Exported packages: sizes (full vs adapter-only), export times, ONNX agreement, reload.

Run by hand (not part of the tests)::

    .venv/bin/python bench/export_package.py [--runs CONFIG@UPSTREAM[@CORPUS] ...] [--threads T] [--doc docs/benchmarks.md]

For every run (default: ``conf/sv/mini.yaml``, ``conf/sv/lora.yaml`` and ``conf/cls/mini.yaml``
on ``random:tiny_wavlm``, ``conf/sv/lora.yaml`` on ``random:tiny_wav2vec2`` and
``random:tiny_hubert``, ``conf/cm/mini.yaml`` (fbank), and ``conf/sv/lora.yaml`` on
``random:wavlm_base_plus``) the script trains one epoch on a small synthetic corpus
(``CORPUS``: ``mini`` speakers, the default; ``mini_cls`` sound classes; ``mini_cm`` bona fide
and spoofed speech; the weights' values do not matter here, their number does), then times
``spkpeft.bin.export`` for a full package with ``--onnx`` and for an adapter-only one, and
records the packages' sizes, the ONNX exporter used and its largest absolute output
difference to PyTorch (:func:`spkpeft.inference.onnx_export.check_onnx`), and the largest
difference between the outputs of the experiment and of each reloaded package on the test
files.  Prints a Markdown table and the machine, and puts them in the ``export`` section of
``--doc`` (``--doc ''``: print only).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
import spkpeft  # noqa: E402
from bench.peft_cost import update_section  # noqa: E402
from spkpeft.data.synth import CorpusSpec, write_corpus  # noqa: E402
from spkpeft.data.synth_sounds import ClsCorpusSpec, write_cls_corpus  # noqa: E402
from spkpeft.data.synth_spoof import CmCorpusSpec, write_cm_corpus  # noqa: E402
from spkpeft.inference.onnx_export import package_onnx  # noqa: E402
from spkpeft.inference.package import export_package, package_bytes  # noqa: E402
from spkpeft.io.datadir import read_data_dir, write_data_dir  # noqa: E402
from spkpeft.tasks.base import get_task  # noqa: E402
from spkpeft.tasks.experiment import prepare_experiment  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_RUNS = ["conf/sv/mini.yaml@random:tiny_wavlm", "conf/sv/lora.yaml@random:tiny_wavlm",
                "conf/sv/lora.yaml@random:tiny_wav2vec2", "conf/sv/lora.yaml@random:tiny_hubert",
                "conf/cls/mini.yaml@random:tiny_wavlm@mini_cls", "conf/cm/mini.yaml@fbank@mini_cm",
                "conf/sv/lora.yaml@random:wavlm_base_plus"]
SMALL = """
data: {crop_seconds: 0.5, batch_size: 8, num_workers: 0}
train: {epochs: 1, save_every_steps: 0, log_every_steps: 0}
"""


def prepare(script: str, raw: Path, out: Path) -> None:
    subprocess.run([sys.executable, str(REPO / "local" / script), str(raw), str(out)], check=True, capture_output=True)


def mini_corpus(root: Path) -> tuple[Path, Path, Path | None]:
    """Speakers in the VoxCeleb1 layout: ``(train, test, no dev)``."""
    write_corpus(root / "raw", CorpusSpec(n_train_spk=4, n_test_spk=2, n_sessions=2, n_utts=2, min_dur=1.0, max_dur=2.0))
    prepare("prepare_voxceleb1.py", root / "raw", root / "data")
    return root / "data" / "train", root / "data" / "test", None


def mini_cm_corpus(root: Path) -> tuple[Path, Path, Path | None]:
    """Bona fide and spoofed speech in the ASVspoof 2019 LA layout: ``(train, eval, dev)``."""
    write_cm_corpus(root / "raw", CmCorpusSpec(n_train=16, n_dev=8, n_eval=8, n_train_spk=2, n_dev_spk=2,
                                               n_eval_spk=2, bonafide_frac=0.5, min_dur=1.0, max_dur=2.0))
    prepare("prepare_asvspoof2019_la.py", root / "raw", root / "data")
    return root / "data" / "train", root / "data" / "eval", root / "data" / "dev"


def mini_cls_corpus(root: Path) -> tuple[Path, Path, Path | None]:
    """Sound classes: ``(train, test, dev)``."""
    write_cls_corpus(root / "raw", ClsCorpusSpec(classes=("flute", "rain", "knock"), n_train=4, n_dev=2, n_test=2, seconds=1.0))
    for name in ("train", "dev", "test"):
        wav = dict(line.split(maxsplit=1) for line in (root / "raw" / name / "wav.scp").read_text().splitlines())
        labels = dict(line.split() for line in (root / "raw" / name / "utt2label").read_text().splitlines())
        write_data_dir(root / name, wav, {u: u for u in wav}, labels)
    return root / "train", root / "test", root / "dev"


#: the small synthetic corpora a run may name (``CONFIG@UPSTREAM@CORPUS``)
CORPORA = {"mini": mini_corpus, "mini_cls": mini_cls_corpus, "mini_cm": mini_cm_corpus}


def outputs(model, paths: list[str]) -> np.ndarray:
    return model.outputs(paths)


def one_run(spec: str, work: Path) -> dict:
    config, upstream, corpus = (spec.split("@") + ["mini"])[:3]
    if corpus not in CORPORA:
        raise SystemExit(f"{spec}: unknown corpus '{corpus}' (expected one of: {', '.join(CORPORA)})")
    overrides = SMALL if upstream == "fbank" else SMALL + f"upstream: {{name: '{upstream}'}}\n"
    if corpus == "mini":  # 4 training speakers: none to spare for validation
        overrides += "task: {val_speakers: 0, val_utts_per_speaker: 0}\n"
    work.mkdir(parents=True)
    yaml_file = work / "config.yaml"
    yaml_file.write_text(f"base: {REPO / config}\n" + overrides)
    exp = work / "exp"
    cfg = prepare_experiment(yaml_file, exp)
    train, test, dev = CORPORA[corpus](work / "data")
    get_task(cfg).train(cfg, train, exp, dev_dir=dev)
    paths = list(read_data_dir(test).wav.values())
    reference = outputs(spkpeft.load(exp), paths)
    row = {"config": config, "upstream": upstream, "method": cfg.peft.method}
    for kind, adapter_only in (("full", False), ("adapter-only", True)):
        start = time.perf_counter()
        info = export_package(exp, work / kind, adapter_only, extra=None if adapter_only else package_onnx)
        row[f"{kind} s"] = time.perf_counter() - start
        row[f"{kind} MiB"] = package_bytes(info) / 2**20
        if not adapter_only:
            row["onnx MiB"] = info["files"]["model.onnx"]["bytes"] / 2**20
            row["onnx exporter"] = info["onnx"]["exporter"]
            row["onnx max diff"] = info["onnx"]["max_abs_diff"]
        row[f"{kind} reload diff"] = float(np.max(np.abs(outputs(spkpeft.load(work / kind), paths) - reference)))
    return row


def table(rows: list[dict]) -> str:
    head = ("| config | upstream | method | full MiB (without ONNX) | ONNX MiB | adapter-only MiB | full / adapter-only | "
            "export full + ONNX s | export adapter-only s | ONNX exporter | ONNX max abs diff | reload max abs diff (full, adapter-only) |")
    lines = [head, "|---|---|---|---:|---:|---:|---:|---:|---:|---|---:|---|"]
    for r in rows:
        full = r["full MiB"] - r["onnx MiB"]
        lines.append(f"| `{r['config']}` | `{r['upstream']}` | {r['method']} | {full:.2f} | {r['onnx MiB']:.2f} | "
                     f"{r['adapter-only MiB']:.3f} | {full / r['adapter-only MiB']:.1f} | {r['full s']:.1f} | "
                     f"{r['adapter-only s']:.1f} | {r['onnx exporter']} | {r['onnx max diff']:.2g} | "
                     f"{r['full reload diff']:.2g}, {r['adapter-only reload diff']:.2g} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", nargs="+", default=DEFAULT_RUNS, help="CONFIG@UPSTREAM[@CORPUS] (fbank: the config's own; CORPUS mini, mini_cls or mini_cm, default mini)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--doc", default=str(REPO / "docs" / "benchmarks.md"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("SPKPEFT_CACHE", str(Path(tmp) / "cache"))
        for index, spec in enumerate(args.runs):
            rows.append(one_run(spec, Path(tmp) / f"run{index}"))
            print(table(rows[-1:]).splitlines()[-1], flush=True)
    text = ("## Exported packages\n\n`bench/export_package.py` (see its docstring): one training epoch on a small "
            "synthetic corpus, then `export_package` full (with `--onnx`) and adapter-only.  Sizes: every file of "
            "the package (`package.json` aside); the full package holds the upstream's checkpoint file and `model.pt` "
            "(what training changed, merged), `model.onnx` is listed apart.  The adapter-only package is the trained "
            "parameters: with `conf/sv/base.yaml`'s 512-channel ECAPA head (about 6M parameters) the head dominates "
            "it, so the ratio is small for the tiny upstreams and grows with the upstream.  Differences: ONNX vs "
            "PyTorch on 0.5-2.6 s inputs alone and padded together; reloaded package vs experiment on the test files "
            "(stage-4 outputs).\n\n"
            + table(rows) + "\n\nMachine:\n\n"
            f"- CPU: {platform.processor() or platform.machine()}, os.cpu_count() = {os.cpu_count()}, "
            f"torch.get_num_threads() = {torch.get_num_threads()}\n"
            f"- python {platform.python_version()}, torch {torch.__version__}\n")
    print(text)
    if args.doc:
        update_section(Path(args.doc), "export", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
