"""The countermeasure mini recipe end to end (stages 1-6, a shortened run on a smaller
corpus): EER, min t-DCF, the per-attack table and plots, and an eval EER below the
LFCC-statistics + logistic-regression baseline's on the same corpus (unseen attacks)."""

from __future__ import annotations

import json

import yaml

from cm_baseline import lfcc_logreg_baseline_eer
from conftest import REPO, run_sh

SMALL = ("--n-train 120 --n-dev 40 --n-eval 60 --n-train-spk 4 --n-dev-spk 2 --n-eval-spk 3 "
         "--min-dur 1.0 --max-dur 1.6")


def test_mini_cm_recipe_beats_the_lfcc_baseline_and_reports_attacks(recipe, tmp_path):
    exp = tmp_path / "exp"
    root = tmp_path / "mini_cm"
    config = tmp_path / "short.yaml"
    config.write_text(yaml.safe_dump({"base": str(REPO / "conf" / "cm" / "mini.yaml"), "train": {"epochs": 5}}))
    res = run_sh(recipe, "--corpus", "mini_cm", "--data-root", str(root), "--config", str(config),
                 "--mini-opts", SMALL, "--exp", str(exp), timeout=1800)
    assert res.returncode == 0, res.stderr[-3000:]
    rows = {r["set"]: r for r in json.loads((exp / "results.json").read_text())}
    assert set(rows) == {"dev", "eval"}
    row = rows["eval"]
    assert row["task"] == "cm" and row["n_bonafide"] + row["n_spoof"] == 60
    assert {"eer_pct", "min_tdcf", "min_tdcf_2021", "per_attack"} <= set(row)
    assert row["per_attack"] and set(row["per_attack"]) <= {"A07", "A08", "A09"}  # the unseen attacks
    assert (exp / "scores" / "eval" / "per_attack.tsv").is_file() and (exp / "log" / "stage6_report.log").is_file()
    for name in ("eval_cm_det.png", "eval_cm_scores.png"):
        assert (exp / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    baseline = lfcc_logreg_baseline_eer(root, "eval")
    assert row["eer_pct"] < baseline - 5.0, (row["eer_pct"], baseline)
