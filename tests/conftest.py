"""Shared test fixtures: repository paths and a subprocess runner; the fast tier.

The fast tier (``tests/run.sh --fast``, i.e. ``pytest -m "not slow"`` with
``SPKPEFT_IMPORT_LOG`` set) leaves out the tests marked ``slow``: every test of
:data:`SLOW_MODULES` (whole recipes and training runs), every test that starts a process
(its source calls ``run``, ``run_sh``, ``python_module`` or ``subprocess``, or a function of
its module that does: each costs an interpreter and a torch import) and the tests of :data:`SLOW_TESTS` (seconds each).  It must still reach every module of the package:
each pytest process and each subprocess it starts (``tests/importlog/sitecustomize.py``)
logs the spkpeft modules it imported, and the run fails naming those none imported.
"""

from __future__ import annotations

import inspect
import os
import re
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
                "test_run_sh", "test_compare", "test_train", "test_multirank", "test_cm_task", "test_cls_task",
                "test_sasv_recipes")


#: single slow tests of the other modules (module::name prefix of the test id)
SLOW_TESTS = (
    "test_api.py::test_", "test_pretrain.py::test_", "test_extract.py::test_", "test_hub_offline.py::test_",
    "test_large_corpus.py::test_", "test_bench.py::test_", "test_calibration.py::test_stage_5",
    "test_prepare_esc50.py::test_run_sh", "test_prepare_kaldi_dir.py::test_run_sh",
    "test_prepare_voxceleb2.py::test_run_sh", "test_prepare_cnceleb1.py::test_run_sh",
    "test_prepare_speechcommands.py::test_cli_recipe", "test_cv_petl.py::test_cv_and_petl_scripts",
    "test_shards.py::test_", "test_batch_invariance.py::test_", "test_ast_configs.py::test_",
    "test_cm_metrics.py::test_cli", "test_report_cm.py::test_report", "test_cls_evaluate.py::test_report",
    "test_cls_evaluate.py::test_compare", "test_mini_corpus.py::test_", "test_mini_cls_corpus.py::test_",
    "test_mini_cm_corpus.py::test_", "test_peft.py::test_training", "test_peft.py::test_merged",
    "test_report_cm.py::test_cm_curves", "test_upstream.py::test_hidden_states_match", "test_scale_io.py::test_",
    "test_mini_kws_corpus.py::test_", "test_paper_configs.py::test_",
)
#: modules no test needs to import (the ``python -m spkpeft`` shim runs as ``__main__``)
NOT_IMPORTED = ("spkpeft.__main__",)
IMPORT_LOG = "SPKPEFT_IMPORT_LOG"


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "slow: left out of the fast tier (tests/run.sh --fast)")


#: a test whose source matches this starts a process
STARTS_A_PROCESS = re.compile(r"\b(run|run_sh|python_module|prepare_sh|compare)\(|\bsubprocess\.")


def process_helpers(module) -> re.Pattern | None:
    """A pattern matching calls of the test module's own functions (not tests) that start a
    process (``def validate(...): return python_module(...)``), or None when it has none."""
    names = []
    for name, value in vars(module).items():
        if name.startswith("test_") or not inspect.isfunction(value) or value.__module__ != module.__name__:
            continue
        try:
            if STARTS_A_PROCESS.search(inspect.getsource(value)):
                names.append(re.escape(name))
        except (OSError, TypeError):
            continue
    return re.compile(rf"\b({'|'.join(names)})\(") if names else None


def is_slow(item) -> bool:
    module = item.module.__name__.rsplit(".", 1)[-1]
    test_id = f"{module}.py::{item.name}"
    if module in SLOW_MODULES or test_id.startswith(SLOW_TESTS):
        return True
    try:
        source = inspect.getsource(item.function)
    except (OSError, TypeError, AttributeError):
        return False
    helpers = process_helpers(item.module)
    return bool(STARTS_A_PROCESS.search(source) or (helpers and helpers.search(source)))


def pytest_collection_modifyitems(config, items) -> None:
    """Mark the slow tests; order the known slow modules first (stable: the order inside each
    group is kept)."""
    for item in items:
        if is_slow(item):
            item.add_marker(pytest.mark.slow)
    rank = {name: i for i, name in enumerate(SLOW_MODULES)}
    items.sort(key=lambda item: rank.get(item.module.__name__.rsplit(".", 1)[-1], len(rank)))


def package_modules() -> set[str]:
    """Every module of the package, from its files."""
    names = set()
    for path in (REPO / "spkpeft").rglob("*.py"):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        names.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names - set(NOT_IMPORTED)


def pytest_sessionfinish(session, exitstatus) -> None:
    """Fast tier: log this process's spkpeft imports; the controlling process (after the
    workers) fails the run when a module of the package was imported by no test."""
    log = os.environ.get(IMPORT_LOG)
    if not log:
        return
    with open(log, "a", encoding="utf-8") as handle:
        handle.write("".join(f"{n}\n" for n in sorted(sys.modules) if n.startswith("spkpeft")))
    if hasattr(session.config, "workerinput") or exitstatus != 0:
        return
    missing = sorted(package_modules() - set(Path(log).read_text(encoding="utf-8").split()))
    if missing:
        print(f"\nfast tier: no test imported {len(missing)} module(s): {' '.join(missing)}", file=sys.stderr)
        session.exitstatus = 1


def run(cmd: list[str], cwd: Path = REPO, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run a command with the test interpreter's environment; capture text output.

    The command gets its own process group, killed as a whole on timeout, so no
    grandchild (a trainer started by run.sh) outlives a failed test.
    """
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(REPO) + os.pathsep + full_env.get("PYTHONPATH", "")
    if full_env.get(IMPORT_LOG):  # the fast tier: subprocesses log their spkpeft imports
        full_env["PYTHONPATH"] = str(REPO / "tests" / "importlog") + os.pathsep + full_env["PYTHONPATH"]
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


def prepared_cm_corpus(root: Path, **spec) -> Path:
    """A synthetic corpus in the ASVspoof 2019 LA layout (``CmCorpusSpec(**spec)``) under
    ``root/raw``, prepared by the real stage-1 script into ``root/data`` (returned)."""
    from spkpeft.data.synth_spoof import CmCorpusSpec, write_cm_corpus

    write_cm_corpus(root / "raw", CmCorpusSpec(**spec))
    proc = subprocess.run([sys.executable, str(REPO / "local" / "prepare_asvspoof2019_la.py"), str(root / "raw"),
                           str(root / "data")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return root / "data"


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
    for name in ("local", "steps", "conf", "spkpeft", "egs"):
        shutil.copytree(REPO / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    (dest / ".venv").symlink_to(REPO / ".venv")
    return dest


def run_sh(recipe: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """``bash RECIPE/run.sh args...`` from the recipe copy."""
    return run(["bash", str(recipe / "run.sh"), *args], cwd=recipe, timeout=timeout)


#: the recipe copies live in a directory whose name holds a space and non-ASCII letters, so that
#: every recipe test runs its stages with such paths (audio, data, experiments, logs, packages)
RECIPE_DIR = "récipe dir ü"


@pytest.fixture(scope="module")
def recipe(tmp_path_factory) -> Path:
    """A fresh copy of the recipe per test module: its data/ and exp/ stay out of the checkout."""
    dest = tmp_path_factory.mktemp("recipe") / RECIPE_DIR
    dest.mkdir()
    return copy_recipe(dest)


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
