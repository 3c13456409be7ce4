"""Stage 5 of ``task: cm``: EER, min t-DCF, per-attack and per-condition EER of every evaluation set.

For every data directory with ``utt2label`` whose scores stage 4 wrote
(``EXP/cm_scores/<set>/scores.txt``): the CM EER (official ASVspoof convention,
:func:`spkpeft.eval.cm_metrics.cm_eer`), with the corpus's ASV scores
(``<corpus>/asv/<set>.scores``, ``SOURCE KEY SCORE``: ASVspoof 2019 LA dev/eval, 2021 LA)
the min t-DCF of ASVspoof 2019 and the revised one of 2021, the EER of each attack
(``utt2attack``) against all bona fide and, when the directory has ``utt2condition``
(ASVspoof 2021 LA/DF), the EER of each condition (its bona fide against its spoofs, the
official 2021 grouping, :func:`spkpeft.eval.cm_metrics.per_condition_eer`).  Rows
``{"task": "cm", "set", "n_bonafide", "n_spoof", "eer_pct", ["min_tdcf", "min_tdcf_2021",]
"per_attack", ["per_condition",] ...}`` go to ``results.json`` (rows of other sets already
there are kept); ``EXP/scores/<set>/per_attack.tsv`` (``attack n eer_pct``, n = spoofs of
the attack) and, with conditions, ``EXP/scores/<set>/per_condition.tsv`` (``condition n
eer_pct``, n = utterances of the condition, bona fide and spoof) beside them.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from spkpeft.errors import SpkpeftError, file_error
from spkpeft.eval.cm_metrics import compute_cm_metrics, read_asv_scores, read_cm_scores
from spkpeft.io.atomic import write_json_atomic, write_text_atomic
from spkpeft.eval.report import read_results
from spkpeft.io.datadir import read_data_dir


#: the keys of every row, in table order (after ``task``)
RESULT_KEYS = ("set", "n_bonafide", "n_spoof", "eer_pct")


def scores_path(exp: Path, data_dir: Path) -> Path:
    return Path(exp) / "cm_scores" / Path(data_dir).name / "scores.txt"


def evaluable(exp: Path, data_dir: Path) -> bool:
    return (Path(data_dir) / "utt2label").is_file() and scores_path(exp, data_dir).is_file()


class ScoredSet(NamedTuple):
    """The scores of a data directory with its labels, in ``utt2label`` (= ``wav.scp``) order."""

    utts: list[str]
    scores: np.ndarray
    keys: list[str]             # bonafide | spoof
    attacks: list[str]          # utt2attack ("-" for bona fide); "spoof" for every spoof without utt2attack
    conditions: list[str] | None  # utt2condition, None without it


def load_scored_set(exp: Path, data_dir: Path) -> ScoredSet:
    """Read ``data_dir`` and its stage-4 scores; the scores must cover its utterances exactly."""
    data = read_data_dir(data_dir)
    path = scores_path(exp, data_dir)
    if not path.is_file():
        raise file_error(path, "CM scores do not exist (stage 4 writes them)")
    scores = read_cm_scores(path)
    missing = [u for u in data.wav if u not in scores]
    extra = [u for u in scores if u not in data.wav]
    if missing or extra:
        what = f"no score for '{missing[0]}'" if missing else f"'{extra[0]}' is not in {data.path / 'wav.scp'}"
        raise file_error(path, f"scores do not cover {data.path} exactly: {what}")
    if data.utt2label is None:
        raise file_error(data.path / "utt2label", "missing (task cm needs '<utt-id> bonafide|spoof' lines)")
    keys = []
    for number, (utt, label) in enumerate(data.utt2label.items(), 1):
        if label not in ("bonafide", "spoof"):
            raise file_error(data.path / "utt2label", f"label '{label}' of '{utt}' must be bonafide or spoof", number)
        keys.append(label)
    utts = list(data.utt2label)
    attacks = [data.utt2attack[u] if data.utt2attack is not None else ("-" if k == "bonafide" else "spoof")
               for u, k in zip(utts, keys)]
    conditions = [data.utt2condition[u] for u in utts] if data.utt2condition is not None else None
    return ScoredSet(utts, np.array([scores[u] for u in utts], dtype=np.float64), keys, attacks, conditions)


def evaluate_set(exp: Path, data_dir: Path) -> dict:
    """The metrics of one data directory (see the module docstring)."""
    scored = load_scored_set(exp, data_dir)
    asv_path = Path(data_dir).parent / "asv" / f"{Path(data_dir).name}.scores"
    asv = read_asv_scores(asv_path) if asv_path.is_file() else None
    metrics = compute_cm_metrics(scored.scores, scored.keys, scored.attacks, asv, scored.conditions)
    out_dir = Path(exp) / "scores" / Path(data_dir).name
    write_table(out_dir / "per_attack.tsv", "attack", metrics["per_attack"], scored.attacks)
    if scored.conditions is not None:
        write_table(out_dir / "per_condition.tsv", "condition", metrics["per_condition"], scored.conditions)
    return metrics


def write_table(path: Path, what: str, eers: dict[str, float], groups: list[str]) -> None:
    """``<what> n eer_pct`` lines (tab-separated, header first): ``n`` = utterances of ``groups`` in the group."""
    counts: dict[str, int] = {}
    for group in groups:
        counts[group] = counts.get(group, 0) + 1
    write_text_atomic(path, [f"{what}\tn\teer_pct"] + [f"{g}\t{counts[g]}\t{e:.4f}" for g, e in eers.items()])


def evaluate_cm(exp: Path, data_dirs: list[Path], results: Path, info: dict | None = None) -> list[dict]:
    """Evaluate every evaluable directory of ``data_dirs``; write and return the result rows."""
    rows = []
    for data_dir in data_dirs:
        if not evaluable(exp, data_dir):
            continue
        metrics = evaluate_set(exp, data_dir)
        rows.append({"task": "cm", "set": Path(data_dir).name, **metrics, **(info or {})})
    if not rows:
        raise SpkpeftError(f"{exp}: no data directory with utt2label and stage-4 scores (cm_scores/<set>/scores.txt)")
    write_json_atomic(results, kept_rows(results, {row["set"] for row in rows}) + rows)
    return rows


def kept_rows(results: Path, replaced: set[str]) -> list[dict]:
    """The rows of an existing ``results`` file for other sets (another corpus scored with
    the same model, e.g. ASVspoof 2021 after 2019 LA): they stay, rows of ``replaced`` go."""
    if not Path(results).is_file():
        return []
    rows = read_results(results, task_of=lambda row: "cm", required=lambda task: RESULT_KEYS)
    return [row for row in rows if row.get("set") not in replaced]
