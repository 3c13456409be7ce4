"""Smoke tests of the scale benches: bench/gpu_check.sh as a CPU dry run, then
bench/large_corpus.py at toy sizes with the dry run's experiment (no timing is checked: the
numbers live in docs/benchmarks.md)."""

from __future__ import annotations

import json
import sys

from conftest import REPO, run


def check_gpu_check_dry_run(out) -> None:
    proc = run(["bash", str(REPO / "bench" / "gpu_check.sh"), "--device", "cpu", "--dry-run", "true",
                "--configs", "lora", "--out", str(out), "--budget", "900"])  # the 280 s default is the GPU run's
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = (out / "benchmarks.md").read_text()
    assert "<!-- BEGIN peft_cost_cuda -->" in text and "**Dry run on the CPU**" in text
    flops = [line for line in text.splitlines() if line.startswith("| `") and line.count("|") == 7]
    assert len(flops) == 1 and flops[0].startswith("| `lora` |")
    assert float(flops[0].split("|")[2]) > 0  # GFLOP per step counted
    assert "`torchrun --standalone --nproc_per_node 2` (gloo" in text and "every embedding finite" in text
    assert "**training (fp16)**: `torchrun --standalone --nproc_per_node 1` (gloo" in text
    assert "`spkpeft.bin.pretrain --device cpu`" in text and "every loss finite" in text


def check_large_corpus_quick(tmp_path, exp) -> None:
    doc, results = tmp_path / "benchmarks.md", tmp_path / "results.json"
    doc.write_text("# Benchmarks\n\nkept text\n")
    proc = run([sys.executable, str(REPO / "bench" / "large_corpus.py"), "--quick", "--exp", str(exp),
                "--results", str(results), "--doc", str(doc)])
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    got = json.loads(results.read_text())
    assert [r["n"] for r in got["prep"]] == [200, 600] == [r["n"] for r in got["score"]]
    for row in got["prep"]:
        assert all(row[s]["wall_s"] > 0 and row[s]["peak_rss_mb"] > 0 for s in ("stage1", "stage2"))
    assert [r["n_trials"] for r in got["score"]] == [400, 1200]
    assert all(set(r["eer_pct"]) == {"none", "snorm", "asnorm"} for r in got["score"])
    resume = got["extract_resume"]
    assert resume["identical"] and 0 < resume["shards_before_kill"] < resume["n_shards"] == 8
    text = doc.read_text()
    assert "kept text" in text and "<!-- BEGIN large_corpus -->" in text
    assert "| stage 2 validate: growth 200 -> 600 (ideal 3.0) |" in text
    assert "| stage 5 score: growth 400 -> 1,200 (ideal 3.0) |" in text
    assert "identical to the uninterrupted run: yes" in text


def test_gpu_check_dry_run_then_large_corpus_quick(tmp_path):
    """One test: the large-corpus extraction reuses the experiment the dry run trained."""
    check_gpu_check_dry_run(tmp_path / "gpu")
    check_large_corpus_quick(tmp_path, tmp_path / "gpu" / "exp")


def test_gpu_check_fails_clearly_without_cuda(tmp_path):
    proc = run(["bash", str(REPO / "bench" / "gpu_check.sh"), "--out", str(tmp_path)],
               env={"CUDA_VISIBLE_DEVICES": ""})
    assert proc.returncode == 1 and "no CUDA device" in proc.stderr
    proc = run(["bash", str(REPO / "bench" / "gpu_check.sh"), "--device", "cpu"])
    assert proc.returncode == 1 and "only a dry run" in proc.stderr
    assert not (tmp_path / "cost.jsonl").exists()


def test_gpu_check_stops_when_its_budget_runs_out(tmp_path):
    proc = run(["bash", str(REPO / "bench" / "gpu_check.sh"), "--device", "cpu", "--dry-run", "true",
                "--budget", "1", "--out", str(tmp_path)])
    assert proc.returncode == 124 and "ran out of the 1s budget" in proc.stderr
    assert not (tmp_path / "benchmarks.md").exists()
