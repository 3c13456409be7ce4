"""Stage 6 and comparisons of ``task: sv``: DET and score-distribution plots per trial list, the
comparison table's columns, the paired bootstrap comparison of variants and their DET plots.

Stage 6 (with the corpus's trial lists, ``<corpus>/trials`` or an explicit trials directory):
``<plot-dir>/det_<trials>.png`` (DET curves, one per normalisation, EER points marked) and
``<plot-dir>/scores_<trials>.png`` (target vs non-target score histograms, one panel per
normalisation), from the score files of stage 5 (:func:`spkpeft.eval.plots.plot_experiment`).

Comparison (``spkpeft.bin.compare``): one row per variant x trial list x normalisation, columns
:data:`COMPARE_COLUMNS` (trainable parameters and %, EER, minDCF at p = 0.01 and 0.05, with the
95 % bootstrap intervals of EER and minDCF@0.01, actDCF@0.01 and Cllr where stage 5 computed
them); with the trial lists, the paired comparison of each variant with the first one of its
trial list and norm (``vs``): ``P(EER < vs)`` and the 95 % interval of ``EER - EER(vs)`` over
the same speaker-bootstrap draws of the trials (:func:`add_paired_comparison`), and
``det_<trials>[.<norm>].png`` with one DET curve per variant (:func:`det_plots`).  ``--seeds N``
(:data:`SEED_COLUMNS`): mean and sample sd over the runs of EER and minDCF, and the paired
comparison of the run-averaged EER.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from spkpeft.eval.bootstrap import DEFAULT_DRAWS, DEFAULT_SEED, bootstrap_metrics, paired_comparison
from spkpeft.io.trials import align_scores, read_scores, read_trials
from spkpeft.tasks.base import LEAD_COLUMNS, TAIL_COLUMNS, Column, CompareOptions
from spkpeft.tasks.sv.evaluate import evaluation_speakers
from spkpeft.tasks.sv.scoring import NORMS, read_spk2utt, read_utt2spk_files, score_file_name, trial_speakers

#: the comparison columns (one row per variant x trial list x normalisation)
COMPARE_COLUMNS: tuple[Column, ...] = LEAD_COLUMNS + (
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
) + TAIL_COLUMNS
#: keys of the paired comparison, filled in by :func:`add_paired_comparison`
PAIRED_KEYS = ("vs", "p_better", "delta_eer_ci95")
#: the metrics averaged over seeds (``<metric>_mean``, ``<metric>_sd``)
SEED_METRICS = ("eer_pct", "mindcf_p0.01", "mindcf_p0.05")
#: ``--seeds N > 1``: mean and sd over the runs of a variant
SEED_COLUMNS: tuple[Column, ...] = (
    COMPARE_COLUMNS[:6]
    + (("seeds", "seeds", "{}"), ("eer_pct_mean", "EER (%) mean", "{:.2f}"), ("eer_pct_sd", "EER sd", "{:.2f}"),
       ("mindcf_p0.01_mean", "minDCF@0.01 mean", "{:.4f}"), ("mindcf_p0.01_sd", "minDCF@0.01 sd", "{:.4f}"),
       ("mindcf_p0.05_mean", "minDCF@0.05 mean", "{:.4f}"), ("mindcf_p0.05_sd", "minDCF@0.05 sd", "{:.4f}"))
    + COMPARE_COLUMNS[13:]
)


def trials_dir_of(explicit: Path | None, corpus_dirs: Sequence[Path]) -> Path | None:
    """The trial lists: ``explicit`` when given, else ``<corpus>/trials`` of the first corpus
    directory that has them, else None."""
    if explicit is not None:
        return Path(explicit)
    return next((Path(c) / "trials" for c in corpus_dirs if (Path(c) / "trials").is_dir()), None)


def scoring_speakers(corpus: Path | None, utt2spk: Sequence[Path], enroll: Path | None) -> tuple[list[Path], Path | None]:
    """The evaluation ``utt2spk`` files and enrollment ``spk2utt`` of a comparison: the explicit
    ones, else those stage 5 used (:func:`spkpeft.tasks.sv.evaluate.evaluation_speakers`)."""
    if corpus is None:
        return list(utt2spk), enroll
    found, found_enroll = evaluation_speakers(corpus)
    return list(utt2spk) or found, enroll or found_enroll


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


def compare_extras(rows: list[dict[str, Any]], runs: dict[str, Sequence[Path]], options: CompareOptions,
                   out: Path) -> list[Path]:
    """With trial lists (explicit or the corpus's): the paired comparison (``bootstrap > 0``) and
    the DET plots of the variants (the first run of each)."""
    trials_dir = trials_dir_of(options.trials_dir, [options.corpus] if options.corpus else [])
    if trials_dir is None:
        return []
    if options.bootstrap > 0:
        utt2spk, enroll = scoring_speakers(options.corpus, options.utt2spk, options.enroll)
        models = read_spk2utt(enroll) if enroll else None
        add_paired_comparison(rows, runs, trials_dir, read_utt2spk_files(utt2spk), models,
                              options.bootstrap, options.bootstrap_seed)
    return det_plots([group[0] for group in runs.values()], rows, trials_dir, out)
