"""Shared test fixtures: repository paths and a subprocess runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent


def run(cmd: list[str], cwd: Path = REPO, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run a command with the test interpreter's environment; capture text output."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(REPO) + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + full_env["PATH"]
    full_env.update(env or {})
    return subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)


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
