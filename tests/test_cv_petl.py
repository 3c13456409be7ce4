"""The cross-validation summary (per fold, mean +- std) and the PETL table (methods x corpora),
in process and through steps/cv.sh and steps/petl_table.sh on finished experiments."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, run
from spkpeft.bin import cv_summary
from spkpeft.errors import SpkpeftError
from spkpeft.tasks.cls.crossval import cv_table, summarize_folds
from spkpeft.tasks.cls.petl_table import petl_markdown, petl_rows


def write_results(exp: Path, accuracy: dict[str, float], trainable: int = 1000, total: int = 100000,
                  n: int = 400) -> Path:
    exp.mkdir(parents=True, exist_ok=True)
    rows = [{"task": "cls", "set": name, "n": n, "accuracy_pct": acc, "macro_f1": acc / 100 - 0.01,
             "config": "c.yaml", "upstream": "random:tiny_ast", "trainable_params": trainable,
             "total_params": total, "train_seconds": 1.0, "peak_memory_mb": 10.0}
            for name, acc in accuracy.items()]
    (exp / "results.json").write_text(json.dumps(rows))
    return exp


FOLD_ACC = [80.0, 85.0, 90.0, 70.0, 75.0]


def make_cv(root: Path, trainable: int = 1000) -> list[Path]:
    return [write_results(root / f"fold{k}", {"dev": 50.0, "test": acc}, trainable)
            for k, acc in enumerate(FOLD_ACC, 1)]


def test_cv_summary_mean_and_population_std(tmp_path):
    summary = summarize_folds(make_cv(tmp_path))
    assert [f["accuracy_pct"] for f in summary["folds"]] == FOLD_ACC
    assert summary["mean"]["accuracy_pct"] == pytest.approx(80.0)
    assert summary["std"]["accuracy_pct"] == pytest.approx(np.sqrt(50.0))  # ddof = 0: sum of squares 250 / 5
    assert summary["n"] == 2000 and summary["trainable_params"] == 1000 and summary["std_ddof"] == 0
    table = cv_table(summary)
    assert "| fold1 | 400 | 80.00 | 0.7900 |" in table and "| mean +- std | 2000 | 80.00 +- 7.07 |" in table
    write_results(tmp_path / "fold3", {"dev": 1.0})
    with pytest.raises(SpkpeftError, match=r"fold3/results.json: no classification result for the set 'test'"):
        summarize_folds([tmp_path / "fold1", tmp_path / "fold3"])
    with pytest.raises(SpkpeftError, match="at least 2 folds"):
        summarize_folds([tmp_path / "fold1"])


def test_petl_rows_and_pivot(tmp_path):
    for name, trainable, acc in (("frozen", 1000, 60.0), ("lora", 5000, 70.0)):
        make_cv(tmp_path / "esc50" / name, trainable)
        assert cv_summary.main([*map(str, sorted((tmp_path / "esc50" / name).glob("fold*"))),
                                "--out", str(tmp_path / "esc50" / name)]) == 0
        write_results(tmp_path / "sc" / name, {"dev": 1.0, "test": acc}, trainable + 40 if name == "lora" else trainable)
    corpora = [("esc50", tmp_path / "esc50"), ("speechcommands_35", tmp_path / "sc")]
    rows = petl_rows(corpora, ["lora", "frozen"])
    assert [(r["variant"], r["corpus"]) for r in rows] == [("lora", "esc50"), ("lora", "speechcommands_35"),
                                                          ("frozen", "esc50"), ("frozen", "speechcommands_35")]
    assert rows[0]["accuracy_pct"] == pytest.approx(80.0) and rows[0]["n_folds"] == 5
    assert rows[1]["accuracy_std"] is None and rows[1]["trainable_pct"] == pytest.approx(5.04)
    table = petl_markdown(rows, ["esc50", "speechcommands_35"]).splitlines()
    assert table[0] == "| method | upstream | trainable params | trainable % | esc50 accuracy (%) | speechcommands_35 accuracy (%) |"
    assert table[2] == "| lora | random:tiny_ast | 5,000 / 5,040 | 5.00 / 5.04 | 80.00 +- 7.07 | 70.00 |"
    assert table[3] == "| frozen | random:tiny_ast | 1,000 | 1.00 | 80.00 +- 7.07 | 60.00 |"
    with pytest.raises(SpkpeftError, match="corpus names must differ"):
        petl_rows([corpora[0], corpora[0]])


def test_cv_and_petl_scripts_on_finished_experiments(tmp_path):
    exp_root = tmp_path / "petl"
    configs = []
    for name, trainable in (("frozen", 1000), ("lora", 5000)):
        make_cv(exp_root / "esc50" / name, trainable)
        write_results(exp_root / "speechcommands_12" / name, {"dev": 1.0, "test": 55.5}, trainable)
        configs.append(str(REPO / "conf" / "cls" / f"{name}.yaml"))
    res = run(["bash", str(REPO / "steps" / "petl_table.sh"), "--configs", " ".join(configs), "--stage", "6",
               "--corpora", f"esc50={tmp_path} speechcommands={tmp_path}", "--sc-task", "12",
               "--exp-root", str(exp_root)], timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "skipping" not in res.stderr  # stage 6 runs no fold
    cv = json.loads((exp_root / "esc50" / "lora" / "cv_results.json").read_text())
    assert cv["mean"]["accuracy_pct"] == pytest.approx(80.0) and cv["n_folds"] == 5
    assert (exp_root / "esc50" / "lora" / "cv_results.md").read_text().splitlines()[-1].startswith("| mean +- std |")
    table = (exp_root / "petl_table.md").read_text().splitlines()
    assert table[2] == "| frozen | random:tiny_ast | 1,000 | 1.00 | 80.00 +- 7.07 | 55.50 |"
    with open(exp_root / "petl_table.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["variant"], r["corpus"], r["n_folds"]) for r in rows] == [
        ("frozen", "esc50", "5"), ("frozen", "speechcommands_12", "1"),
        ("lora", "esc50", "5"), ("lora", "speechcommands_12", "1")]
    res = run(["bash", str(REPO / "steps" / "cv.sh"), "--config", configs[0], "--folds", "1"])
    assert res.returncode == 1 and "--folds needs at least two folds" in res.stderr
