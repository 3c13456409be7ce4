"""One run per experiment directory: ``EXP/.lock`` (pid, host), released on exit, a stale one taken
over, a second run refused in one line -- with real processes (``spkpeft.bin.train`` and ``run.sh``)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, run
from spkpeft.errors import SpkpeftError
from spkpeft.io.lock import ENV, LOCK_FILE, ExperimentLock, experiment_lock, process_start
from test_train import tiny_data, train_cmd  # noqa: F401  (tiny_data: a fixture)

TRAIN = {"train.deterministic": True, "train.epochs": 1, "train.save_every_steps": 2}


def wait_for(predicate, timeout: float = 300, proc: subprocess.Popen | None = None) -> None:
    deadline = time.time() + timeout
    while not predicate():
        assert proc is None or proc.poll() is None, "the process ended first"
        assert time.time() < deadline, "timed out"
        time.sleep(0.05)


def lock_info(exp: Path) -> dict:
    try:
        return json.loads((exp / LOCK_FILE).read_text())
    except (OSError, ValueError):
        return {}


def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# ------------------------------------------------------------------ the lock itself

def test_lock_is_taken_refused_released(tmp_path):
    exp = tmp_path / "exp"
    with experiment_lock(exp) as lock:
        info = lock_info(exp)
        assert info["pid"] == os.getpid() and info["host"] == socket.gethostname()
        assert info["start"] == process_start(os.getpid()) and lock.held
        other = subprocess.run([sys.executable, "-c", "import sys; from spkpeft.io.lock import experiment_lock\n"
                                f"experiment_lock({str(exp)!r}).acquire()"], capture_output=True, text=True,
                               env={**os.environ, "PYTHONPATH": str(REPO)})
        assert other.returncode == 1
        assert (f"spkpeft.errors.SpkpeftError: {exp}: another run is using this experiment directory "
                f"(pid {os.getpid()} on {socket.gethostname()}") in other.stderr
    assert not (exp / LOCK_FILE).exists()


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path, capsys):
    exp = tmp_path / "exp"
    exp.mkdir()
    pid = dead_pid()
    (exp / LOCK_FILE).write_text(json.dumps({"pid": pid, "host": socket.gethostname(), "start": 1,
                                             "token": "x", "command": "python -m spkpeft.bin.train"}))
    with experiment_lock(exp):
        assert lock_info(exp)["pid"] == os.getpid()
    assert f"taking over the stale lock of a run that has ended (pid {pid} on" in capsys.readouterr().err


def test_a_reused_pid_or_a_torn_file_is_stale_too(tmp_path):
    exp = tmp_path / "exp"
    exp.mkdir()
    parent = os.getppid()  # alive, but started at another time than the lock says
    (exp / LOCK_FILE).write_text(json.dumps({"pid": parent, "host": socket.gethostname(),
                                             "start": (process_start(parent) or 0) + 1, "token": "x"}))
    with experiment_lock(exp):
        pass
    (exp / LOCK_FILE).write_text("")  # a run killed between creating and writing it
    with experiment_lock(exp):
        assert lock_info(exp)["pid"] == os.getpid()


def test_a_lock_from_another_host_is_refused_with_what_to_do(tmp_path):
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / LOCK_FILE).write_text(json.dumps({"pid": 1, "host": "node-b", "start": 5, "token": "t"}))
    with pytest.raises(SpkpeftError, match=rf"locked by a run on host node-b .*cannot be checked from "
                                           rf"{socket.gethostname()}; if that run has ended, delete {exp}/.lock"):
        experiment_lock(exp).acquire()


def test_a_tool_started_by_the_holder_runs_under_its_lock(tmp_path, monkeypatch):
    exp = tmp_path / "exp"
    holder = ExperimentLock(exp, pid=os.getppid()).acquire()
    monkeypatch.setenv(ENV, holder.token)
    with experiment_lock(exp) as nested:
        assert not nested.held
    assert lock_info(exp)["token"] == holder.token  # the holder's, untouched by the nested tool
    monkeypatch.delenv(ENV)
    with pytest.raises(SpkpeftError, match="another run is using"):
        experiment_lock(exp).acquire()
    holder.release()
    assert not (exp / LOCK_FILE).exists()


# ------------------------------------------------------------------ real processes

def test_second_training_is_refused_and_a_killed_ones_lock_is_taken_over(tiny_data, tmp_path,  # noqa: F811
                                                                         isolated_model_cache):
    exp = tmp_path / "exp"
    cmd = train_cmd("mini.yaml", tiny_data, exp, TRAIN)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: (exp / "config.yaml").is_file() and lock_info(exp).get("pid") == first.pid, proc=first)
        first.send_signal(signal.SIGSTOP)  # alive, holding the lock, writing nothing meanwhile
        before = {p: p.stat().st_mtime_ns for p in exp.rglob("*") if p.is_file()}
        second = run(cmd, env={"OMP_NUM_THREADS": "1"})
        assert second.returncode == 1
        last = second.stderr.strip().splitlines()[-1]
        assert last.startswith(f"train: error: {exp}: another run is using this experiment directory "
                               f"(pid {first.pid} on {socket.gethostname()}: "), second.stderr[-2000:]
        assert "Traceback" not in second.stderr
        assert {p: p.stat().st_mtime_ns for p in exp.rglob("*") if p.is_file()} == before  # nothing touched
    finally:
        first.kill()
        first.wait()
    third = run(cmd, env={"OMP_NUM_THREADS": "1"})  # the killed run's lock is stale: taken over, then resumed
    assert third.returncode == 0, third.stderr[-2000:]
    assert f"{exp}/.lock: taking over the stale lock of a run that has ended (pid {first.pid} on" in third.stderr
    assert (exp / "train_done.json").is_file() and not (exp / LOCK_FILE).exists()


def test_second_run_sh_on_the_same_exp_is_refused_before_touching_it(recipe, tiny_data, tmp_path):  # noqa: F811
    shutil.copytree(tiny_data, recipe / "data" / "mini")  # stage 1's output
    config = tmp_path / "tiny.yaml"
    config.write_text(f"base: {recipe / 'conf' / 'mini.yaml'}\nupstream: {{name: 'random:tiny_wavlm'}}\n"
                      "head: {channels: 32, res2_scale: 2, se_channels: 8, attention_channels: 8}\n"
                      "data: {crop_seconds: 0.5, batch_size: 4, num_workers: 0}\n"
                      "task: {val_speakers: 2}\ntrain: {epochs: 1}\n")
    exp = tmp_path / "exp"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1",
           "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"]}
    args = ["bash", str(recipe / "run.sh"), "--stage", "3", "--stop-stage", "3", "--config", str(config),
            "--exp", str(exp)]
    first = subprocess.Popen(args, cwd=recipe, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    try:
        # the trainer has started (train.log): past every path.sh, whose venv flock a stopped run would hold
        wait_for(lambda: (exp / "train.log").is_file(), proc=first)
        assert lock_info(exp)["pid"] == first.pid  # run.sh holds it, its trainer runs under it
        os.killpg(first.pid, signal.SIGSTOP)  # in stage 3, holding the lock; nothing writes meanwhile
        before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in exp.rglob("*") if p.is_file()}
        second = run(args)
        assert second.returncode == 1
        assert second.stderr.strip().splitlines()[-1].startswith(
            f"lock: error: {exp}: another run is using this experiment directory (pid {first.pid} on "), second.stderr
        # nothing of the first run touched: its stage log is not truncated, run.cmd not appended to
        assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in exp.rglob("*") if p.is_file()} == before
        assert (exp / "run.cmd").read_text().count("run.sh") == 1
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
