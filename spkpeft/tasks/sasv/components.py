"""The two trained models a SASV experiment consumes (``task.sv``, ``task.cm``): an experiment
directory or an exported package of each, loaded for inference by the stage's tool
(:data:`spkpeft.tasks.base.TrainedLoader`: :func:`spkpeft.inference.package.load_any`, LoRA-style
methods merged, eval mode)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from spkpeft.errors import SpkpeftError
from spkpeft.tasks.base import TrainedLoader


@dataclass
class Component:
    """A trained model the task consumes (an experiment or an exported package)."""

    model: torch.nn.Module          # merged, eval mode
    task: str                       # its config's task.type
    path: Path
    source: dict                    # identifies its weights
    mean: np.ndarray | None = None  # sv: the training embeddings' mean (subtracted before the cosine)


Loader = Callable[[str], Component]


def component_loader(load_trained: TrainedLoader | None, device: str | torch.device) -> Loader:
    """``path -> Component``: an experiment directory or an exported package, loaded on ``device``
    by ``load_trained`` (given by the stage's tool)."""
    def load(path: str) -> Component:
        if load_trained is None:
            raise SpkpeftError("task sasv loads its components through the stage tools (spkpeft train, "
                               "spkpeft extract), which give it a loader of trained models")
        if not path:
            raise SpkpeftError("task sasv: task.sv and task.cm must name a trained experiment or package "
                               "(the SASV recipes write them into EXP/components.yaml, an overlay)")
        loaded = load_trained(path, device)
        source = {"path": str(Path(path).resolve()), "kind": loaded.kind, **loaded.info}
        return Component(loaded.model, loaded.cfg.task.type, Path(loaded.directory), source, loaded.mean)
    return load


def check_component(component: Component, want: str, role: str) -> Component:
    """Refuse a component of another task than ``want`` (naming its path)."""
    if component.task != want:
        raise SpkpeftError(f"{component.path}: the {role} component must be a '{want}' model, this one is "
                           f"'{component.task}'")
    return component
