"""steps/compare.sh on a small mini corpus with two short configs: tables, plots, nothing redone on a re-run."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import yaml

from conftest import REPO, run

MINI = "--n-train-spk 6 --n-test-spk 3 --n-sessions 2 --n-utts 2 --min-dur 0.8 --max-dur 1.2"
SHORT = {
    "upstream": {"name": "random:tiny_wavlm"},
    "head": {"channels": 32, "embed_dim": 32, "res2_scale": 2, "se_channels": 8, "attention_channels": 8},
    "task": {"val_speakers": 2, "val_max_seconds": 1.0},
    "data": {"crop_seconds": 0.5, "batch_size": 4, "num_workers": 0},
    "train": {"epochs": 1},
}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def write_config(path: Path, base: str) -> Path:
    path.write_text(yaml.safe_dump({"base": str(REPO / "conf" / base), **SHORT}))
    return path


def compare(recipe: Path, tmp_path: Path, configs: list[Path]):
    return run(["bash", str(recipe / "steps" / "compare.sh"), "--configs", " ".join(map(str, configs)),
                "--data-root", str(tmp_path / "corpus"), "--mini-opts", MINI, "--nj", "1",
                "--exp-root", str(tmp_path / "exp"), "--out", str(tmp_path / "cmp")],
               cwd=recipe, env={"OMP_NUM_THREADS": "1"})


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert len(data) > 0 and data[:8] == PNG_MAGIC, path


def test_compare_two_variants(recipe, tmp_path):
    configs = [write_config(tmp_path / "tiny_sv.yaml", "mini.yaml"),
               write_config(tmp_path / "tiny_bitfit.yaml", "bitfit.yaml")]
    res = compare(recipe, tmp_path, configs)
    assert res.returncode == 0, res.stderr[-4000:]

    exp, out = tmp_path / "exp", tmp_path / "cmp"
    for variant in ("tiny_sv", "tiny_bitfit"):
        results = json.loads((exp / variant / "results.json").read_text())
        assert [(r["trials"], r["norm"]) for r in results] == [("vox1_o", n) for n in ("none", "snorm", "asnorm")]
        for name in ("vox1_o.score", "vox1_o.snorm.score", "vox1_o.asnorm.score"):
            assert (exp / variant / "scores" / name).is_file()
        for name in ("det_vox1_o.png", "scores_vox1_o.png"):
            assert_png(exp / variant / "plots" / name)

    with open(out / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["trials"], r["norm"], r["variant"]) for r in rows] == [
        ("vox1_o", n, v) for n in ("none", "snorm", "asnorm") for v in ("tiny_sv", "tiny_bitfit")]
    for row in rows:
        assert row["upstream"] == "random:tiny_wavlm"
        info = json.loads((exp / row["variant"] / "train_done.json").read_text())
        assert int(row["trainable_params"]) == info["trainable_params"]
        assert float(row["trainable_pct"]) == 100 * info["trainable_params"] / info["total_params"]
        assert 0 <= float(row["eer_pct"]) <= 100
        assert float(row["train_seconds"]) > 0 and float(row["peak_memory_mb"]) > 0
    md = (out / "results.md").read_text().splitlines()
    assert md[0].startswith("| variant | upstream | trainable params | trainable % | trials | norm | EER (%)")
    assert len(md) == 2 + len(rows)
    for name in ("det_vox1_o.png", "det_vox1_o.snorm.png", "det_vox1_o.asnorm.png"):
        assert_png(out / name)

    stamps = {p: p.stat().st_mtime_ns for v in ("tiny_sv", "tiny_bitfit")
              for p in (exp / v / "results.json", exp / v / "train_done.json", exp / v / "checkpoints" / "last.pt")}
    again = compare(recipe, tmp_path, configs)
    assert again.returncode == 0, again.stderr[-4000:]
    assert again.stderr.count("has results.json; skipping") == 2
    assert "Stage 3" not in again.stderr and "up to date" in again.stderr
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    with open(out / "results.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == len(rows)


def test_compare_usage_errors(recipe, tmp_path):
    res = run(["bash", str(recipe / "steps" / "compare.sh")], cwd=recipe)
    assert res.returncode == 1 and "--configs is required" in res.stderr and "Usage:" in res.stderr
    same = []
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        same.append(write_config(tmp_path / sub / "x.yaml", "mini.yaml"))
    res = run(["bash", str(recipe / "steps" / "compare.sh"), "--configs", " ".join(map(str, same)), "--stage", "3",
               "--exp-root", str(tmp_path / "exp")], cwd=recipe)
    assert res.returncode == 1 and "distinct names" in res.stderr
