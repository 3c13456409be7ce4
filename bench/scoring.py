"""Time EER + minDCF: spkpeft vs sklearn ``roc_curve`` vs one ``numpy.sort`` (the floor).

Run by hand (not part of the tests)::

    .venv/bin/python bench/scoring.py [--sizes 1e5 1e6 1e7] [--repeats 3] [--target-fraction 0.5]
        [--doc docs/benchmarks.md]

Scores are Gaussian (targets shifted by +2), labels Bernoulli(target fraction).
Columns: ``ours`` = :func:`spkpeft.eval.metrics.compute_metrics` (EER + minDCF at
p_target 0.01 and 0.05); ``sklearn`` = ``roc_curve`` then the same interpolated
EER from its fpr/fnr; ``sort`` = ``np.sort`` of the float64 scores. Best of
``--repeats`` wall-clock times. Prints a Markdown table and the machine, and puts them
in the ``scoring`` section of ``--doc`` (other sections kept; ``--doc ''``: print only).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
from sklearn.metrics import roc_curve

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
from spkpeft.eval.metrics import compute_metrics  # noqa: E402


def sklearn_eer(scores: np.ndarray, labels: np.ndarray) -> float:
    """EER (fraction) from sklearn's ROC with the spkpeft interpolation convention."""
    fpr, tpr, _ = roc_curve(labels, scores)
    fnr = 1.0 - tpr
    k = int(np.argmax(fpr >= fnr))  # sklearn runs reject-all -> accept-all
    d0, d1 = fnr[k - 1] - fpr[k - 1], fnr[k] - fpr[k]
    w = d0 / (d0 - d1)
    return float((1 - w) * fnr[k - 1] + w * fnr[k])


def best_time(fn: Callable[[], object], repeats: int) -> float:
    """Fastest of ``repeats`` wall-clock runs, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (or platform.processor())."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_lines() -> list[str]:
    """Machine description for the report."""
    import sklearn
    import torch

    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return [f"- CPU: {cpu_model()}, {threads} usable threads (os.cpu_count() = {os.cpu_count()})",
            f"- python {platform.python_version()}, numpy {np.__version__}, "
            f"scikit-learn {sklearn.__version__}, torch {torch.__version__} "
            f"(torch.get_num_threads() = {torch.get_num_threads()})"]


def bench_size(n: int, repeats: int, target_fraction: float, rng: np.random.Generator) -> str:
    """One Markdown table row for ``n`` trials; checks that ours and sklearn agree."""
    labels = rng.random(n) < target_fraction
    scores = rng.standard_normal(n) + 2.0 * labels
    ours = best_time(lambda: compute_metrics(scores, labels), repeats)
    skl = best_time(lambda: sklearn_eer(scores, labels), repeats)
    floor = best_time(lambda: np.sort(scores), repeats)
    diff = abs(compute_metrics(scores, labels)["eer_pct"] / 100 - sklearn_eer(scores, labels))
    assert diff < 1e-9, f"EER disagrees with sklearn by {diff}"
    return f"| {n:.0e} | {ours:.3f} | {skl:.3f} | {floor:.3f} | {ours / floor:.2f} |"


def report(rows: list[str], args: argparse.Namespace) -> str:
    """The Markdown section: title, what was timed, the table and the machine."""
    return section_text(
        "Scoring",
        f"`bench/scoring.py`: EER + minDCF (p = 0.01, 0.05) of Gaussian scores (targets shifted by +2, "
        f"target fraction {args.target_fraction:g}); best of {args.repeats} wall-clock runs. `ours` = "
        "`spkpeft.eval.metrics.compute_metrics`, `sklearn` = `roc_curve` + the same interpolated EER, "
        "`sort` = `np.sort` of the scores (the floor).",
        ["n trials", "ours s", "sklearn s", "sort s", "ours / sort"], rows)


def section_text(title: str, intro: str, columns: list[str], rows: list[str]) -> str:
    """A benchmark section: ``## title``, the intro, a right-aligned table and the machine."""
    return "\n".join([f"## {title}", "", intro, "", "| " + " | ".join(columns) + " |",
                      "|" + "---:|" * len(columns), *rows, "", "Machine:", "", *machine_lines(), ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1e5, 1e6, 1e7])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--target-fraction", type=float, default=0.5)
    parser.add_argument("--doc", default=str(Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"),
                        help="Markdown file whose 'scoring' section is updated ('': print only)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    run_sizes(args.sizes, lambda n: bench_size(n, args.repeats, args.target_fraction, rng),
              lambda rows: report(rows, args), args.doc, "scoring")


def run_sizes(sizes: list[float], row: Callable[[int], str], report_of: Callable[[list[str]], str],
              doc: str, section: str) -> None:
    """One table row per size (printed as measured), then the report, printed and written as
    ``section`` of ``doc`` (other sections kept; ``doc`` empty: print only)."""
    rows = []
    for n in sizes:
        rows.append(row(int(n)))
        print(rows[-1], flush=True)
    text = report_of(rows)
    print()
    print(text)
    if doc:
        from bench.peft_cost import update_section  # the shared section writer

        update_section(Path(doc), section, text)


if __name__ == "__main__":
    main()
