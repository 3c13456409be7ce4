"""Two ranks (torchrun, gloo) of the trainer: its collectives meet NCCL's rules on fake CUDA, and a
non-finite loss seen by one rank only is handled by both alike (tests/multirank_worker.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from conftest import REPO, run
from fake_cuda import write_tiny_data_dir
from multirank_worker import PATIENCE, PERSISTENT_FROM


def torchrun(mode: str, data: Path, exp: Path):
    exp.mkdir(parents=True, exist_ok=True)
    return run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                str(REPO / "tests" / "multirank_worker.py"), mode, str(data), str(exp)],
               env={"OMP_NUM_THREADS": "1"}, timeout=300)


def ranks(exp: Path) -> list[dict]:
    found = [json.loads((exp / f"rank{r}.json").read_text()) for r in (0, 1) if (exp / f"rank{r}.json").is_file()]
    assert len(found) == 2, "a rank did not finish"
    return found


def test_collectives_on_the_training_device_in_the_same_order(tmp_path):
    """2 epochs of 2 steps of 2 batches per rank on fake CUDA: every collective takes tensors of the
    rank's own CUDA device (a CPU tensor fails as NCCL would), the ranks issue the same sequence,
    the process group and DDP are made for the rank's device, and the first batch of each step
    accumulates its gradients without DDP's all-reduce (no_sync)."""
    data = write_tiny_data_dir(tmp_path / "data", speakers=4, utts_per_speaker=4)
    proc = torchrun("nccl_rules", data, tmp_path / "exp")
    assert proc.returncode == 0, proc.stderr[-4000:]
    rank0, rank1 = ranks(tmp_path / "exp")
    assert rank0["collectives"] == rank1["collectives"] and rank0["steps"] == rank1["steps"] == 4
    assert rank0["init"]["backend"] == "nccl" and rank1["init"]["device_id"] == "cuda:1"
    assert rank0["devices_set"] == [0] and rank1["devices_set"] == [1]
    assert rank0["collectives"][0].startswith("DDP(") and rank0["collectives"].count("no_sync") == 4
    assert any(c.startswith("all_reduce(float") for c in rank0["collectives"])
    assert "last.pt" in rank0["saved"] and not rank1["saved"]  # rank 0 writes the checkpoints


def test_a_nan_on_one_rank_is_skipped_then_stops_every_rank(tmp_path):
    """DDP on two CPU ranks.  Rank 1's loss is NaN at its 2nd batch, then from its 6th on: both
    ranks skip step 2 (the scheduler does not advance), keep identical weights, and stop together
    after PATIENCE non-finite steps, naming them; last.pt stays the state of the last good step,
    and rank 0 alone wrote train_epochs.csv (one row: the epoch before the stop)."""
    data = write_tiny_data_dir(tmp_path / "data", speakers=4, utts_per_speaker=4)
    exp = tmp_path / "exp"
    proc = torchrun("nan", data, exp)
    assert proc.returncode == 0, proc.stderr[-4000:]
    rank0, rank1 = ranks(exp)
    last_bad = PERSISTENT_FROM + PATIENCE - 1
    for result in (rank0, rank1):
        assert result["step"] == last_bad
        assert f"steps {PERSISTENT_FROM}-{last_bad}" in result["error"] and f"step {PERSISTENT_FROM - 1}" in result["error"]
    weights0, weights1 = torch.load(exp / "rank0.pt"), torch.load(exp / "rank1.pt")
    for key in weights0:
        if not key.endswith(("running_mean", "running_var", "num_batches_tracked")):
            assert torch.equal(weights0[key], weights1[key]), key
        assert torch.isfinite(weights0[key].float()).all(), key
    last = torch.load(exp / "checkpoints" / "last.pt", weights_only=False)
    assert last["step"] == PERSISTENT_FROM - 1
    assert last["scheduler"]["last_epoch"] == PERSISTENT_FROM - 2  # step 2 was skipped
    for key, value in last["trainable"].items():
        assert torch.equal(value, weights0[key]), key  # the skipped steps changed nothing
    assert (exp / "train_epochs.csv").read_text().count("\n") == 2  # header + epoch 1
