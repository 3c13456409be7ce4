"""A checkpoint or package from elsewhere never runs code when loaded (``weights_only=True``
everywhere, the trainer's own checkpoints included, with NumPy's RNG state allow-listed)."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from spkpeft.engine.checkpoint import load_checkpoint, save_atomic
from spkpeft.errors import SpkpeftError


class Payload:
    """Unpickling it calls ``os.system`` (what a malicious checkpoint does)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def malicious(path: Path, marker: Path, inner: dict | None = None) -> Path:
    """A torch.save'd dictionary that runs ``touch MARKER`` when unpickled without restrictions."""
    torch.save({**(inner or {}), "trainable": {"model.w": torch.zeros(2)}, "evil": Payload(marker)}, path)
    return path


def test_a_malicious_checkpoint_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    path = malicious(tmp_path / "last.pt", marker)
    with pytest.raises(SpkpeftError, match=rf"^{path}: refusing to load checkpoint: it holds objects that could "
                                           r"run code \(it asks for posix.system\)"):
        load_checkpoint(path)
    assert not marker.exists()


def test_the_trainers_own_checkpoints_load_with_weights_only(tmp_path):
    """last.pt holds the RNG states (NumPy's is an ndarray), optimizer and scheduler states,
    floats such as inf: all of it loads through the restricted unpickler."""
    state = {"trainable": {"model.w": torch.randn(3)}, "rng": {"python": random.getstate(),
             "numpy": np.random.get_state(), "torch": torch.get_rng_state()},
             "optimizer": torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))]).state_dict(),
             "best_metric": float("inf"), "epoch_totals": {"loss": 0.0, "n": 0}}
    save_atomic(state, tmp_path / "last.pt")
    loaded = load_checkpoint(tmp_path / "last.pt")
    np.random.set_state(loaded["rng"]["numpy"])
    random.setstate(loaded["rng"]["python"])
    assert loaded["best_metric"] == float("inf") and torch.equal(loaded["trainable"]["model.w"],
                                                                 state["trainable"]["model.w"])


@pytest.mark.parametrize("module, reader, fragment", [
    ("spkpeft.tasks.experiment", "trainable_state", "refusing to load checkpoint"),  # --init-from, export, stage 4
    ("spkpeft.upstream.s3prl.sources", "read_checkpoint", "not a readable PyTorch checkpoint"),  # upstream.name: PATH
])
def test_every_checkpoint_reader_refuses_a_malicious_file(tmp_path, module, reader, fragment):
    import importlib

    marker = tmp_path / "pwned"
    with pytest.raises(SpkpeftError, match=fragment):
        getattr(importlib.import_module(module), reader)(malicious(tmp_path / "x.pt", marker))
    assert not marker.exists()


def test_a_malicious_package_is_refused_and_runs_nothing(tmp_path):
    """A package whose package.json matches its files (its author wrote both) still cannot run code."""
    from spkpeft.inference.package import PACKAGE_FILE, load_any, sha256_file

    marker = tmp_path / "pwned"
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "config.yaml").write_text("task: sv\nupstream: {name: 'random:tiny_wavlm'}\n")
    malicious(pkg / "trainable.pt", marker)
    files = {n: {"bytes": (pkg / n).stat().st_size, "sha256": sha256_file(pkg / n)} for n in ("config.yaml",
                                                                                           "trainable.pt")}
    (pkg / PACKAGE_FILE).write_text(json.dumps({"format": "spkpeft-package", "version": 1, "kind": "adapter-only",
                                                "task": "sv", "upstream": {"name": "random:tiny_wavlm",
                                                                            "sha256": "0" * 64},
                                                "files": files}))
    with pytest.raises(SpkpeftError, match=r"trainable.pt: refusing to load trained weights"):
        load_any(pkg)
    assert not marker.exists()


def test_a_malicious_mean_npy_is_refused(tmp_path):
    """NumPy files of a package load without pickles (an object array is refused, in one line)."""
    from spkpeft.tasks.sv.task import load_mean

    path = tmp_path / "mean.npy"
    np.save(path, np.array([Payload(tmp_path / "pwned")], dtype=object), allow_pickle=True)
    with pytest.raises(SpkpeftError, match=rf"^{path}: cannot load"):
        load_mean(path)
    assert not (tmp_path / "pwned").exists()
