"""Compare experiments: one results table (Markdown and CSV) and DET plots across variants.

Usage::

    python -m spkpeft.bin.compare EXP [EXP ...] --out DIR [--trials-dir data/C/trials] [--seeds N] \
        [--utt2spk data/C/test/utt2spk ...] [--enroll data/C/enroll/spk2utt] [--bootstrap 1000]

Each ``EXP`` is an experiment directory holding ``results.json`` (stage 5) and
``config.yaml`` (stage 3); its variant name is the directory name. All experiments
must be of one task (``task`` of their rows; none means ``sv``). Writes

* ``DIR/results.csv`` and ``DIR/results.md``. Speaker verification: one row per
  variant x trial list x normalisation, grouped by trial list and normalisation
  (variants in the order given), columns :data:`COLUMNS`: variant, upstream,
  trainable parameters, trainable % (``100 * trainable_params / total_params``),
  trials, norm, EER (%), minDCF at p = 0.01 and 0.05, training time (s), peak
  memory (MB), with the 95 % bootstrap intervals of EER and minDCF@0.01, actDCF@0.01
  and Cllr where stage 5 computed them, and, with ``--trials-dir``, the paired
  comparison of each variant with the first one of its trial list and norm (``vs``):
  ``P(EER < vs)`` and the 95 % interval of ``EER - EER(vs)``, over the same
  speaker-bootstrap draws of the trials (:func:`add_paired_comparison`).
  Classification: one row per variant x evaluated set, grouped by set, columns
  :data:`CLS_COLUMNS` (``set``, ``n``, accuracy (%) and macro-F1 in place of
  trials, norm, EER and minDCF). Values an experiment does not record are left
  empty. The CSV uses the keys as column names and full precision; the Markdown
  table (also printed) uses the titles and rounded values.
* ``--seeds N`` (verification): the experiments come in groups of ``N`` runs of one
  variant (named after the first); the table (:data:`SEED_COLUMNS`) has the mean and
  sample sd over the runs of EER and minDCF and the paired comparison of the
  run-averaged EER (:func:`seed_rows`).
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

import numpy as np
from spkpeft.config import read_yaml

from spkpeft.bin._cli import run_main
from spkpeft.io.atomic import write_text_atomic
from spkpeft.errors import SpkpeftError, file_error
from spkpeft.eval.bootstrap import DEFAULT_DRAWS, DEFAULT_SEED, bootstrap_metrics, paired_comparison
from spkpeft.eval.report import markdown_table, read_results, task_of
from spkpeft.io.trials import align_scores, read_scores, read_trials
from spkpeft.tasks.sv.scoring import NORMS, read_spk2utt, read_utt2spk_files, score_file_name, trial_speakers

# (key, Markdown title, Markdown format)
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("variant", "variant", "{}"),
    ("upstream", "upstream", "{}"),
    ("trainable_params", "trainable params", "{:,}"),
    ("trainable_pct", "trainable %", "{:.2f}"),
    ("trials", "trials", "{}"),
    ("norm", "norm", "{}"),
    ("eer_pct", "EER (%)", "{:.2f}"),
    ("eer_ci95", "EER 95% CI", "[{:.2f}, {:.2f}]"),
    ("mindcf_p0.01", "minDCF@0.01", "{:.4f}"),
    ("mindcf_p0.01_ci95", "minDCF@0.01 95% CI", "[{:.4f}, {:.4f}]"),
    ("mindcf_p0.05", "minDCF@0.05", "{:.4f}"),
    ("actdcf_p0.01", "actDCF@0.01", "{:.4f}"),
    ("cllr", "Cllr", "{:.4f}"),
    ("vs", "vs", "{}"),
    ("p_better", "P(EER < vs)", "{:.3f}"),
    ("delta_eer_ci95", "EER - vs 95% CI", "[{:+.2f}, {:+.2f}]"),
    ("train_seconds", "train time (s)", "{:.1f}"),
    ("peak_memory_mb", "peak memory (MB)", "{:.0f}"),
)
#: keys of the paired comparison, filled in by :func:`add_paired_comparison`
PAIRED_KEYS = ("vs", "p_better", "delta_eer_ci95")
#: speaker verification with ``--seeds N > 1``: mean and sd over the runs of a variant
SEED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    COLUMNS[:6]
    + (("seeds", "seeds", "{}"), ("eer_pct_mean", "EER (%) mean", "{:.2f}"), ("eer_pct_sd", "EER sd", "{:.2f}"),
       ("mindcf_p0.01_mean", "minDCF@0.01 mean", "{:.4f}"), ("mindcf_p0.01_sd", "minDCF@0.01 sd", "{:.4f}"),
       ("mindcf_p0.05_mean", "minDCF@0.05 mean", "{:.4f}"), ("mindcf_p0.05_sd", "minDCF@0.05 sd", "{:.4f}"))
    + COLUMNS[13:]
)
#: the metrics averaged over seeds
SEED_METRICS = ("eer_pct", "mindcf_p0.01", "mindcf_p0.05", "train_seconds", "peak_memory_mb")
# the same for classification results: set, n, accuracy, macro-F1 instead of trials, norm, EER, minDCF
CLS_COLUMNS: tuple[tuple[str, str, str], ...] = (
    COLUMNS[:4]
    + (("set", "set", "{}"), ("n", "n", "{}"), ("accuracy_pct", "accuracy (%)", "{:.2f}"),
       ("macro_f1", "macro-F1", "{:.4f}"))
    + COLUMNS[-2:]
)
COLUMNS_OF_TASK = {"sv": COLUMNS, "cls": CLS_COLUMNS}


def columns_of(rows: Sequence[dict[str, Any]]) -> tuple[tuple[str, str, str], ...]:
    """The columns of comparison rows (those of their task, :data:`SEED_COLUMNS` for rows
    aggregated over seeds; :data:`COLUMNS` for no rows)."""
    if not rows:
        return COLUMNS
    return SEED_COLUMNS if "seeds" in rows[0] else COLUMNS_OF_TASK[rows[0]["task"]]


def _cell(value: Any, fmt: str) -> str:
    """A table cell: empty for None, both bounds formatted for an interval ``[lo, hi]``."""
    if value is None:
        return ""
    return fmt.format(*value) if isinstance(value, (list, tuple)) else fmt.format(value)


def read_config_upstream(exp: Path) -> str | None:
    """``upstream.name`` of ``EXP/config.yaml`` (None when the file is absent)."""
    path = exp / "config.yaml"
    if not path.is_file():
        return None
    try:
        return read_yaml(path).get("upstream", {}).get("name")
    except AttributeError as err:
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


def _check_names(names: Sequence[str]) -> None:
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise SpkpeftError(f"two experiments are named '{duplicate}'; variants need distinct directory names")


def _sorted_rows(rows: list[dict[str, Any]], names: Sequence[str]) -> list[dict[str, Any]]:
    """Rows of one task ordered by trial list (first appearance), norm, then variant
    (verification), or by set (first appearance), then variant (classification)."""
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


def comparison_rows(exps: Sequence[Path]) -> list[dict[str, Any]]:
    """Rows of every experiment, ordered by trial list (first appearance), norm, then variant
    (verification), or by set (first appearance), then variant (classification)."""
    names = [exp.name for exp in exps]
    _check_names(names)
    return _sorted_rows([row for exp in exps for row in experiment_rows(exp)], names)


def variant_groups(exps: Sequence[Path], seeds: int) -> list[list[Path]]:
    """``exps`` cut into consecutive groups of ``seeds`` runs, one group per variant."""
    if seeds < 1 or len(exps) % seeds:
        raise SpkpeftError(f"--seeds {seeds}: the {len(exps)} experiments must come in groups of {seeds} "
                           "(the runs of one variant next to each other)")
    return [list(exps[i:i + seeds]) for i in range(0, len(exps), seeds)]


def _mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (``ddof = 1``)."""
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def seed_rows(groups: Sequence[Sequence[Path]]) -> list[dict[str, Any]]:
    """Speaker verification over several runs (seeds) per variant: one row per variant x trial
    list x norm with ``seeds``, ``<metric>_mean`` and ``<metric>_sd`` (sample sd over the runs)
    of EER and minDCF, and the runs' mean training time and peak memory. The variant is named
    after its first run."""
    names = [group[0].name for group in groups]
    _check_names(names)
    rows = []
    for group in groups:
        runs = [{(r["trials"], r["norm"]): r for r in comparison_rows([exp])} for exp in group]
        for key, first in runs[0].items():
            if first["task"] != "sv":
                raise SpkpeftError(f"{group[0]}: --seeds > 1 compares speaker-verification results only")
            missing = next((exp for exp, rows_of in zip(group, runs) if key not in rows_of), None)
            if missing is not None:
                raise file_error(missing / "results.json", f"no result for trials '{key[0]}', norm '{key[1]}'")
            row = {k: first.get(k) for k in ("task", "upstream", "trainable_params", "trainable_pct", "trials", "norm")}
            row.update(variant=group[0].name, seeds=len(group))
            for metric in SEED_METRICS:
                values = [r[key][metric] for r in runs if r[key].get(metric) is not None]
                if not values:
                    row[metric] = None
                elif metric in ("train_seconds", "peak_memory_mb"):
                    row[metric] = float(np.mean(values))
                else:
                    row[f"{metric}_mean"], row[f"{metric}_sd"] = _mean_sd(values)
            rows.append(row)
    return _sorted_rows(rows, names)


def add_paired_comparison(rows: list[dict[str, Any]], runs: dict[str, Sequence[Path]], trials_dir: Path,
                          utt2spk: dict[str, str], models: dict[str, list[str]] | None,
                          draws: int = DEFAULT_DRAWS, seed: int = DEFAULT_SEED) -> None:
    """Fill :data:`PAIRED_KEYS` of verification rows: each variant against the first variant of
    its trial list and norm (``vs``), on the same speaker-bootstrap draws
    (:func:`spkpeft.eval.bootstrap.paired_comparison`): ``p_better`` = P(EER < EER of vs),
    ``delta_eer_ci95`` = 95 % interval of EER - EER of vs (percentage points). A variant with
    several runs (seeds) is compared through its mean EER over the runs, draw by draw."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["trials"], row["norm"]), []).append(row)
    for (trials, norm), members in groups.items():
        if len(members) < 2:
            continue
        path = trials_dir / trials
        trial_list = read_trials(path)
        speakers = trial_speakers(trial_list[0], utt2spk, models)
        per_draw = {}
        for row in members:
            eers = []
            for exp in runs[row["variant"]]:
                score_path = exp / "scores" / score_file_name(trials, norm)
                scores = align_scores(trial_list, read_scores(score_path), path, score_path)
                eers.append(bootstrap_metrics(scores, trial_list[2], speakers, draws, seed, p_targets=())["eer_pct"])
            per_draw[row["variant"]] = np.mean(eers, axis=0)
        ref = members[0]["variant"]
        for row in members[1:]:
            paired = paired_comparison(per_draw[row["variant"]], per_draw[ref])
            row.update(vs=ref, p_better=paired["p_better"], delta_eer_ci95=paired["delta_ci95"])


def comparison_table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as a Markdown table with the titles and formats of their task's columns
    (:data:`COLUMNS` or :data:`CLS_COLUMNS`)."""
    columns = columns_of(rows)
    return markdown_table([title for _, title, _ in columns],
                          [[_cell(row.get(key), fmt) for key, _, fmt in columns] for row in rows])


def csv_lines(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The rows as CSV lines (header: the keys of their task's columns; empty cells for unknown values)."""
    columns = columns_of(rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([key for key, _, _ in columns])
    for row in rows:
        writer.writerow(["" if row.get(key) is None else row[key] for key, _, _ in columns])
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
                        help="directory of the trial lists; enables the DET plots and the paired comparison")
    parser.add_argument("--seeds", type=int, default=1,
                        help="runs per variant: the experiments come in consecutive groups of this many (default 1)")
    parser.add_argument("--utt2spk", nargs="+", type=Path, default=[],
                        help="utt2spk of the evaluation sets (the speakers the paired bootstrap resamples)")
    parser.add_argument("--enroll", type=Path, default=None, help="spk2utt of enrollment models, as in stage 5")
    parser.add_argument("--bootstrap", type=int, default=DEFAULT_DRAWS,
                        help=f"bootstrap draws of the paired comparison (default {DEFAULT_DRAWS}; 0: none)")
    parser.add_argument("--bootstrap-seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    groups = variant_groups(args.exps, args.seeds)
    rows = seed_rows(groups) if args.seeds > 1 else comparison_rows(args.exps)
    verification = not rows or rows[0]["task"] == "sv"
    if args.trials_dir is not None and verification and args.bootstrap > 0:
        models = read_spk2utt(args.enroll) if args.enroll else None
        add_paired_comparison(rows, {group[0].name: group for group in groups}, args.trials_dir,
                              read_utt2spk_files(args.utt2spk), models, args.bootstrap, args.bootstrap_seed)
    table = comparison_table(rows)
    write_text_atomic(args.out / "results.md", table.splitlines())
    write_text_atomic(args.out / "results.csv", csv_lines(rows))
    print(table)
    if args.trials_dir is not None and verification:
        written = det_plots([group[0] for group in groups], rows, args.trials_dir, args.out)
        print(f"compare: wrote {len(written)} DET plots in {args.out}", file=sys.stderr)
    elif args.trials_dir is not None:
        print("compare: no DET plots for classification results (--trials-dir ignored)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    run_main(main)
