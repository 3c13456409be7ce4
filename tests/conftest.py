"""Shared test fixtures: repository paths and a subprocess runner."""

from __future__ import annotations

import os
import signal
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent

#: Modules whose tests run whole recipes or training runs (minutes, not seconds).  tests/run.sh
#: runs the suite in two xdist workers; collecting these first lets both workers start on them,
#: so that the suite does not end with one worker busy on a recipe while the other idles.
SLOW_MODULES = ("test_mini_recipe", "test_mini_cls_recipe", "test_mini_cm_recipe", "test_reliability",
                "test_run_sh", "test_compare", "test_train", "test_cm_task", "test_cls_task", "test_sasv_recipes")


def pytest_collection_modifyitems(config, items) -> None:
    """Order the known slow modules first (stable: the order inside each group is kept)."""
    rank = {name: i for i, name in enumerate(SLOW_MODULES)}
    items.sort(key=lambda item: rank.get(item.module.__name__.rsplit(".", 1)[-1], len(rank)))


def run(cmd: list[str], cwd: Path = REPO, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run a command with the test interpreter's environment; capture text output.

    The command gets its own process group, killed as a whole on timeout, so no
    grandchild (a trainer started by run.sh) outlives a failed test.
    """
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(REPO) + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + full_env["PATH"]
    full_env.update(env or {})
    with subprocess.Popen(cmd, cwd=cwd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, start_new_session=True) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def python_module(module: str, *args: str, **kwargs) -> subprocess.CompletedProcess:
    """``python -m module args...`` with the test interpreter."""
    return run([sys.executable, "-m", module, *map(str, args)], **kwargs)


def write_tone(path: Path, seconds: float = 0.5, sr: int = 16000, channels: int = 1) -> Path:
    """A short deterministic test signal."""
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    x = 0.1 * np.sin(2 * np.pi * 220 * t)
    if channels > 1:
        x = np.stack([x] * channels, axis=1)
    sf.write(str(path), x, sr)
    return path


@pytest.fixture
def repo() -> Path:
    return REPO


def copy_recipe(dest: Path) -> Path:
    """Copy the recipe (as a clone would hold it) into ``dest``, sharing this checkout's .venv."""
    for name in ("run.sh", "path.sh", "requirements.txt", "requirements-test.txt"):
        shutil.copy2(REPO / name, dest / name)
    for name in ("local", "steps", "conf", "spkpeft"):
        shutil.copytree(REPO / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    (dest / ".venv").symlink_to(REPO / ".venv")
    return dest


def run_sh(recipe: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """``bash RECIPE/run.sh args...`` from the recipe copy."""
    return run(["bash", str(recipe / "run.sh"), *args], cwd=recipe, timeout=timeout)


@pytest.fixture(scope="module")
def recipe(tmp_path_factory) -> Path:
    """A fresh copy of the recipe per test module: its data/ and exp/ stay out of the checkout."""
    return copy_recipe(tmp_path_factory.mktemp("recipe"))


@pytest.fixture(scope="session")
def default_mini_corpus(tmp_path_factory) -> Path:
    """The default-size mini corpus (80 train + 20 test speakers), generated once per test session."""
    root = tmp_path_factory.mktemp("mini_default")
    proc = run([sys.executable, str(REPO / "local" / "make_mini_corpus.py"), "--out", str(root)])
    assert proc.returncode == 0, proc.stderr
    return root


@pytest.fixture(scope="module")
def isolated_model_cache(tmp_path_factory):
    """Random checkpoints in a temporary $SPKPEFT_CACHE and one intra-op thread for a module
    (tiny models: extra threads only contend on a shared 2-core machine)."""
    import torch

    old_cache = os.environ.get("SPKPEFT_CACHE")
    old_threads = torch.get_num_threads()
    os.environ["SPKPEFT_CACHE"] = str(tmp_path_factory.mktemp("spkpeft-cache"))
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old_threads)
    if old_cache is None:
        os.environ.pop("SPKPEFT_CACHE", None)
    else:
        os.environ["SPKPEFT_CACHE"] = old_cache
