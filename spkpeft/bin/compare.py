"""Compare experiments: one results table (Markdown and CSV) and DET plots across variants.

Usage::

    python -m spkpeft.bin.compare EXP [EXP ...] --out DIR [--trials-dir data/C/trials]

Each ``EXP`` is an experiment directory holding ``results.json`` (stage 5) and
``config.yaml`` (stage 3); its variant name is the directory name. All experiments
must be of one task (``task`` of their rows; none means ``sv``). Writes

* ``DIR/results.csv`` and ``DIR/results.md``. Speaker verification: one row per
  variant x trial list x normalisation, grouped by trial list and normalisation
  (variants in the order given), columns :data:`COLUMNS`: variant, upstream,
  trainable parameters, trainable % (``100 * trainable_params / total_params``),
  trials, norm, EER (%), minDCF at p = 0.01 and 0.05, training time (s), peak
  memory (MB). Classification: one row per variant x evaluated set, grouped by set,
  columns :data:`CLS_COLUMNS` (``set``, ``n``, accuracy (%) and macro-F1 in place of
  trials, norm, EER and minDCF). Values an experiment does not record are left
  empty. The CSV uses the keys as column names and full precision; the Markdown
  table (also printed) uses the titles and rounded values.
* with ``--trials-dir`` (verification only): ``DIR/det_<trials>.png`` (raw scores)
  and ``DIR/det_<trials>.<norm>.png`` (normalised) with one DET curve per variant,
  from each experiment's ``scores/`` files. Classification draws no DET plots.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path
from typing import Any, Sequence

import yaml

from spkpeft.bin._cli import run_main
from spkpeft.io.atomic import write_text_atomic
from spkpeft.errors import SpkpeftError, file_error
from spkpeft.eval.report import markdown_table, read_results, task_of
from spkpeft.tasks.sv.scoring import NORMS, score_file_name

# (key, Markdown title, Markdown format)
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("variant", "variant", "{}"),
    ("upstream", "upstream", "{}"),
    ("trainable_params", "trainable params", "{:,}"),
    ("trainable_pct", "trainable %", "{:.2f}"),
    ("trials", "trials", "{}"),
    ("norm", "norm", "{}"),
    ("eer_pct", "EER (%)", "{:.2f}"),
    ("mindcf_p0.01", "minDCF@0.01", "{:.4f}"),
    ("mindcf_p0.05", "minDCF@0.05", "{:.4f}"),
    ("train_seconds", "train time (s)", "{:.1f}"),
    ("peak_memory_mb", "peak memory (MB)", "{:.0f}"),
)
# the same for classification results: set, n, accuracy, macro-F1 instead of trials, norm, EER, minDCF
CLS_COLUMNS: tuple[tuple[str, str, str], ...] = (
    COLUMNS[:4]
    + (("set", "set", "{}"), ("n", "n", "{}"), ("accuracy_pct", "accuracy (%)", "{:.2f}"),
       ("macro_f1", "macro-F1", "{:.4f}"))
    + COLUMNS[-2:]
)
COLUMNS_OF_TASK = {"sv": COLUMNS, "cls": CLS_COLUMNS}


def columns_of(rows: Sequence[dict[str, Any]]) -> tuple[tuple[str, str, str], ...]:
    """The columns of comparison rows (those of their task; :data:`COLUMNS` for no rows)."""
    return COLUMNS_OF_TASK[rows[0]["task"]] if rows else COLUMNS


def read_config_upstream(exp: Path) -> str | None:
    """``upstream.name`` of ``EXP/config.yaml`` (None when the file is absent)."""
    path = exp / "config.yaml"
    if not path.is_file():
        return None
    try:
        return (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("upstream", {}).get("name")
    except (yaml.YAMLError, AttributeError) as err:
        raise file_error(path, f"cannot read the upstream name ({err})") from None


def experiment_rows(exp: Path) -> list[dict[str, Any]]:
    """The table rows of one experiment (``task`` and the keys of its task's columns; unknown values None)."""
    upstream = read_config_upstream(exp)
    rows = []
    for result in read_results(exp / "results.json"):
        task = task_of(result)
        trainable, total = result.get("trainable_params"), result.get("total_params")
        row = {key: result.get(key) for key, _, _ in COLUMNS_OF_TASK[task]}
        row.update(task=task, variant=exp.name, upstream=result.get("upstream") or upstream,
                   trainable_pct=100.0 * trainable / total if trainable is not None and total else None)
        if task == "sv":
            row["norm"] = result.get("norm", "none")
        rows.append(row)
    return rows


def comparison_rows(exps: Sequence[Path]) -> list[dict[str, Any]]:
    """Rows of every experiment, ordered by trial list (first appearance), norm, then variant
    (verification), or by set (first appearance), then variant (classification)."""
    names = [exp.name for exp in exps]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise SpkpeftError(f"two experiments are named '{duplicate}'; variants need distinct directory names")
    rows = [row for exp in exps for row in experiment_rows(exp)]
    tasks = list(dict.fromkeys(row["task"] for row in rows))
    if len(tasks) > 1:
        first = {task: next(r["variant"] for r in rows if r["task"] == task) for task in tasks}
        raise SpkpeftError("cannot compare results of different tasks: "
                           + ", ".join(f"{task} ({first[task]})" for task in tasks))
    if tasks == ["cls"]:
        set_order = list(dict.fromkeys(row["set"] for row in rows))
        return sorted(rows, key=lambda r: (set_order.index(r["set"]), names.index(r["variant"])))
    trials_order = list(dict.fromkeys(row["trials"] for row in rows))
    norm_order = {n: i for i, n in enumerate(NORMS)}
    return sorted(rows, key=lambda r: (trials_order.index(r["trials"]), norm_order.get(r["norm"], len(NORMS)),
                                       names.index(r["variant"])))


def comparison_table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as a Markdown table with the titles and formats of their task's columns
    (:data:`COLUMNS` or :data:`CLS_COLUMNS`)."""
    columns = columns_of(rows)
    return markdown_table([title for _, title, _ in columns],
                          [["" if row[key] is None else fmt.format(row[key]) for key, _, fmt in columns]
                           for row in rows])


def csv_lines(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The rows as CSV lines (header: the keys of their task's columns; empty cells for unknown values)."""
    columns = columns_of(rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([key for key, _, _ in columns])
    for row in rows:
        writer.writerow(["" if row[key] is None else row[key] for key, _, _ in columns])
    return buffer.getvalue().splitlines()


def det_plots(exps: Sequence[Path], rows: Sequence[dict[str, Any]], trials_dir: Path, out: Path) -> list[Path]:
    """One DET plot per (trial list, norm) with a curve per variant; returns the files written."""
    from spkpeft.eval.plots import det_curve, load_curve

    by_name = {exp.name: exp for exp in exps}
    groups: dict[tuple[str, str], list[str]] = {}
    for row in rows:
        groups.setdefault((row["trials"], row["norm"]), []).append(row["variant"])
    written = []
    for (trials, norm), variants in groups.items():
        curves = {v: load_curve(trials_dir / trials, by_name[v] / "scores", trials, norm) for v in variants}
        name = "det_" + score_file_name(trials, norm).removesuffix(".score") + ".png"
        title = trials if norm == "none" else f"{trials} ({norm})"
        written.append(det_curve(curves, out / name, title=title))
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("exps", nargs="+", type=Path, help="experiment directories (results.json, config.yaml)")
    parser.add_argument("--out", required=True, type=Path, help="where to write results.{md,csv} and the plots")
    parser.add_argument("--trials-dir", type=Path, default=None,
                        help="directory of the trial lists; enables the DET plots")
    args = parser.parse_args(argv)
    rows = comparison_rows(args.exps)
    table = comparison_table(rows)
    write_text_atomic(args.out / "results.md", table.splitlines())
    write_text_atomic(args.out / "results.csv", csv_lines(rows))
    print(table)
    if args.trials_dir is not None and (not rows or rows[0]["task"] == "sv"):
        written = det_plots(args.exps, rows, args.trials_dir, args.out)
        print(f"compare: wrote {len(written)} DET plots in {args.out}", file=sys.stderr)
    elif args.trials_dir is not None:
        print("compare: no DET plots for classification results (--trials-dir ignored)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    run_main(main)
