"""Stage 5 of ``task: sasv``: the metrics of every set and system from the stage-4 score files.

For each set (the development set, on which the fusions were fitted, then the evaluation sets)
and each system (``asv_only``, ``cm_only``, every fusion): SASV-EER, SV-EER, SPF-EER (SASV 2022,
interpolated), min a-DCF (ASVspoof 5 costs), per-attack SPF-EER
(:mod:`spkpeft.eval.sasv_metrics`), their 95 % intervals by the speaker bootstrap over the
claimed speakers (:func:`~spkpeft.eval.sasv_metrics.bootstrap_sasv`, ``bootstrap`` draws; 0:
none), and the t-EER and min t-DCF of the ASV and CM scores (properties of the two components,
the same on every row of a set).  Rows ``{"task": "sasv", "set", "fusion", "n_target",
"n_nontarget", "n_spoof", "sasv_eer_pct", "sv_eer_pct", "spf_eer_pct", "min_adcf", "t_eer_pct",
"min_tdcf", "per_attack_spf_eer_pct", "fitted_on", ["sasv_eer_pct_ci95", "sv_eer_pct_ci95",
"spf_eer_pct_ci95", "min_adcf_ci95", "ci_draws"], then the experiment's info}`` go to ``results``
(``EXP/results.json``);
``EXP/scores/<set>/<system>.per_attack.tsv`` (``attack n spf_eer_pct``) beside them.
"""

from __future__ import annotations

from pathlib import Path

from spkpeft.errors import file_error
from spkpeft.eval.sasv_metrics import (bootstrap_sasv, compute_sasv_metrics, keyed_scores, read_scores_of_trials,
                                       spf_eer_per_attack, t_eer, min_tdcf_asvspoof5)
from spkpeft.io.atomic import write_json_atomic, write_text_atomic
from spkpeft.tasks.sasv.data import SasvSet
from spkpeft.tasks.sasv.fusion import COMPONENTS

SCORES = "sasv_scores"


def systems(cfg) -> list[str]:
    """The systems of a set, in table order: the components alone, then the fusions."""
    return [*COMPONENTS, *cfg.task.fusions]


def score_path(exp: Path, set_name: str, system: str) -> Path:
    return exp / SCORES / set_name / f"{system}.txt"


def evaluate_sets(cfg, exp: Path, corpus: Path, bootstrap: int, results: Path | None = None,
                  info: dict | None = None) -> list[dict]:
    rows = []
    for name in (cfg.task.dev_set, *cfg.task.eval_sets):
        s = SasvSet(corpus, name)
        protocol, _, _ = s.read()
        read = lambda system: read_scores_of_trials(score_path(exp, name, system), protocol,  # noqa: E731
                                                    s.protocol_path, "SASV score")
        for system in systems(cfg):
            if not score_path(exp, name, system).is_file():
                raise file_error(score_path(exp, name, system), "missing (stage 4 of the SASV task writes it)")
        asv, cm = keyed_scores(read("asv_only"), protocol.keys), keyed_scores(read("cm_only"), protocol.keys)
        tandem = {"t_eer_pct": 100.0 * t_eer(asv, cm), "min_tdcf": min_tdcf_asvspoof5(asv, cm)}
        for system in systems(cfg):
            scores = read(system)
            per_attack = spf_eer_per_attack(scores, protocol.keys, protocol.sources)
            row = {"task": "sasv", "set": name, "fusion": system,
                   **compute_sasv_metrics(keyed_scores(scores, protocol.keys), per_attack=per_attack), **tandem,
                   "fitted_on": cfg.task.dev_set}
            if bootstrap > 0:
                row.update(bootstrap_sasv(scores, protocol.keys, protocol.speakers, draws=bootstrap))
                row["ci_draws"] = bootstrap
            row.update(info or {})
            attacks = [a for a, k in zip(protocol.sources, protocol.keys) if k == "spoof"]
            write_text_atomic(exp / "scores" / name / f"{system}.per_attack.tsv",
                              ["attack n spf_eer_pct"] + [f"{a} {attacks.count(a)} {e:.4f}"
                                                          for a, e in row["per_attack_spf_eer_pct"].items()])
            rows.append(row)
    write_json_atomic(results or exp / "results.json", rows)
    return rows
