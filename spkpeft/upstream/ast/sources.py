"""Where an AST comes from: a local model directory, a Hugging Face hub id, or ``random:<arch>``.

Every source ends in ``transformers.ASTModel.from_pretrained(directory or id)`` with the
checkpoint's own configuration, so every weight, the position embeddings included, is
loaded as saved; a missing or mis-shaped weight is an error (never a silent random
initialisation).  The position embeddings are adapted to another input length afterwards
(:mod:`spkpeft.upstream.ast.positions`).

* a local directory: ``config.json`` (``model_type: audio-spectrogram-transformer``) and
  ``model.safetensors`` or ``pytorch_model.bin`` (``ASTModel`` or
  ``ASTForAudioClassification`` weights, as ``save_pretrained`` writes them);
* a hub id such as ``MIT/ast-finetuned-audioset-10-10-0.4593``: downloaded by
  ``transformers`` into its cache when the model is built (never by a check);
* ``random:<arch>`` (:data:`ARCHS`): the published configuration with seeded random weights,
  saved once as a local directory in ``$SPKPEFT_CACHE`` (``ast-random-<arch>-seed<s>-<hash>``,
  written to a temporary directory and renamed) and loaded through the local path.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import torch

from spkpeft.errors import SpkpeftError, file_error
from spkpeft.io.atomic import os_error_in, write_failed
from spkpeft.upstream.hf_dir import read_model_config, require_weights
from spkpeft.upstream.s3prl.random_arch import DEFAULT_SEED, cache_dir

RANDOM_PREFIX = "random:"
DIR_FORMAT = "hf-dir"  # a save_pretrained directory (see :func:`model_files`)
MODEL_TYPE = "audio-spectrogram-transformer"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")

#: ``random:<arch>`` configurations (``ASTConfig`` keys)
ARCHS: dict[str, dict] = {
    # Gong et al. 2021 / MIT/ast-finetuned-audioset-10-10-0.4593: DeiT-base, 16x16 patches, strides 10/10
    "ast_base": {"num_hidden_layers": 12, "hidden_size": 768, "num_attention_heads": 12, "intermediate_size": 3072,
                 "patch_size": 16, "frequency_stride": 10, "time_stride": 10, "num_mel_bins": 128, "max_length": 1024},
    # tests and mini recipes: the same patching and features, 2 blocks of 64 dims, 1.28 s of input
    "tiny_ast": {"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 2, "intermediate_size": 128,
                 "patch_size": 16, "frequency_stride": 10, "time_stride": 10, "num_mel_bins": 128, "max_length": 128},
}


def get_arch(name: str) -> dict:
    """The configuration of ``random:<name>``, or an error listing the known ones."""
    if name not in ARCHS:
        raise SpkpeftError(f"unknown random AST architecture 'random:{name}' (expected one of: "
                           + ", ".join(f"random:{a}" for a in ARCHS) + ")")
    return ARCHS[name]


def random_model_dir(name: str, seed: int = DEFAULT_SEED) -> Path:
    """The cached directory of ``random:<name>`` (built on first use, see the module docstring)."""
    from transformers import ASTConfig, ASTModel

    arch = get_arch(name)
    digest = hashlib.sha1(json.dumps([arch, seed], sort_keys=True).encode()).hexdigest()[:12]
    root = cache_dir()
    target = root / f"ast-random-{name}-seed{seed}-{digest}"
    if (target / "config.json").is_file():
        return target
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=root))
    except OSError as err:
        raise SpkpeftError(f"cannot create the cache directory {root} ($SPKPEFT_CACHE): {err}") from err
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = ASTModel(ASTConfig(**arch))
            _randomise_zero_initialised(model)
        try:
            with quiet_progress():
                model.save_pretrained(tmp)
        except Exception as err:  # a full disk: one line naming the cache, not a safetensors traceback
            if os_error_in(err) is None:
                raise
            raise write_failed(target, os_error_in(err)) from None
        os.chmod(tmp, 0o755)  # mkdtemp's 0700 would hide a shared cache from other users
        with contextlib.suppress(OSError):  # a concurrent builder won: keep its directory
            os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _randomise_zero_initialised(model: torch.nn.Module) -> None:
    """``ASTModel`` starts its CLS / distillation tokens and position embeddings at zero;
    a random stand-in for a trained checkpoint draws them like the other weights
    (``N(0, 0.02^2)``), so that position handling is visible in tests."""
    emb = model.embeddings
    with torch.no_grad():
        for param in (emb.cls_token, emb.distillation_token, emb.position_embeddings):
            param.normal_(0.0, 0.02)


@contextlib.contextmanager
def quiet_progress():
    """Hide transformers' progress bars (loading / writing shards) while loading."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or Path(name).expanduser().exists()


def check_local_dir(path: Path) -> None:
    """Raise unless ``path`` holds an AST ``config.json`` and a weights file."""
    if not path.is_dir():
        raise file_error(path, "AST model directory not found (expected config.json and model.safetensors)")
    read_model_config(path / "config.json", MODEL_TYPE, "missing: an AST model directory needs config.json")
    require_weights(path, WEIGHT_FILES)


def check_source(name: str) -> None:
    """Check without building the model that ``name`` resolves (hub ids: only their form)."""
    if not isinstance(name, str) or not name:
        raise SpkpeftError(f"upstream name must be a non-empty string, got {name!r}")
    if name.startswith(RANDOM_PREFIX):
        get_arch(name[len(RANDOM_PREFIX):])
    elif _looks_like_path(name):
        check_local_dir(Path(name).expanduser())
    elif name.count("/") != 1:
        raise SpkpeftError(f"unknown AST upstream '{name}' (expected a model directory, a Hugging Face id "
                           f"'owner/name' or random:<arch> with arch in {', '.join(ARCHS)})")


def resolve(name: str) -> str:
    """The directory or hub id that ``from_pretrained`` loads for ``name``."""
    check_source(name)
    if name.startswith(RANDOM_PREFIX):
        return str(random_model_dir(name[len(RANDOM_PREFIX):]))
    return str(Path(name).expanduser()) if _looks_like_path(name) else name


def load_pretrained(name: str) -> torch.nn.Module:
    """``ASTModel`` of ``name`` with every weight as saved (missing or mis-shaped ones are errors)."""
    from transformers import ASTModel

    source = resolve(name)
    try:
        with quiet_progress():
            model, info = ASTModel.from_pretrained(source, output_loading_info=True)
    except Exception as err:  # transformers raises OSError, ValueError, RuntimeError, ...
        raise SpkpeftError(f"could not load AST '{name}': {type(err).__name__}: {err}") from err
    missing = list(info.get("missing_keys", [])) + [str(m) for m in info.get("mismatched_keys", [])]
    if missing:
        raise SpkpeftError(f"AST '{name}': weights missing or of the wrong shape in the checkpoint: "
                           + ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else ""))
    return model


def _hub_snapshot(name: str) -> Path:
    """The local snapshot directory of hub id ``name`` in the Hugging Face cache (never downloads)."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(name, local_files_only=True))
    except Exception as err:  # LocalEntryNotFoundError, an invalid id, ...
        raise SpkpeftError(f"AST '{name}' is not in the Hugging Face cache ({type(err).__name__}); load it once "
                           f"(training does) or set upstream.name to a model directory") from None


@contextlib.contextmanager
def model_files(name: str) -> Iterator[tuple[str, Path]]:
    """``("hf-dir", directory)`` holding exactly the files ``from_pretrained`` reads for ``name``:
    ``config.json`` and the first weights file of :data:`WEIGHT_FILES` (links into the model
    directory, the ``random:<arch>`` cache or the hub cache; valid inside the ``with`` block).
    Tokenizer, preprocessor or README files of a model directory are left out."""
    resolved = resolve(name)  # a model directory (local, random:<arch>), else a hub id
    source = Path(resolved) if Path(resolved).is_dir() else _hub_snapshot(resolved)
    check_local_dir(source)
    weights = next(source / f for f in WEIGHT_FILES if (source / f).is_file())
    with tempfile.TemporaryDirectory(prefix="spkpeft-ast-files-") as tmp:
        for path in (source / "config.json", weights):
            os.symlink(path.resolve(), Path(tmp) / path.name)
        yield DIR_FORMAT, Path(tmp)


def name_of_files(fmt: str, path: Path) -> str:
    """The upstream name that loads the ``model_files`` copied to ``path``: the directory itself."""
    if fmt != DIR_FORMAT:
        raise SpkpeftError(f"{path}: an AST upstream is a '{DIR_FORMAT}' directory, not a '{fmt}' file")
    return str(path)
