"""Exported packages: a trained model in a directory that loads without its experiment.

Layout of ``DIR`` (``python -m spkpeft.bin.export --exp EXP --out DIR``)::

    package.json      format, kind, task, method, upstream {type, name, sha256, file, format},
                      checkpoint, files {relative path: {bytes, sha256}}: written last
    config.yaml       the experiment's resolved config
    model.pt          full: the merged model's state dict (LoRA / Spectral-LoRA folded into
                      the weights, prefix MLPs folded into plain prefixes, wrappers removed),
                      without the upstream parameters that training left unchanged
    upstream.pt       full: the upstream's checkpoint file (s3prl local format) as trained on;
                      absent for an upstream without weights (fbank)
    upstream/         full, AST: instead of upstream.pt, config.json and the weights file
                      (model.safetensors or pytorch_model.bin) of the model directory
    trainable.pt      adapter-only: only the trained parameters and buffers (the
                      checkpoint's ``trainable`` model entries), unmerged
    <task files>      what the task's inference needs besides the weights
                      (:meth:`~spkpeft.tasks.base.Task.package_extras`): sv ``mean.npy``, the
                      training embeddings' mean (float64), subtracted before cosine scoring
                      exactly as stage 5 does (absent without training embeddings); cls
                      ``classes.txt``, the class names
    calibration.json  when the experiment has one
    model.onnx        with --onnx (see :mod:`spkpeft.inference.onnx_export`)

``kind: adapter-only`` packages hold megabytes instead of the upstream's size; loading one
builds the upstream from ``upstream.name`` (an s3prl hub name, a checkpoint path, or
``random:<arch>``) and refuses it unless its checksum equals ``upstream.sha256``
(:func:`spkpeft.upstream.base.base_checksum`: sha256 of the bare upstream's parameters
as loaded).  A full package is checked the same way against its own ``upstream.pt``.

Writing: the package is assembled in a hidden ``.<name>.tmp<pid>`` directory beside ``DIR``
(every file fsynced, ``package.json`` last) and renamed to ``DIR``; an existing package at
``DIR`` is replaced, any other non-empty ``DIR`` refused.  Loading checks every file's size
and sha256 against ``package.json``, so an incomplete or altered package does not load.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from spkpeft.config import read_yaml
from spkpeft.engine.checkpoint import safe_load
from spkpeft.errors import SpkpeftError, file_error
from spkpeft.io.atomic import new_directory, write_bytes_atomic, write_json_atomic, write_text_atomic
from spkpeft.textfile import read_text
from spkpeft.tasks.base import get_task
from spkpeft.tasks.config import Config, config_from_dict
from spkpeft.tasks.experiment import (build_trained_model, checkpoint_path, checkpoint_source,
                                      read_experiment_config, trainable_state)
from spkpeft.upstream.base import BASE_MARK, base_checksum, upstream_file, upstream_name_for_file
from spkpeft.inference.decision import CALIBRATION_FILE, Calibration, find_calibration

FORMAT = "spkpeft-package"
VERSION = 1
PACKAGE_FILE = "package.json"
KINDS = ("full", "adapter-only")
UPSTREAM_FILE = "upstream.pt"   # full package, an upstream that loads one file (s3prl)
UPSTREAM_DIR = "upstream"       # full package, an upstream that loads a directory (AST)


@dataclass
class Loaded:
    """A trained model ready for inference and what goes with it."""

    model: nn.Module                  # merged, eval mode
    cfg: Config
    directory: Path                   # the experiment or package
    kind: str                         # experiment | full | adapter-only
    mean: np.ndarray | None = None    # the task's InferenceExtras: sv the training-embedding mean
    classes: list[str] | None = None  # cls the class names
    calibration: Calibration | None = None
    info: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------ experiments


def load_experiment(exp: Path, checkpoint: str | None, device: torch.device) -> Loaded:
    """The trained model of an experiment directory (as stages 4-5 use it)."""
    cfg = read_experiment_config(exp)
    path = checkpoint_path(exp, checkpoint or cfg.extract.checkpoint)
    with torch.random.fork_rng(devices=[]):
        model = build_trained_model(cfg, exp, trainable_state(path), device)
    source = checkpoint_source(path)
    extras = get_task(cfg).inference_extras(exp, source)
    return Loaded(model, cfg, exp, "experiment", mean=extras.mean, classes=extras.classes,
                  calibration=find_calibration(exp), info={"checkpoint": source})


# ------------------------------------------------------------------ export


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _save_torch(path: Path, obj: Any) -> None:
    write_bytes_atomic(path, lambda handle: torch.save(obj, handle))


def _copy_file(src: Path, dest: Path) -> None:
    def produce(handle) -> None:
        with open(src, "rb") as source:
            shutil.copyfileobj(source, handle, 1 << 20)

    write_bytes_atomic(dest, produce)


def changed_state(model: nn.Module, fresh: dict[int, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The model's state dict without the bare upstream parameters equal to their ``fresh`` values."""
    state = {}
    for name, value in model.state_dict(keep_vars=True).items():
        original = fresh.get(id(value)) if getattr(value, BASE_MARK, False) else None
        if original is not None and torch.equal(value.detach(), original):
            continue
        state[name] = value.detach().clone()
    return state


def _write_full(tmp: Path, cfg: Config, model: nn.Module, fresh: dict[int, torch.Tensor]) -> dict | None:
    """``model.pt`` and ``upstream.pt`` of a full package; returns the upstream file's entry."""
    model.merge(unload=True)
    entry = None
    with upstream_file(cfg.upstream) as found:
        if found is not None:
            fmt, path = found
            dest = tmp / (UPSTREAM_DIR if path.is_dir() else UPSTREAM_FILE)
            if path.is_dir():  # e.g. an AST model directory: config.json + weights
                dest.mkdir()
                for file in sorted(path.iterdir()):
                    _copy_file(file, dest / file.name)
            else:
                _copy_file(path, dest)
            entry = {"file": dest.name, "format": fmt}
    _save_torch(tmp / "model.pt", changed_state(model, fresh))
    return entry


def _check_replaceable(out: Path) -> None:
    """``out`` may be replaced: absent, empty, or an older package."""
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / PACKAGE_FILE).is_file())):
        raise SpkpeftError(f"{out}: exists and is not a spkpeft package; refusing to overwrite it")


def export_package(exp: str | Path, out: str | Path, adapter_only: bool = False, checkpoint: str | None = None,
                   extra: Callable[[Path, nn.Module, Config], dict] | None = None) -> dict:
    """Write the package of experiment ``exp`` to ``out`` (see the module docstring); returns
    ``package.json``'s content.  ``extra(tmp_dir, merged model, cfg)`` may add files (ONNX)
    before ``package.json`` is written; its dict joins ``package.json``."""
    exp, out = Path(exp), Path(out)
    cfg = read_experiment_config(exp)
    ckpt = checkpoint_path(exp, checkpoint or cfg.extract.checkpoint)
    state = trainable_state(ckpt)
    sha: dict[str, str] = {}
    fresh: dict[int, torch.Tensor] = {}

    def snapshot(model: nn.Module) -> None:
        sha["upstream"] = base_checksum(model.upstream)
        if not adapter_only:
            fresh.update({id(p): p.detach().clone() for p in model.upstream.base_parameters()})

    with torch.random.fork_rng(devices=[]):
        model = build_trained_model(cfg, exp, state, torch.device("cpu"), snapshot)
    task = get_task(cfg)
    source = checkpoint_source(ckpt)
    calibration = find_calibration(exp)
    _check_replaceable(out)
    with new_directory(out) as tmp:
        write_text_atomic(tmp / "config.yaml", (exp / "config.yaml").read_text().splitlines())
        upstream = {"type": cfg.upstream.type, "name": cfg.upstream.name, "sha256": sha["upstream"]}
        if adapter_only:
            _save_torch(tmp / "trainable.pt", state)
        else:
            upstream.update(_write_full(tmp, cfg, model, fresh) or {})
        task.package_extras(exp, source, tmp)
        if calibration is not None:
            _copy_file(exp / CALIBRATION_FILE, tmp / CALIBRATION_FILE)
        info = {"format": FORMAT, "version": VERSION, "kind": "adapter-only" if adapter_only else "full",
                "task": task.name, "method": cfg.peft.method, "upstream": upstream,
                "checkpoint": str(ckpt.resolve())}
        if extra is not None:
            info.update(extra(tmp, model, cfg))
        info["files"] = {p.relative_to(tmp).as_posix(): {"bytes": p.stat().st_size, "sha256": sha256_file(p)}
                         for p in sorted(tmp.rglob("*")) if p.is_file()}
        write_json_atomic(tmp / PACKAGE_FILE, info)
    return info


def package_bytes(info: dict) -> int:
    """Total size of a package's files (``package.json`` excluded)."""
    return sum(entry["bytes"] for entry in info["files"].values())


# ------------------------------------------------------------------ loading


def read_package_info(directory: Path) -> dict:
    """``package.json``, checked: format, version, kind, and every listed file's size and sha256."""
    path = directory / PACKAGE_FILE
    text = read_text(path, "package description")
    try:
        info = json.loads(text)
    except json.JSONDecodeError as err:
        raise file_error(path, f"cannot read the package description ({err.msg}, column {err.colno})", err.lineno) \
            from None
    except RecursionError:
        raise file_error(path, "cannot read the package description (nested too deeply)") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise file_error(path, f"not a spkpeft package (format must be '{FORMAT}')")
    if info.get("version") != VERSION or not isinstance(info.get("kind"), str) or info["kind"] not in KINDS:
        raise file_error(path, f"unsupported package version {info.get('version')!r} / kind {info.get('kind')!r} "
                               f"(this spkpeft reads version {VERSION}, kinds {', '.join(KINDS)})")
    _check_description(path, info)
    for name, entry in info["files"].items():
        file = directory / name
        if not file.is_file() or file.stat().st_size != entry["bytes"] or sha256_file(file) != entry["sha256"]:
            raise file_error(file, f"missing, incomplete or altered (its size or sha256 differs from {path})")
    return info


def _check_description(path: Path, info: dict) -> None:
    """The keys :func:`load_package` reads, with their types: ``task``; ``upstream`` {``name``,
    ``sha256``[, ``file``, ``format``]}; ``files`` {relative path inside the package: {``bytes``,
    ``sha256``}} (no absolute path, no ``..``).  Errors name ``path`` and the key."""
    def need(ok: bool, key: str, what: str) -> None:
        if not ok:
            raise file_error(path, f"key '{key}' must be {what}")

    need(isinstance(info.get("task"), str), "task", "a task name")
    upstream = info.get("upstream")
    need(isinstance(upstream, dict), "upstream", "a mapping")
    for key in ("name", "sha256"):
        need(isinstance(upstream.get(key), str), f"upstream.{key}", "a string")
    files = info.get("files")
    need(isinstance(files, dict), "files", "a mapping of file names")
    for name, entry in files.items():
        parts = name.split("/")
        need(bool(name) and not name.startswith("/") and "\\" not in name and "\0" not in name
             and all(p not in ("", ".", "..") for p in parts), f"files.{name}", "a relative path inside the package")
        need(isinstance(entry, dict) and type(entry.get("bytes")) is int and isinstance(entry.get("sha256"), str),
             f"files.{name}", "a mapping {bytes: int, sha256: str}")
    if upstream.get("file") is not None:
        need(isinstance(upstream["file"], str) and isinstance(upstream.get("format"), str)
             and any(n == upstream["file"] or n.startswith(upstream["file"] + "/") for n in files),
             "upstream.file", "a file or directory listed in files, with its upstream.format")


def _check_upstream(directory: Path, info: dict) -> Callable[[nn.Module], None]:
    def check(model: nn.Module) -> None:
        expected = info["upstream"]["sha256"]
        found = base_checksum(model.upstream)
        if found != expected:
            raise file_error(directory / PACKAGE_FILE,
                             f"upstream '{info['upstream']['name']}' has checksum {found[:16]}..., the package was "
                             f"trained on {expected[:16]}...: its weights differ from the ones the package needs")
    return check


def _load_full(directory: Path, cfg: Config, info: dict, device: torch.device) -> nn.Module:
    upstream = info["upstream"]
    if upstream.get("file"):
        cfg.upstream.name = upstream_name_for_file(cfg.upstream, upstream["format"], directory / upstream["file"])
    model = get_task(cfg).inference_model(cfg, directory)
    _check_upstream(directory, info)(model)
    model.merge(unload=True)
    path = directory / "model.pt"
    state = safe_load(path, "model weights")
    base = {n for n, p in model.named_parameters() if getattr(p, BASE_MARK, False)}
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as err:
        raise file_error(path, f"does not fit the model of config.yaml ({' '.join(str(err).split())[:300]})") from None
    stray = sorted(set(missing) - base)
    if unexpected or stray:
        raise file_error(path, f"does not fit the model of config.yaml (unexpected: {unexpected[:3]}, "
                               f"missing: {stray[:3]})")
    return model.to(device).eval()


def load_package(directory: Path, device: torch.device) -> Loaded:
    """The model of an exported package (see the module docstring)."""
    info = read_package_info(directory)
    cfg = config_from_dict(read_yaml(directory / "config.yaml"), str(directory / "config.yaml"))
    with torch.random.fork_rng(devices=[]):
        if info["kind"] == "full":
            model = _load_full(directory, cfg, info, device)
        else:
            state = safe_load(directory / "trainable.pt", "trained weights")
            model = build_trained_model(cfg, directory, state, device, _check_upstream(directory, info))
    extras = get_task(cfg).inference_extras(directory, None)
    return Loaded(model, cfg, directory, info["kind"], mean=extras.mean, classes=extras.classes,
                  calibration=find_calibration(directory), info=info)


def load_any(path: str | Path, checkpoint: str | None = None, device: str | torch.device = "cpu") -> Loaded:
    """An exported package (``package.json``) or an experiment directory (``config.yaml``)."""
    path = Path(path)
    device = torch.device(device)
    if (path / PACKAGE_FILE).is_file():
        if checkpoint is not None:
            raise SpkpeftError(f"{path}: a package holds one model; checkpoint= applies to experiment directories")
        return load_package(path, device)
    if (path / "config.yaml").is_file():
        return load_experiment(path, checkpoint, device)
    raise SpkpeftError(f"{path}: neither a spkpeft package (no {PACKAGE_FILE}) nor an experiment directory "
                       f"(no config.yaml)")
