"""The whole configuration of an experiment: one dataclass per section.

Sections: ``task`` (:data:`spkpeft.tasks.base.TASKS`: ``sv``, ``cls``, ``cm``, ``sasv``), ``upstream``
(:data:`spkpeft.upstream.base.UPSTREAMS`), ``peft`` (:data:`spkpeft.peft.METHODS`),
``aggregation``, ``head``, ``loss`` (registries of :mod:`spkpeft.nn`), ``data``, ``train``,
``extract``.  Every registry-backed section is a tagged union (``task.type``,
``upstream.type``, ``peft.method``, ``aggregation.type``, ``head.type``, ``loss.type``)
read strictly by :mod:`spkpeft.config`: unknown keys and wrong types are errors naming the
file and the dotted key.  Each section's schema lives with its component; adding a
section is one field of :class:`Config`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from spkpeft import config as reader
from spkpeft.data.crops import DataConfig
from spkpeft.engine.extract import ExtractConfig
from spkpeft.engine.trainer import TrainConfig
from spkpeft.errors import SpkpeftError
from spkpeft.nn.aggregation import AggregationConfig
from spkpeft.nn.heads import HeadConfig
from spkpeft.nn.losses import LossConfig
from spkpeft.peft import METHODS, PeftConfig
from spkpeft.peft.finetune import FrozenConfig
from spkpeft.tasks import registered, sv  # noqa: F401  (register the tasks; sv: the default task section)
from spkpeft.tasks.base import TaskConfig
from spkpeft.upstream import UpstreamConfig

OVERRIDE_SOURCE = reader.OVERRIDE_SOURCE


@dataclass
class Config:
    """The whole configuration; each field is a section."""

    task: TaskConfig = field(default_factory=lambda: sv.SVTaskConfig())
    upstream: UpstreamConfig = field(default_factory=UpstreamConfig)
    peft: PeftConfig = field(default_factory=FrozenConfig)
    aggregation: AggregationConfig = field(default_factory=AggregationConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    extract: ExtractConfig = field(default_factory=ExtractConfig)


def validate_values(cfg: Config) -> None:
    """Checks across sections (types are checked while reading; each section's own range and
    cross-field checks run once, when its dataclass is made: ``__post_init__``)."""
    validate_averaging(cfg)


def validate_averaging(cfg: Config) -> None:
    """``train.average_last`` / ``average_best`` need a method whose parameters can be averaged:
    the mean of factorised updates is not the product of the mean factors (``mean(B) mean(A) !=
    mean(B A)``), so LoRA and Spectral-LoRA refuse it."""
    key = "average_last" if cfg.train.average_last > 0 else "average_best"
    if getattr(cfg.train, key) > 0 and not METHODS.get(cfg.peft.method).info["averageable"]:
        raise SpkpeftError(
            f"train.{key} must be 0 for peft.method '{cfg.peft.method}': its update B A is "
            f"factorised, and averaging the factors does not average the updates (use "
            f"extract.checkpoint best or last)"
        )


def load_config(path: str | Path, overrides: dict[str, Any] | None = None,
                overlays: Sequence[str | Path] = ()) -> Config:
    """Read, compose (``base:``), overlay, override and validate the config at ``path``.

    ``overlays``: files of sections deep-merged over the config in order (errors name them);
    ``overrides`` maps dotted keys (``{"upstream.name": "random:tiny_wavlm"}``) or nested
    mappings to values applied on top of everything.
    """
    data, provenance = reader.read_tree(path, overrides, overlays)
    return reader.build(Config, data, provenance, str(path), validate_values)


def config_from_dict(data: dict, source: str = "<dict>") -> Config:
    """Validate an already-merged mapping (e.g. a saved resolved config)."""
    return reader.build(Config, data, reader.record_provenance(data, source), source, validate_values)


def config_to_dict(cfg: Config) -> dict:
    """The resolved config as plain nested dicts (suitable for ``yaml.safe_dump``)."""
    return dataclasses.asdict(cfg)
