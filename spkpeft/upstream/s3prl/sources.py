"""Where an upstream comes from: s3prl hub names, local checkpoints, ``random:<arch>``.

Every source ends in s3prl's own loader: the hub entry ``<name>(ckpt=...)`` that
``s3prl.nn.S3PRLUpstream(name, path_or_url=...)`` calls (``wavlm_local``,
``wav2vec2_local``, ``hubert_local`` from the families' ``hubconf`` modules, or a hub name
from ``s3prl.hub``), returning s3prl's ``UpstreamExpert``.  ``S3PRLUpstream`` itself is not
instantiated: its constructor adds only a dummy forward pass to measure shapes (and
``s3prl.hub`` an import of every upstream family, ~4 s), while :class:`Upstream` runs its
own forward.  This module resolves the name, checks local checkpoints before s3prl sees
them (so a wrong file gives a clear :class:`SpkpeftError` saying what was expected) and
returns the loaded expert.

Local checkpoint formats (auto-detected, or forced with a ``<format>:PATH`` prefix):

* ``wavlm_local``: ``{"cfg": dict, "model": state_dict}``;
* ``wav2vec2_local``: ``{"task_cfg", "model_cfg", "model_weight"}``;
* ``hubert_local``: ``{"task_cfg", "model_cfg", "model_weight", "dictionaries_symbols"}``.

wav2vec 2.0 and HuBERT files share the first three keys; they are told apart by
``model_cfg["_name"]`` when present, else by the HuBERT-only ``dictionaries_symbols`` key
(or ``label_rate`` in ``model_cfg``).
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import io
import os
import sys
from pathlib import Path
from typing import Iterator

import torch.nn as nn

from spkpeft.errors import SpkpeftError, file_error
from spkpeft.upstream.s3prl import random_arch
from spkpeft.upstream.s3prl.random_arch import quiet_s3prl_warnings

LOCAL_FORMATS = ("wavlm_local", "wav2vec2_local", "hubert_local")
RANDOM_PREFIX = "random:"

#: s3prl hub names whose models this package can run (transformer WavLM / wav2vec 2.0 / HuBERT)
SUPPORTED_HUB_NAMES = (
    "wavlm",
    "wavlm_base",
    "wavlm_base_plus",
    "wavlm_large",
    "hubert",
    "hubert_base",
    "hubert_large_ll60k",
    "wav2vec2",
    "wav2vec2_base_960",
    "wav2vec2_large_960",
    "wav2vec2_large_ll60k",
    "wav2vec2_large_lv60_cv_swbd_fsh",
    "xlsr_53",
    "xls_r_300m",
    "xls_r_1b",
    "xls_r_2b",
)

#: convenience names -> s3prl hub names
HUB_ALIASES = {"wav2vec2_base": "wav2vec2_base_960", "wav2vec2_large": "wav2vec2_large_ll60k"}

_EXPECTED = (
    "expected a torch.save'd dict in one of s3prl's local formats: "
    "wavlm_local {'cfg', 'model'}, wav2vec2_local {'task_cfg', 'model_cfg', 'model_weight'} "
    "or hubert_local {'task_cfg', 'model_cfg', 'model_weight', 'dictionaries_symbols'}"
)
_REQUIRED = {
    "wavlm_local": ("cfg", "model"),
    "wav2vec2_local": ("task_cfg", "model_cfg", "model_weight"),
    "hubert_local": ("task_cfg", "model_cfg", "model_weight", "dictionaries_symbols"),
}


@contextlib.contextmanager
def _quiet_stdout():
    """Send s3prl's prints to stderr, keeping stdout clean for machine-readable output."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


_LOCAL_ENTRY_MODULES = {
    "wavlm_local": "s3prl.upstream.wavlm.hubconf",
    "wav2vec2_local": "s3prl.upstream.wav2vec2.hubconf",
    "hubert_local": "s3prl.upstream.hubert.hubconf",
}


def _hub_entry(name: str):
    """s3prl's loader function ``name`` (the callable ``S3PRLUpstream`` would use)."""
    if name in _LOCAL_ENTRY_MODULES:
        return getattr(importlib.import_module(_LOCAL_ENTRY_MODULES[name]), name)
    with contextlib.redirect_stderr(io.StringIO()):
        from s3prl import hub
    return getattr(hub, name)


def s3prl_expert(name: str, path: str | None = None) -> nn.Module:
    """s3prl's ``UpstreamExpert`` from hub entry ``name`` (``ckpt=path`` for local formats)."""
    with _quiet_stdout(), quiet_s3prl_warnings():
        try:
            entry = _hub_entry(name)
            return entry(ckpt=path) if path is not None else entry()
        except SpkpeftError:
            raise
        except Exception as err:  # s3prl raises assorted types (ValueError, RuntimeError, KeyError, ...)
            what = f"{path} as {name}" if path else f"s3prl upstream '{name}'"
            raise SpkpeftError(f"could not load {what}: {type(err).__name__}: {err}") from err


def read_checkpoint(path: Path) -> dict:
    """Load ``path`` (memory-mapped, tensors not read) to inspect its keys."""
    import torch

    if not path.is_file():
        raise file_error(path, "checkpoint file not found; " + _EXPECTED)
    try:
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:  # legacy (non-zip) serialisation cannot be memory-mapped
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise file_error(path, f"not a readable PyTorch checkpoint ({type(err).__name__}: {err}); " + _EXPECTED) from err
    if not isinstance(ckpt, dict):
        raise file_error(path, f"checkpoint holds a {type(ckpt).__name__}, not a dict; " + _EXPECTED)
    return ckpt


def detect_format(path: Path, ckpt: dict) -> str:
    """The s3prl local format of ``ckpt`` (see the module docstring)."""
    keys = set(ckpt)
    if {"cfg", "model"} <= keys and "model_weight" not in keys:
        return "wavlm_local"
    if {"task_cfg", "model_cfg", "model_weight"} <= keys:
        model_cfg = ckpt["model_cfg"] if isinstance(ckpt["model_cfg"], dict) else {}
        kind = str(model_cfg.get("_name", "")).lower()
        if "hubert" in kind:
            return "hubert_local"
        if "wav2vec" in kind:
            return "wav2vec2_local"
        if "dictionaries_symbols" in keys or "label_rate" in model_cfg:
            return "hubert_local"
        return "wav2vec2_local"
    shown = ", ".join(sorted(map(str, keys))[:8]) or "none"
    raise file_error(path, f"unrecognised checkpoint format (top-level keys: {shown}); " + _EXPECTED)


def check_format(path: Path, ckpt: dict, fmt: str) -> None:
    """Raise unless ``ckpt`` has every key that the ``fmt`` loader needs, with dict configs."""
    missing = [k for k in _REQUIRED[fmt] if k not in ckpt]
    if missing:
        need = ", ".join(repr(k) for k in _REQUIRED[fmt])
        raise file_error(path, f"not a {fmt} checkpoint: missing key(s) {', '.join(map(repr, missing))} (expected {need})")
    for key in ("cfg", "task_cfg", "model_cfg"):
        if key in _REQUIRED[fmt] and not isinstance(ckpt[key], dict):
            raise file_error(path, f"not a {fmt} checkpoint: '{key}' must be a dict, got {type(ckpt[key]).__name__}")
    weights = ckpt["model" if fmt == "wavlm_local" else "model_weight"]
    if not isinstance(weights, dict) or not weights:
        raise file_error(path, f"not a {fmt} checkpoint: the weights entry is not a non-empty state dict")


def load_local(path: str | Path, fmt: str | None = None) -> nn.Module:
    """Load a local checkpoint through s3prl's ``<fmt>`` loader (format auto-detected if None)."""
    path = Path(path).expanduser()
    ckpt = read_checkpoint(path)
    fmt = fmt or detect_format(path, ckpt)
    check_format(path, ckpt, fmt)
    del ckpt
    return s3prl_expert(fmt, str(path))


def load_random(arch: str) -> nn.Module:
    """Build (or reuse from the cache) ``random:<arch>`` and load it through s3prl's local loader."""
    with random_arch.random_checkpoint(arch) as (fmt, path):
        return s3prl_expert(fmt, str(path))


def _looks_like_path(name: str) -> bool:
    return "/" in name or name.endswith((".pt", ".pth", ".ckpt")) or Path(name).expanduser().exists()


def _known_hub_names() -> list[str]:
    with _quiet_stdout(), contextlib.redirect_stderr(io.StringIO()):
        from s3prl import hub

        return hub.options()


def hub_download_dir() -> Path:
    """Where s3prl keeps hub checkpoints: ``$S3PRL_CACHE`` when set (e.g. a shared disk on a
    cluster, or a directory filled by hand on a machine without internet), else s3prl's own
    ``~/.cache/s3prl/download``.

    s3prl stores the checkpoint of URL ``u`` as ``<dir>/<sha256(u) hex>.<basename of u>``
    (``s3prl.util.download._urls_to_filepaths``) and downloads it only when that file is
    missing; ``wavlm_base_plus``'s URL is
    ``https://huggingface.co/s3prl/converted_ckpts/resolve/main/wavlm_base_plus.pt``.
    """
    from s3prl.util import download

    if os.environ.get("S3PRL_CACHE"):
        download.set_dir(Path(os.environ["S3PRL_CACHE"]).expanduser())
    return download.get_dir()


def load_hub(name: str) -> nn.Module:
    """Load (downloading into :func:`hub_download_dir` if needed) a supported s3prl hub upstream."""
    hub_name = HUB_ALIASES.get(name, name)
    if hub_name in SUPPORTED_HUB_NAMES:
        hub_download_dir()
        return s3prl_expert(hub_name)
    known = _known_hub_names()
    supported = ", ".join(SUPPORTED_HUB_NAMES + tuple(HUB_ALIASES))
    if hub_name in known:
        raise SpkpeftError(
            f"s3prl upstream '{name}' is not a transformer WavLM / wav2vec 2.0 / HuBERT model "
            f"and is not supported (supported hub names: {supported})"
        )
    close = difflib.get_close_matches(name, list(SUPPORTED_HUB_NAMES) + list(HUB_ALIASES), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise SpkpeftError(
        f"unknown upstream '{name}' (expected an s3prl hub name ({supported}), a checkpoint path, "
        f"'<format>:PATH' with format in {', '.join(LOCAL_FORMATS)}, or random:<arch> with arch in "
        f"{', '.join(random_arch.ARCHS)}){hint}"
    )


def check_source(name: str) -> None:
    """Check, without building the model, that ``name`` resolves (see :func:`load_s3prl`).

    ``random:<arch>``: a known architecture; a local checkpoint: present, readable
    and in a recognised format (tensors memory-mapped, not read); a hub name: a
    supported one (the download happens when the model is built).  Raises the
    same :class:`SpkpeftError` that loading would.
    """
    if not isinstance(name, str) or not name:
        raise SpkpeftError(f"upstream name must be a non-empty string, got {name!r}")
    if name.startswith(RANDOM_PREFIX):
        random_arch.get_arch(name[len(RANDOM_PREFIX):])
        return
    prefix, sep, rest = name.partition(":")
    if sep and prefix in LOCAL_FORMATS:
        path = Path(rest).expanduser()
        check_format(path, read_checkpoint(path), prefix)
    elif _looks_like_path(name):
        path = Path(name).expanduser()
        ckpt = read_checkpoint(path)
        check_format(path, ckpt, detect_format(path, ckpt))
    elif HUB_ALIASES.get(name, name) not in SUPPORTED_HUB_NAMES:
        load_hub(name)  # an unsupported or unknown name: raises the error that names the choices


def load_s3prl(name: str) -> nn.Module:
    """Resolve ``name`` (see :func:`spkpeft.upstream.load_upstream`) to a loaded s3prl expert."""
    if not isinstance(name, str) or not name:
        raise SpkpeftError(f"upstream name must be a non-empty string, got {name!r}")
    if name.startswith(RANDOM_PREFIX):
        return load_random(name[len(RANDOM_PREFIX):])
    prefix, sep, rest = name.partition(":")
    if sep and prefix in LOCAL_FORMATS:
        return load_local(rest, prefix)
    if _looks_like_path(name):
        return load_local(name)
    return load_hub(name)


@contextlib.contextmanager
def checkpoint_file(name: str) -> Iterator[tuple[str, Path]]:
    """``(local format, path)`` of the checkpoint file that ``name`` loads (valid inside the
    ``with`` block: a large ``random:<arch>`` is a temporary file).  Hub names are refused:
    s3prl keeps their downloads in its own cache, which this package does not resolve."""
    if not isinstance(name, str) or not name:
        raise SpkpeftError(f"upstream name must be a non-empty string, got {name!r}")
    if name.startswith(RANDOM_PREFIX):
        with random_arch.random_checkpoint(name[len(RANDOM_PREFIX):]) as found:
            yield found
        return
    prefix, sep, rest = name.partition(":")
    if sep and prefix in LOCAL_FORMATS:
        path = Path(rest).expanduser()
        check_format(path, read_checkpoint(path), prefix)
        yield prefix, path
    elif _looks_like_path(name):
        path = Path(name).expanduser()
        ckpt = read_checkpoint(path)
        fmt = detect_format(path, ckpt)
        check_format(path, ckpt, fmt)
        yield fmt, path
    else:
        raise SpkpeftError(f"upstream '{name}' is an s3prl hub name, not a checkpoint file (s3prl keeps its "
                           f"downloads in its own cache: set upstream.name to the downloaded checkpoint's path; "
                           f"an export can use --adapter-only)")


def checkpoint_name(fmt: str, path: Path) -> str:
    """The upstream name that loads a copy at ``path`` of what :func:`checkpoint_file` found:
    ``<format>:<path>``, so that the format is not detected again."""
    return f"{fmt}:{path}"


def weights_key(fmt: str) -> str:
    """The entry of a ``fmt`` checkpoint that holds the model's state dict."""
    return "model" if fmt == "wavlm_local" else "model_weight"


def source_checkpoint(name: str) -> tuple[str, dict]:
    """``(format, checkpoint dict)`` of a ``random:<arch>`` or local-checkpoint upstream name:
    the file :func:`checkpoint_file` names, read (hub names are refused there)."""
    with checkpoint_file(name) as (fmt, path):
        return fmt, read_checkpoint(path)


def with_weights(fmt: str, template: dict, state: dict) -> dict:
    """``template`` (a ``fmt`` checkpoint) with its weights replaced by ``state``.

    ``state`` must hold exactly the template's weight names (same shapes); the result keeps
    the template's configs and other entries, so it loads through the same s3prl loader.
    """
    key = weights_key(fmt)
    old = template[key]
    if set(old) != set(state):
        diff = sorted(set(old) ^ set(state))
        raise SpkpeftError(f"weights do not match the {fmt} checkpoint: differing entries {', '.join(diff[:5])}")
    for name, value in state.items():
        if tuple(value.shape) != tuple(old[name].shape):
            raise SpkpeftError(f"weight {name}: shape {tuple(value.shape)} != {tuple(old[name].shape)}")
    out = {k: v for k, v in template.items() if k != key}
    out[key] = {name: state[name].detach().cpu().contiguous() for name in old}
    return out
