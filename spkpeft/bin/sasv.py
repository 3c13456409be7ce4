"""Stages 2-6 of a spoof-aware speaker verification experiment (``task: sasv``), a thin CLI over
:class:`spkpeft.tasks.sasv.task.SASVTask`.

Usage::

    python -m spkpeft.bin.sasv check    --config C --corpus D
    python -m spkpeft.bin.sasv fit      --config C --corpus D --exp E --sv SV --cm CM [--device cpu]
    python -m spkpeft.bin.sasv infer    --exp E --corpus D [--device cpu]
    python -m spkpeft.bin.sasv evaluate --exp E --corpus D [--bootstrap 1000]
    python -m spkpeft.bin.sasv report   --exp E --corpus D [--plot-dir DIR]

``D`` is a prepared corpus directory with SASV sets (``data/<corpus>``: ``sasv/<set>.trl``,
``sasv/<set>_enroll/``, the test sets and ``train/``; :mod:`spkpeft.tasks.sasv.data`).  ``SV`` and
``CM`` are a trained speaker-verification and a trained countermeasure experiment directory, or
exported packages of either (``spkpeft.bin.export``).  ``fit`` (stage 3) writes ``E/config.yaml``
(``C`` resolved; a different config in an existing ``E`` is refused), runs both models on the
training and development data and fits the fusions on the development trials; ``infer`` (stage 4)
scores every trial of every set; ``evaluate`` (stage 5) writes ``E/results.json`` and prints it;
``report`` (stage 6) prints the tables and draws the DET plots.  Errors: one line naming the file
(and line), exit status 1.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Sequence

from spkpeft.bin._cli import run_main
from spkpeft.errors import SpkpeftError
from spkpeft.inference.package import load_any
from spkpeft.tasks.base import get_task
from spkpeft.tasks.experiment import prepare_experiment, read_experiment_config
from spkpeft.tasks.config import load_config
from spkpeft.tasks.sasv.task import Component


def loader(device: str):
    """``path -> Component``: an experiment directory or an exported package, loaded for inference."""
    def load(path: str) -> Component:
        loaded = load_any(path, None, device)
        source = {"path": str(Path(path).resolve()), "kind": loaded.kind, **loaded.info}
        return Component(loaded.model, loaded.cfg.task.type, Path(loaded.directory), source, loaded.mean)
    return load


def sasv_task(cfg):
    task = get_task(cfg)
    if not hasattr(task, "fit"):
        raise SpkpeftError(f"task '{cfg.task.type}' is not a fusion task (expected task.type sasv)")
    return task


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sasv", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="stage 2: the SASV sets of a corpus directory")
    check.add_argument("--config", required=True, type=Path)
    check.add_argument("--corpus", required=True, type=Path)
    fit = sub.add_parser("fit", help="stage 3: component outputs on train/dev, fusions fitted on dev")
    fit.add_argument("--config", required=True, type=Path)
    for name, help_text in (("infer", "stage 4: scores of every trial"), ("evaluate", "stage 5: results.json"),
                            ("report", "stage 6: tables and DET plots")):
        sub.add_parser(name, help=help_text)
    for name, p in sub.choices.items():
        if name != "check":
            p.add_argument("--exp", required=True, type=Path)
            p.add_argument("--corpus", required=True, type=Path)
        if name in ("fit", "infer"):
            p.add_argument("--device", default="cpu")
    fit.add_argument("--sv", required=True, help="speaker-verification experiment directory or package")
    fit.add_argument("--cm", required=True, help="countermeasure experiment directory or package")
    sub.choices["evaluate"].add_argument("--bootstrap", type=int, default=1000,
                                         help="speaker-bootstrap draws for the 95 %% intervals (0: none)")
    sub.choices["report"].add_argument("--plot-dir", type=Path, default=None, help="default EXP/plots")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "check":
        cfg = load_config(args.config)
        sets = sasv_task(cfg).check_corpus(cfg, args.corpus)
        for name, (protocol, enroll, _) in sets.items():
            print(f"{args.corpus / 'sasv' / (name + '.trl')}: {len(protocol.utts)} trials, "
                  f"{len(enroll.spk2utt)} enrolled speakers: OK")
        return 0
    if args.command == "fit":
        cfg = prepare_experiment(args.config, args.exp)
        done = sasv_task(cfg).fit(cfg, args.exp, args.corpus, loader(args.device), args.sv, args.cm, args.device)
        print(json.dumps(done))
        return 0
    cfg = read_experiment_config(args.exp)
    task = sasv_task(cfg)
    if args.command == "infer":
        for name, n in task.infer(cfg, args.exp, args.corpus, loader(args.device), args.device).items():
            print(f"{name}: {n} trials scored")
    elif args.command == "evaluate":
        print(json.dumps(task.evaluate(cfg, args.exp, args.corpus, args.bootstrap), indent=1))
    else:
        text, plots = task.report(args.exp, args.corpus, args.plot_dir)
        print(text)
        print(f"plots: {len(plots)} in {plots[0].parent if plots else '-'}")
    return 0


if __name__ == "__main__":
    run_main(main)
