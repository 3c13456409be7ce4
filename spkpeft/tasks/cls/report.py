"""Stage 6 and comparisons of ``task: cls``: per-class tables, confusion-matrix plots and the
columns of the comparison table.

Stage 5 (:mod:`spkpeft.tasks.cls.evaluate`) leaves, per set, ``EXP/scores/<set>/per_class.tsv``
and ``confusion.tsv``; stage 6 prints each set's per-class table after the results table and
draws ``<plot-dir>/confusion_<set>.png`` (:func:`spkpeft.eval.plots.plot_confusion`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from spkpeft.eval.report import per_class_table, read_confusion
from spkpeft.tasks.base import LEAD_COLUMNS, TAIL_COLUMNS

#: ``spkpeft.bin.compare`` columns: set, n, accuracy (%) and macro-F1 between the shared ones
COMPARE_COLUMNS = LEAD_COLUMNS + (("set", "set", "{}"), ("n", "n", "{}"), ("accuracy_pct", "accuracy (%)", "{:.2f}"),
                                  ("macro_f1", "macro-F1", "{:.4f}")) + TAIL_COLUMNS


def per_class_tables(rows: Sequence[dict[str, Any]], score_dir: Path) -> list[tuple[str, str]]:
    """``(set, Markdown table)`` of every row's ``<score-dir>/<set>/per_class.tsv``."""
    return [(row["set"], per_class_table(Path(score_dir) / row["set"] / "per_class.tsv")) for row in rows]


def plot_confusions(rows: Sequence[dict[str, Any]], score_dir: Path, plot_dir: Path) -> list[Path]:
    """``<plot-dir>/confusion_<set>.png`` for every row; returns the files written."""
    from spkpeft.eval.plots import plot_confusion

    written = []
    for row in rows:
        counts, names = read_confusion(Path(score_dir) / row["set"] / "confusion.tsv")
        title = f"{row['set']}: accuracy {row['accuracy_pct']:.2f}%, macro-F1 {row['macro_f1']:.4f}"
        written.append(plot_confusion(counts, names, Path(plot_dir) / f"confusion_{row['set']}.png", title=title))
    return written
