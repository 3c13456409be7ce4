"""An experiment directory: its resolved config and its trained model.

``EXP/config.yaml`` holds the fully resolved config of the first training run
in ``EXP``.  Training again in the same directory resumes only when the config
is identical; otherwise it stops, naming the first key that differs, so two
different settings never share checkpoints.
The upstream is checked (:func:`spkpeft.upstream.check_upstream`)
before ``config.yaml`` is first written, so a run stopped by a missing or
malformed upstream checkpoint leaves no config behind.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import yaml

from spkpeft.engine.checkpoint import load_checkpoint
from spkpeft.config import read_yaml
from spkpeft.tasks.config import Config, config_from_dict, config_to_dict, load_config
from spkpeft.io.atomic import write_text_atomic
from spkpeft.errors import SpkpeftError
from spkpeft.tasks.base import get_task
from spkpeft.upstream import check_upstream

CHECKPOINT_NAMES = ("best", "last", "avg")


def first_difference(a: Any, b: Any, prefix: str = "") -> str | None:
    """Dotted key of the first difference between two nested dicts (None when equal)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                return f"{prefix}{key}"
            found = first_difference(a[key], b[key], f"{prefix}{key}.")
            if found:
                return found
        return None
    return None if a == b else prefix.rstrip(".")


def prepare_experiment(config_path: str | Path, exp: str | Path, upstream: str | None = None,
                       write: bool = True, overlays: list[str | Path] = (), init_from: str | None = None,
                       extra: dict | None = None) -> Config:
    """Resolve the config (+ overlays deep-merged in order, upstream and init overrides, then the
    dotted keys of ``extra``) and check it against ``EXP/config.yaml``."""
    exp = Path(exp)
    overrides: dict = {}
    if upstream:
        overrides["upstream.name"] = upstream
    if init_from:
        overrides["train.init_from"] = str(init_from)
    overrides.update(extra or {})
    cfg = load_config(config_path, overrides or None, overlays)
    resolved = config_to_dict(cfg)
    saved_path = exp / "config.yaml"
    if saved_path.is_file():
        # Read back through the config reader: a key added to spkpeft after the experiment was
        # started takes its default, so a resume after an upgrade is not refused for it.
        saved = config_to_dict(config_from_dict(read_yaml(saved_path), str(saved_path)))
        diff = first_difference(saved, resolved)
        if diff is not None:
            raise SpkpeftError(f"{saved_path}: the experiment holds a different config ('{diff}' differs from "
                               f"{config_path}); use another --exp or remove {exp}")
    elif write:
        # A missing or malformed upstream fails here, before config.yaml exists: a run that
        # cannot start must not leave a config that refuses the corrected command.
        check_upstream(cfg.upstream)
        exp.mkdir(parents=True, exist_ok=True)
        write_text_atomic(saved_path, yaml.safe_dump(resolved, sort_keys=False).splitlines())
    return cfg


def checkpoint_path(exp: Path, which: str) -> Path:
    """``best``/``last``/``avg`` name a checkpoint of ``exp``; anything else is a path."""
    return exp / "checkpoints" / f"{which}.pt" if which in CHECKPOINT_NAMES else Path(which)


def read_experiment_config(exp: str | Path) -> Config:
    """The resolved config of a trained experiment (``EXP/config.yaml``)."""
    cfg_path = Path(exp) / "config.yaml"
    if not cfg_path.is_file():
        raise SpkpeftError(f"{cfg_path}: missing (train the experiment first, stage 3)")
    return config_from_dict(read_yaml(cfg_path), str(cfg_path))


def trainable_state(path: Path) -> dict[str, torch.Tensor]:
    """The model's trained weights in a training checkpoint (its ``trainable`` ``model.*`` entries)."""
    ckpt = load_checkpoint(path)
    if "trainable" not in ckpt:
        raise SpkpeftError(f"{path}: not a spkpeft training checkpoint (no 'trainable' entry)")
    prefix = "model."
    return {k[len(prefix):]: v for k, v in ckpt["trainable"].items() if k.startswith(prefix)}


def build_trained_model(cfg: Config, exp: str | Path, state: dict[str, torch.Tensor], device: torch.device,
                        before_load: Callable[[Any], None] | None = None):
    """The model of ``cfg`` (task files such as ``classes.txt`` read from ``exp``) with the
    trained ``state`` loaded and the method merged, in eval mode on ``device``;
    ``before_load(model)`` sees the freshly built model first (e.g. to hash its upstream)."""
    model = get_task(cfg).inference_model(cfg, exp)
    if before_load is not None:
        before_load(model)
    model.load_trainable_state_dict(state)
    model.merge()
    return model.to(device).eval()


def load_trained_model(exp: str | Path, which: str | None, device: torch.device):
    """Build the model of ``EXP/config.yaml``, load a checkpoint's trainable weights and merge the method.

    Returns ``(model in eval mode, config, source)`` where ``source`` identifies
    the checkpoint file (path, size, modification time).
    """
    exp = Path(exp)
    cfg = read_experiment_config(exp)
    path = checkpoint_path(exp, which or cfg.extract.checkpoint)
    model = build_trained_model(cfg, exp, trainable_state(path), device)
    return model, cfg, checkpoint_source(path)


def expand_data_dirs(paths: Sequence[str | Path], sets_of: Callable[[Path], list[Path]]) -> list[Path]:
    """``paths`` with every corpus directory (a directory without ``wav.scp``) replaced by the
    data directories ``sets_of(corpus)`` chooses (e.g. a task's stage-4 sets); other paths are
    kept (reading them names what is wrong)."""
    out: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir() and not (path / "wav.scp").is_file():
            found = sets_of(path)
            if not found:
                raise SpkpeftError(f"{path}: no data directory (subdirectory with wav.scp) to run this task on")
            out += found
        else:
            out.append(path)
    return out


def checkpoint_source(path: Path) -> dict:
    """What identifies a checkpoint file for stage 4's outputs: path, size, modification time."""
    stat = os.stat(path)
    return {"checkpoint": str(Path(path).resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
