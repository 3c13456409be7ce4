"""The classification mini recipe end to end (stages 1-6) beats its MFCC baseline, and
steps/compare.sh makes the table of two cls configs."""

from __future__ import annotations

import csv
import json

import yaml

from cls_baseline import mfcc_logreg_baseline
from conftest import REPO, run, run_sh

SMALL_CORPUS = "--n-train 6 --n-dev 2 --n-test 2 --classes flute rain knock"


def run_mini_cls(recipe, tmp_path, config: str):
    """Stages 1-6 of the cls mini recipe with ``config`` on the default mini_cls corpus:
    (run.sh's result, results.json rows by set, the MFCC baseline's test accuracy in %)."""
    exp = tmp_path / "exp"
    root = tmp_path / "mini_cls"
    res = run_sh(recipe, "--corpus", "mini_cls", "--data-root", str(root), "--config", config,
                 "--exp", str(exp), timeout=2400)  # 2-3 min alone on 2 cores
    assert res.returncode == 0, res.stderr[-3000:]
    rows = {r["set"]: r for r in json.loads((exp / "results.json").read_text())}
    assert set(rows) == {"dev", "test"} and rows["test"]["task"] == "cls" and rows["test"]["n"] == 200
    baseline = mfcc_logreg_baseline(root / "train", root / "test")
    print(f"mini cls recipe {config}: test accuracy {rows['test']['accuracy_pct']:.2f}% "
          f"vs MFCC baseline {baseline:.2f}%")
    return res, rows, baseline


def test_mini_cls_recipe_beats_the_mfcc_baseline(recipe, tmp_path):
    res, rows, baseline = run_mini_cls(recipe, tmp_path, "conf/cls/mini.yaml")
    assert rows["test"]["accuracy_pct"] > baseline + 3.0, (rows["test"], baseline)
    assert 0.0 < rows["test"]["macro_f1"] <= 1.0
    exp = tmp_path / "exp"
    assert (exp / "plots" / "confusion_test.png").is_file()
    assert (exp / "scores" / "test" / "per_class.tsv").is_file()
    assert (exp / "log" / "stage6_report.log").is_file()


def test_mini_cls_recipe_on_random_tiny_ast_beats_the_mfcc_baseline(recipe, tmp_path):
    """conf/cls/ast_mini.yaml: the random tiny AST fine-tuned in full, stages 1-6."""
    _, rows, baseline = run_mini_cls(recipe, tmp_path, "conf/cls/ast_mini.yaml")
    assert rows["test"]["upstream"] == "random:tiny_ast"
    assert rows["test"]["accuracy_pct"] > baseline, (rows["test"], baseline)


def test_compare_two_cls_configs(recipe, tmp_path):
    configs = []
    for name, pooling in (("mean", "mean"), ("asp", "asp")):
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump({"base": str(REPO / "conf" / "cls" / "mini.yaml"),
                                        "head": {"pooling": pooling}, "data": {"batch_size": 6, "num_workers": 0},
                                        "train": {"epochs": 1}}))
        configs.append(path)
    res = run(["bash", str(recipe / "steps" / "compare.sh"), "--configs", " ".join(map(str, configs)),
               "--corpus", "mini_cls", "--data-root", str(tmp_path / "corpus"), "--mini-opts", SMALL_CORPUS,
               "--nj", "1", "--exp-root", str(tmp_path / "exp"), "--out", str(tmp_path / "cmp")],
              cwd=recipe, env={"OMP_NUM_THREADS": "1"}, timeout=1200)
    assert res.returncode == 0, res.stderr[-3000:]
    assert (tmp_path / "cmp" / "results.md").is_file()
    with open(tmp_path / "cmp" / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {"variant", "upstream", "trainable_pct", "set", "accuracy_pct", "macro_f1"} <= set(rows[0])
    assert sorted((r["variant"], r["set"]) for r in rows) == [("asp", "dev"), ("asp", "test"),
                                                              ("mean", "dev"), ("mean", "test")]
