"""Stage 6 of ``task: sasv``: the results table of every set and the DET plots.

Table (Markdown, one per set): each system (the components alone, then the fusions) with
SASV-EER, SV-EER, SPF-EER (%), min a-DCF, their 95 % speaker-bootstrap intervals when stage 5
drew them, t-EER (%) and min t-DCF of the two components; then the SPF-EER (%) of every attack.
Plots (``PLOT_DIR/<set>_<system>_det.png``): three DET curves of the system's scores (target
against nontarget, against spoof, against nontarget + spoof; SASV 2022 EERs in the legend,
:func:`spkpeft.eval.plots.det_curve`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from spkpeft.eval.plots import det_curve
from spkpeft.eval.sasv_metrics import NONTARGET, SPOOF, TARGET, read_scores_of_trials
from spkpeft.tasks.sasv.data import SasvSet
from spkpeft.tasks.sasv.evaluate import score_path

METRICS = (("sasv_eer_pct", "SASV-EER (%)", "{:.2f}"), ("sv_eer_pct", "SV-EER (%)", "{:.2f}"),
           ("spf_eer_pct", "SPF-EER (%)", "{:.2f}"), ("min_adcf", "min a-DCF", "{:.4f}"))


def _cell(row: dict, key: str, fmt: str) -> str:
    text = fmt.format(row[key])
    ci = row.get(f"{key}_ci95")
    return f"{text} [{fmt.format(ci[0])}, {fmt.format(ci[1])}]" if ci else text


def set_table(rows: list[dict]) -> str:
    first = rows[0]
    head = ["system", *(title for _, title, _ in METRICS)]
    lines = [f"### {first['set']} ({first['n_target']} target, {first['n_nontarget']} nontarget, "
             f"{first['n_spoof']} spoof trials; fusions fitted on {first['fitted_on']}"
             f"{', 95 % speaker-bootstrap intervals' if 'ci_draws' in first else ''})", "",
             "| " + " | ".join(head) + " |", "|---" + "|---:" * len(METRICS) + "|"]
    for r in rows:
        lines.append("| " + " | ".join([r["fusion"], *(_cell(r, k, f) for k, _, f in METRICS)]) + " |")
    lines += ["", f"Components in tandem: t-EER {first['t_eer_pct']:.2f} %, min t-DCF (ASVspoof 5 form) {first['min_tdcf']:.4f}.", ""]
    attacks = sorted({a for r in rows for a in r["per_attack_spf_eer_pct"]})
    lines += ["| system | " + " | ".join(f"SPF-EER {a} (%)" for a in attacks) + " |",
              "|---" + "|---:" * len(attacks) + "|"]
    for r in rows:
        lines.append("| " + " | ".join([r["fusion"], *(f"{r['per_attack_spf_eer_pct'][a]:.2f}" for a in attacks)]) + " |")
    return "\n".join(lines)


def three_curves(scores: np.ndarray, keys: list[str]) -> dict:
    k = np.asarray(keys, dtype=object)
    curves = {}
    for label, negatives in (("target vs nontarget", (NONTARGET,)), ("target vs spoof", (SPOOF,)),
                             ("target vs nontarget + spoof", (NONTARGET, SPOOF))):
        keep = (k == TARGET) | np.isin(k, negatives)
        curves[label] = (scores[keep], k[keep] == TARGET)
    return curves


def by_set(rows) -> dict[str, list[dict]]:
    """The rows of each set, sets in order of first appearance."""
    out: dict[str, list[dict]] = {}
    for r in rows:
        out.setdefault(r["set"], []).append(r)
    return out


def set_tables(rows) -> list[str]:
    """The Markdown section of every set."""
    return [set_table(set_rows) for set_rows in by_set(rows).values()]


def det_plots(rows, exp: Path, corpus: Path, plot_dir: Path) -> list[Path]:
    """``PLOT_DIR/<set>_<system>_det.png`` of every row, from the stage-4 score files of ``exp``."""
    plots = []
    for name, set_rows in by_set(rows).items():
        s = SasvSet(corpus, name)
        protocol, _, _ = s.read()
        for r in set_rows:
            scores = read_scores_of_trials(score_path(exp, name, r["fusion"]), protocol, s.protocol_path, "SASV score")
            plots.append(det_curve(three_curves(scores, protocol.keys), plot_dir / f"{name}_{r['fusion']}_det.png",
                                   title=f"{name}: {r['fusion']}", highlight="target vs nontarget + spoof"))
    return plots
