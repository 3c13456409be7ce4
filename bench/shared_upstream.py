"""What one shared upstream forward saves a SASV system: SV + CM outputs with two upstream passes or one.

Run by hand (not part of the tests)::

    .venv/bin/python bench/shared_upstream.py [--upstreams random:tiny_wavlm random:wavlm_base_plus]
        [--utterances 8] [--seconds 4] [--rounds 5] [--threads 1] [--doc docs/benchmarks.md]

For each upstream, a speaker-verification model (``conf/sv/frozen.yaml``: frozen upstream,
weighted sum, ECAPA-TDNN) and a countermeasure model (``conf/cm/frozen.yaml``: frozen
upstream, weighted sum, attentive statistics pooling, 2-class layer) on the same upstream
compute, for ``--utterances`` random utterances of ``--seconds`` each, what the SASV task
needs per utterance (:class:`spkpeft.tasks.sasv.inference.SasvOutputs`: SV embedding, CM
embedding, CM score) through stage 4's batching (:func:`spkpeft.engine.extract.embed_utterances`,
``extract.batch_seconds`` 120):

* **two passes**: each model runs its own upstream (``share=False``);
* **one pass**: the upstream runs once, both aggregations and heads on its hidden states
  (``share=True``, :class:`spkpeft.nn.shared_upstream.SharedUpstream`).

Time: process CPU seconds (``time.process_time``, ``--threads`` torch threads: robust on a
shared machine), median over ``--rounds`` rounds, the two variants alternating within each
round after one warm-up of each; ``torch.inference_mode``.  The outputs of both variants are
compared (they must be equal bit for bit).  Writes the ``shared_upstream`` section of ``--doc``
(other sections kept; ``--doc ''``: print only).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from anywhere
from bench.peft_cost import update_section  # noqa: E402
from spkpeft.engine.extract import ExtractConfig, embed_utterances  # noqa: E402
from spkpeft.nn.model import build_model  # noqa: E402
from spkpeft.tasks.cm.task import build_cm_model  # noqa: E402
from spkpeft.tasks.config import load_config  # noqa: E402
from spkpeft.tasks.sasv.inference import SasvOutputs  # noqa: E402

SV_CONFIG, CM_CONFIG = "conf/sv/frozen.yaml", "conf/cm/frozen.yaml"


def build_pair(upstream: str) -> tuple[torch.nn.Module, torch.nn.Module, int]:
    """The SV and CM models on ``upstream`` (one upstream instance each, as two loaded experiments)."""
    torch.manual_seed(0)
    sv = build_model(load_config(REPO / SV_CONFIG, {"upstream.name": upstream})).eval()
    cm = build_cm_model(load_config(REPO / CM_CONFIG, {"upstream.name": upstream})).eval()
    params = sum(p.numel() for p in sv.upstream.parameters())
    return sv, cm, params


def measure(upstream: str, n: int, seconds: float, rounds: int) -> dict:
    sv, cm, params = build_pair(upstream)
    rng = np.random.default_rng(0)
    wavs = [rng.normal(0, 0.1, int(seconds * 16000)).astype(np.float32) for _ in range(n)]
    cfg = ExtractConfig()
    device = torch.device("cpu")
    variants = {"two": SasvOutputs(sv, cm, share=False), "one": SasvOutputs(sv, cm, share=True)}
    times: dict[str, list[float]] = {k: [] for k in variants}
    outputs = {}
    with torch.inference_mode():
        for name, module in variants.items():  # warm-up
            outputs[name] = embed_utterances(module, wavs, cfg, device)
        for _ in range(rounds):
            for name, module in variants.items():
                start = time.process_time()
                embed_utterances(module, wavs, cfg, device)
                times[name].append(time.process_time() - start)
    audio = n * seconds
    two, one = statistics.median(times["two"]), statistics.median(times["one"])
    return {"upstream": upstream, "upstream_params": params, "audio_s": audio, "two_s": two, "one_s": one,
            "equal": bool(np.array_equal(outputs["two"], outputs["one"]))}


def table(rows: list[dict], args: argparse.Namespace) -> str:
    lines = ["## Shared upstream forward (SASV, CPU)", "",
             f"`bench/shared_upstream.py --utterances {args.utterances} --seconds {args.seconds} --rounds "
             f"{args.rounds} --threads {args.threads}` (see its docstring): SV model `{SV_CONFIG}` and CM model "
             f"`{CM_CONFIG}` on the same frozen upstream; per utterance the SV embedding, the CM embedding and "
             "the CM score, stage 4's batching; CPU seconds of the measuring process per second of audio, "
             f"median of {args.rounds} rounds; {platform.processor() or platform.machine()}, torch "
             f"{torch.__version__}, {args.threads} thread(s), a shared 2-core machine.", "",
             "| upstream | upstream params | two passes (s/s) | one shared pass (s/s) | one / two | saving | "
             "outputs equal |", "|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| `{r['upstream']}` | {r['upstream_params'] / 1e6:.2f} M | {r['two_s'] / r['audio_s']:.4f} | "
                     f"{r['one_s'] / r['audio_s']:.4f} | {r['one_s'] / r['two_s']:.2f} | "
                     f"{100 * (1 - r['one_s'] / r['two_s']):.0f} % | {'yes' if r['equal'] else 'NO'} |")
    lines += ["", "The saving is the upstream's share of the two-model cost: the aggregations and heads still run "
              "once per model.  The SASV task shares the forward whenever both experiments' upstreams are frozen "
              "and identical (`spkpeft.nn.shared_upstream.why_not_shared`); otherwise it runs two passes."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstreams", nargs="+", default=["random:tiny_wavlm", "random:wavlm_base_plus"])
    parser.add_argument("--utterances", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--doc", default=str(REPO / "docs" / "benchmarks.md"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    for upstream in args.upstreams:
        rows.append(measure(upstream, args.utterances, args.seconds, args.rounds))
        r = rows[-1]
        print(f"{upstream}: two passes {r['two_s']:.2f} s, one pass {r['one_s']:.2f} s, equal {r['equal']}",
              file=sys.stderr)
    text = table(rows, args)
    print(text)
    if args.doc:
        update_section(Path(args.doc), "shared_upstream", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
