"""Stage 6 and comparisons of ``task: cm``: per-attack / per-condition EER tables, DET and
score-histogram plots per set, and the columns of the comparison table.

For every set, its per-attack EERs and (ASVspoof 2021, when the row has them) per-condition
EERs follow the results table (:func:`spkpeft.eval.report.cm_breakdown_tables`).  With corpus
directories (``data/<corpus>``: the first holding ``<set>/wav.scp`` is used) it also draws
``<plot-dir>/<set>_cm_det.png`` and ``<set>_cm_scores.png`` from the set's stage-4 scores
(:func:`spkpeft.eval.plots.plot_cm`); a set found in no corpus directory (a row of another
corpus scored with the same model) is skipped with a note on stderr.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Sequence

from spkpeft.eval.report import cm_breakdown_tables  # noqa: F401  (the breakdown sections of stage 6)
from spkpeft.tasks.base import LEAD_COLUMNS, TAIL_COLUMNS

#: ``spkpeft.bin.compare`` columns: set, bona fide and spoof counts, EER and the min t-DCFs
COMPARE_COLUMNS = LEAD_COLUMNS + (("set", "set", "{}"), ("n_bonafide", "n_bonafide", "{}"),
                                  ("n_spoof", "n_spoof", "{}"), ("eer_pct", "EER (%)", "{:.2f}"),
                                  ("min_tdcf", "min t-DCF (2019)", "{:.4f}"),
                                  ("min_tdcf_2021", "min t-DCF (2021)", "{:.4f}")) + TAIL_COLUMNS


def find_set_dir(name: str, corpus_dirs: Sequence[Path]) -> Path | None:
    """The first ``<corpus>/<name>`` of ``corpus_dirs`` holding ``wav.scp`` (None when there is none)."""
    return next((Path(c) / name for c in corpus_dirs if (Path(c) / name / "wav.scp").is_file()), None)


def plot_cm_sets(rows: Sequence[dict[str, Any]], exp: Path, corpus_dirs: Sequence[Path],
                 plot_dir: Path) -> list[Path]:
    """``<plot-dir>/<set>_cm_det.png`` and ``<set>_cm_scores.png`` for every row whose set is
    in ``corpus_dirs`` (others: a note on stderr); returns the files written."""
    from spkpeft.eval.plots import plot_cm
    from spkpeft.tasks.cm.evaluate import load_scored_set

    if not corpus_dirs:
        return []
    written = []
    for row in rows:
        set_dir = find_set_dir(row["set"], corpus_dirs)
        if set_dir is None:
            print(f"report: NOTE: cm set '{row['set']}' is in no corpus directory "
                  f"({', '.join(map(str, corpus_dirs))}): no cm plots for it", file=sys.stderr)
            continue
        scored = load_scored_set(exp, set_dir)
        written += plot_cm(scored.scores, scored.keys, scored.attacks, plot_dir, row["set"])
    return written
