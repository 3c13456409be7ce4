"""``random:<arch>`` upstreams: published architectures with seeded random weights, no download.

A random upstream is a real s3prl local checkpoint: the model is built by s3prl's own
classes (``WavLM`` / ``Wav2Vec2Model`` / ``HubertModel``) from the architecture's config,
its ``state_dict`` stored in the exact ``*_local`` format:

* ``wavlm_local``: ``{"cfg": dict, "model": state_dict}``;
* ``wav2vec2_local``: ``{"task_cfg", "model_cfg", "model_weight"}``;
* ``hubert_local``: the same plus ``"dictionaries_symbols"``;

and then loaded through s3prl's local loader like any user checkpoint.  Files are cached
in ``$SPKPEFT_CACHE`` (default ``~/.cache/spkpeft``) under a name that hashes the config
and seed, written atomically (temporary file + ``os.replace``).  Architectures above
:data:`CACHE_MAX_PARAMS` parameters (the 300M-class models, >1 GB) are not kept: they go
through a temporary file in the cache directory that is deleted after loading.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from spkpeft.errors import SpkpeftError
from spkpeft.io.atomic import write_bytes_atomic

CACHE_MAX_PARAMS = 150_000_000
DEFAULT_SEED = 0

_TINY_CNN = "[(64, 10, 5)] + [(64, 3, 2)] * 4 + [(64, 2, 2)] * 2"
_HUBERT_SYMBOLS = ["<s>", "<pad>", "</s>", "<unk>"]


@dataclass(frozen=True)
class RandomArch:
    """One architecture: s3prl family, model config and (wav2vec2/HuBERT) task config."""

    family: str
    model_cfg: dict
    task_cfg: dict = field(default_factory=dict)
    approx_params: int = 0
    num_label_classes: int = 0  # HuBERT only: size of the (fake) k-means dictionary
    description: str = ""


def _wavlm(layers: int, dim: int, ffn: int, heads: int, **extra) -> dict:
    cfg = {
        "encoder_layers": layers,
        "encoder_embed_dim": dim,
        "encoder_ffn_embed_dim": ffn,
        "encoder_attention_heads": heads,
        "activation_fn": "gelu",
        "relative_position_embedding": True,
        "num_buckets": 320,
        "max_distance": 800,
        "gru_rel_pos": True,
    }
    cfg.update(extra)
    return cfg


def _w2v(name: str, layers: int, dim: int, ffn: int, heads: int, **extra) -> dict:
    cfg = {
        "_name": name,
        "encoder_layers": layers,
        "encoder_embed_dim": dim,
        "encoder_ffn_embed_dim": ffn,
        "encoder_attention_heads": heads,
        "activation_fn": "gelu",
    }
    cfg.update(extra)
    return cfg


_LARGE = {"extractor_mode": "layer_norm", "layer_norm_first": True, "conv_bias": True}
_TINY = {"conv_feature_layers": _TINY_CNN, "conv_pos": 16, "conv_pos_groups": 4}

ARCHS: dict[str, RandomArch] = {
    "tiny_wavlm": RandomArch(
        "wavlm",
        _wavlm(3, 256, 512, 4, num_buckets=32, max_distance=128, **_TINY),
        description="3-layer 256-dim WavLM (post-LN, gated relative position bias) for tests",
    ),
    "tiny_wav2vec2": RandomArch(
        "wav2vec2",
        _w2v("wav2vec2", 2, 256, 512, 4, quantize_targets=True, final_dim=128, latent_vars=32, **_LARGE, **_TINY),
        task_cfg={"normalize": True},
        description="2-layer 256-dim wav2vec 2.0 (pre-LN, input normalisation, like the large models) for tests",
    ),
    "tiny_hubert": RandomArch(
        "hubert",
        _w2v("hubert", 4, 256, 512, 4, label_rate=50.0, final_dim=64, **_TINY),
        task_cfg={"label_rate": 50.0, "normalize": False},
        num_label_classes=20,
        description="4-layer 256-dim HuBERT (post-LN) for tests",
    ),
    "wavlm_base_plus": RandomArch(
        "wavlm", _wavlm(12, 768, 3072, 12), approx_params=94_400_000, description="WavLM Base+ (94.4M)"
    ),
    "wavlm_large": RandomArch(
        "wavlm",
        _wavlm(24, 1024, 4096, 16, extractor_mode="layer_norm", layer_norm_first=True, normalize=True),
        approx_params=315_500_000,
        description="WavLM Large (316M)",
    ),
    "hubert_base": RandomArch(
        "hubert",
        _w2v("hubert", 12, 768, 3072, 12, label_rate=50.0, final_dim=256),
        task_cfg={"label_rate": 50.0, "normalize": False},
        approx_params=94_700_000,
        num_label_classes=500,
        description="HuBERT Base (94.7M)",
    ),
    "wav2vec2_base": RandomArch(
        "wav2vec2",
        _w2v("wav2vec2", 12, 768, 3072, 12, quantize_targets=True, final_dim=256),
        task_cfg={"normalize": False},
        approx_params=95_000_000,
        description="wav2vec 2.0 Base (95M)",
    ),
    "wav2vec2_large": RandomArch(
        "wav2vec2",
        _w2v("wav2vec2", 24, 1024, 4096, 16, quantize_targets=True, final_dim=768, **_LARGE),
        task_cfg={"normalize": True},
        approx_params=317_400_000,
        description="wav2vec 2.0 Large LV-60 / XLS-R 300M architecture (317M)",
    ),
}

LOCAL_FORMAT = {"wavlm": "wavlm_local", "wav2vec2": "wav2vec2_local", "hubert": "hubert_local"}


def get_arch(name: str) -> RandomArch:
    """The architecture called ``name``, or a :class:`SpkpeftError` listing the known ones."""
    if name not in ARCHS:
        raise SpkpeftError(
            f"unknown random upstream architecture 'random:{name}' (expected one of: "
            + ", ".join(f"random:{a}" for a in ARCHS)
            + ")"
        )
    return ARCHS[name]


def build_model(arch: RandomArch) -> torch.nn.Module:
    """Instantiate the s3prl model class of ``arch`` (random init from the global RNG)."""
    from s3prl.upstream.utils import merge_with_parent

    if arch.family == "wavlm":
        from s3prl.upstream.wavlm.WavLM import WavLM, WavLMConfig

        return WavLM(WavLMConfig(dict(arch.model_cfg)))
    if arch.family == "wav2vec2":
        from s3prl.upstream.wav2vec2.wav2vec2_model import Wav2Vec2Config, Wav2Vec2Model

        return Wav2Vec2Model(merge_with_parent(Wav2Vec2Config, dict(arch.model_cfg)))
    from s3prl.upstream.hubert.hubert_model import HubertConfig, HubertModel, HubertPretrainingConfig

    task_cfg = merge_with_parent(HubertPretrainingConfig, dict(arch.task_cfg))
    model_cfg = merge_with_parent(HubertConfig, dict(arch.model_cfg))
    return HubertModel(model_cfg, task_cfg, hubert_symbols(arch))


def hubert_symbols(arch: RandomArch) -> list[list[str]]:
    """A fairseq-style label dictionary (special symbols + k-means class ids)."""
    return [_HUBERT_SYMBOLS + [str(i) for i in range(arch.num_label_classes)]]


@contextlib.contextmanager
def quiet_s3prl_warnings():
    """Hide s3prl's internal use of the deprecated ``torch.nn.utils.weight_norm`` (not actionable)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.nn\.utils\.weight_norm.* is deprecated", category=FutureWarning)
        yield


def make_checkpoint(name: str, seed: int = DEFAULT_SEED) -> dict:
    """The checkpoint dict of ``random:<name>`` in its s3prl ``*_local`` format (seeded, deterministic)."""
    arch = get_arch(name)
    with torch.random.fork_rng(devices=[]), quiet_s3prl_warnings():
        torch.manual_seed(seed)
        state = build_model(arch).state_dict()
    if arch.family == "wavlm":
        return {"cfg": dict(arch.model_cfg), "model": state}
    ckpt = {"task_cfg": dict(arch.task_cfg), "model_cfg": dict(arch.model_cfg), "model_weight": state}
    if arch.family == "hubert":
        ckpt["dictionaries_symbols"] = hubert_symbols(arch)
    return ckpt


def cache_dir() -> Path:
    """``$SPKPEFT_CACHE`` or ``~/.cache/spkpeft``."""
    return Path(os.environ.get("SPKPEFT_CACHE") or Path.home() / ".cache" / "spkpeft")


def cache_key(name: str, seed: int) -> str:
    """File name of a cached random checkpoint: architecture, seed and a hash of the configs."""
    arch = get_arch(name)
    blob = json.dumps([arch.family, arch.model_cfg, arch.task_cfg, arch.num_label_classes, seed], sort_keys=True)
    digest = hashlib.sha1(blob.encode()).hexdigest()[:12]
    return f"random-{name}-seed{seed}-{digest}.pt"


def _atomic_save(obj: dict, path: Path) -> None:
    """``torch.save`` through the atomic writer (concurrent builders: the last rename wins,
    every reader sees a complete file)."""
    write_bytes_atomic(path, lambda handle: torch.save(obj, handle))


@contextlib.contextmanager
def random_checkpoint(name: str, seed: int = DEFAULT_SEED) -> Iterator[tuple[str, Path]]:
    """Yield ``(local_format, path)`` of the ``random:<name>`` checkpoint file (see module doc)."""
    arch = get_arch(name)
    fmt = LOCAL_FORMAT[arch.family]
    directory = cache_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SpkpeftError(f"cannot create the cache directory {directory} ($SPKPEFT_CACHE): {err}") from err
    if arch.approx_params > CACHE_MAX_PARAMS:
        fd, tmp = tempfile.mkstemp(prefix=f"random-{name}.", suffix=".pt", dir=directory)
        os.close(fd)
        try:
            _atomic_save(make_checkpoint(name, seed), Path(tmp))
            yield fmt, Path(tmp)
        finally:
            os.unlink(tmp)
        return
    path = directory / cache_key(name, seed)
    if not path.is_file():
        _atomic_save(make_checkpoint(name, seed), path)
    yield fmt, path
