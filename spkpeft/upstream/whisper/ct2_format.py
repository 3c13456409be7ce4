"""Reading the encoder of a CTranslate2 (faster-whisper) Whisper model, without CTranslate2.

``model.bin`` (little-endian; written by ``ctranslate2/specs/model_spec.py`` ``_serialize``,
read by ``src/models/model.cc``; binary versions 4 to 6 share this layout)::

    u32 binary_version; str spec_name ("WhisperSpec"); u32 spec_revision; u32 num_variables
    num_variables x { str name; u8 rank; u32 dims[rank]; u8 dtype; u32 num_bytes; bytes data }
    u32 num_aliases; num_aliases x { str alias; str name }

with ``str`` = ``u16 length (including a final NUL)`` + bytes, and ``dtype`` the index in
``(float32, int8, int16, int32, float16, bfloat16)`` (``include/ctranslate2/types.h``).

The Whisper converter (``converters/transformers.py``, ``WhisperLoader``) writes the
encoder of a Hugging Face ``WhisperEncoder`` as (``i`` the block)::

    encoder/conv{1,2}/{weight,bias}                      conv{1,2}.{weight,bias}
    encoder/position_encodings/encodings                 embed_positions.weight
    encoder/layer_i/self_attention/layer_norm/{gamma,beta}  layers.i.self_attn_layer_norm.{weight,bias}
    encoder/layer_i/self_attention/linear_0/{weight,bias}   q, k, v fused: rows [q; k; v]; k has no
                                                          bias, its part of the fused bias is 0
    encoder/layer_i/self_attention/linear_1/{weight,bias}   layers.i.self_attn.out_proj
    encoder/layer_i/ffn/layer_norm/{gamma,beta}           layers.i.final_layer_norm
    encoder/layer_i/ffn/linear_{0,1}/{weight,bias}        layers.i.fc{1,2}
    encoder/layer_norm/{gamma,beta}                       layer_norm
    encoder/num_heads (int16 scalar)                      encoder_attention_heads

:func:`read_encoder` returns that state dict (the tensors in the file's dtype, float16 for
the published conversions) and the ``WhisperConfig`` keys it implies.  Quantised models
(int8 / int16 weights with ``*_scale``) are refused: their weights are not the model's.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO, Iterable

import numpy as np
import torch

from spkpeft.errors import SpkpeftError, file_error

SPEC_NAME = "WhisperSpec"
BINARY_VERSIONS = (4, 5, 6)
DTYPES = (torch.float32, torch.int8, torch.int16, torch.int32, torch.float16, torch.bfloat16)
PREFIX = "encoder/"


class ChainedReader:
    """Sequential reads over files concatenated in order (a model split into parts)."""

    def __init__(self, paths: Iterable[Path]) -> None:
        self.paths = [Path(p) for p in paths]
        self._index = 0
        self._handle: BinaryIO | None = None

    def __enter__(self) -> "ChainedReader":
        return self

    def __exit__(self, *exc) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def read(self, size: int) -> bytes:
        """Exactly ``size`` bytes (fewer only at the end of the last file)."""
        chunks = []
        while size > 0 and self._index < len(self.paths):
            if self._handle is None:
                self._handle = open(self.paths[self._index], "rb")
            data = self._handle.read(size)
            chunks.append(data)
            size -= len(data)
            if size > 0:
                self._handle.close()
                self._handle = None
                self._index += 1
        return b"".join(chunks)

    def skip(self, size: int) -> None:
        """Move ``size`` bytes forward."""
        while size > 0:
            got = len(self.read(min(size, 1 << 24)))
            if got == 0:
                return
            size -= got


class _Parser:
    def __init__(self, reader: ChainedReader, where: str) -> None:
        self.reader, self.where = reader, where

    def take(self, fmt: str):
        size = struct.calcsize("<" + fmt)
        data = self.reader.read(size)
        if len(data) != size:
            raise SpkpeftError(f"{self.where}: truncated CTranslate2 model file")
        return struct.unpack("<" + fmt, data)

    def string(self) -> str:
        (length,) = self.take("H")
        data = self.reader.read(length)
        if len(data) != length:
            raise SpkpeftError(f"{self.where}: truncated CTranslate2 model file")
        return data[:-1].decode("utf-8")


def read_encoder(paths: list[Path], where: str | None = None) -> tuple[dict[str, torch.Tensor], dict]:
    """``(state dict with WhisperEncoder names, WhisperConfig keys)`` of the encoder in a CT2
    ``model.bin`` (``paths``: the file, or its parts in order; ``where`` names it in errors)."""
    where = where or str(paths[0])
    raw: dict[str, torch.Tensor] = {}
    with ChainedReader(paths) as reader:
        parse = _Parser(reader, where)
        (version,) = parse.take("I")
        if version not in BINARY_VERSIONS:
            raise SpkpeftError(f"{where}: CTranslate2 binary version {version} is not supported "
                               f"(readable: {', '.join(map(str, BINARY_VERSIONS))})")
        spec = parse.string()
        if spec != SPEC_NAME:
            raise SpkpeftError(f"{where}: a CTranslate2 '{spec}' model, not a Whisper model ({SPEC_NAME})")
        _revision, count = parse.take("II")
        for _ in range(count):
            name = parse.string()
            (rank,) = parse.take("B")
            shape = parse.take("I" * rank) if rank else ()
            dtype_id, num_bytes = parse.take("BI")
            if not name.startswith(PREFIX):
                reader.skip(num_bytes)
                continue
            if dtype_id >= len(DTYPES):
                raise SpkpeftError(f"{where}: variable '{name}' has an unknown data type {dtype_id}")
            data = reader.read(num_bytes)
            if len(data) != num_bytes:
                raise SpkpeftError(f"{where}: truncated CTranslate2 model file (in '{name}')")
            raw[name[len(PREFIX):]] = _tensor(data, DTYPES[dtype_id], shape, name, where)
    return convert(raw, where)


def _tensor(data: bytes, dtype: torch.dtype, shape: tuple[int, ...], name: str, where: str) -> torch.Tensor:
    element = torch.empty((), dtype=dtype).element_size()
    if len(data) != element * int(np.prod(shape, dtype=np.int64)):
        raise SpkpeftError(f"{where}: variable '{name}' has {len(data)} bytes for shape {shape}")
    flat = torch.frombuffer(bytearray(data), dtype=dtype) if data else torch.empty(0, dtype=dtype)
    return flat.reshape(shape)


def convert(raw: dict[str, torch.Tensor], where: str) -> tuple[dict[str, torch.Tensor], dict]:
    """CT2 encoder variables (without ``encoder/``) -> WhisperEncoder state dict and config keys."""
    if any(name.endswith(("_scale", "_zero")) for name in raw):
        raise SpkpeftError(f"{where}: a quantised CTranslate2 model (int8 / int16 weights); convert the "
                           f"model with --quantization float16 or float32")
    taken: set[str] = set()

    def get(name: str) -> torch.Tensor:
        if name not in raw:
            raise SpkpeftError(f"{where}: the Whisper encoder variable 'encoder/{name}' is missing")
        taken.add(name)
        return raw[name]

    state = {"conv1.weight": get("conv1/weight"), "conv1.bias": get("conv1/bias"),
             "conv2.weight": get("conv2/weight"), "conv2.bias": get("conv2/bias"),
             "embed_positions.weight": get("position_encodings/encodings"),
             "layer_norm.weight": get("layer_norm/gamma"), "layer_norm.bias": get("layer_norm/beta")}
    dim = state["conv1.weight"].shape[0]
    blocks = sorted({int(n.split("/")[0][len("layer_"):]) for n in raw
                     if n.startswith("layer_") and n.split("/")[0][len("layer_"):].isdigit()})
    if blocks != list(range(len(blocks))) or not blocks:
        raise SpkpeftError(f"{where}: encoder blocks {blocks} are not numbered 0 .. L-1")
    for i in blocks:
        src, dst = f"layer_{i}/", f"layers.{i}."
        for ct2, hf in (("self_attention/layer_norm", "self_attn_layer_norm"), ("ffn/layer_norm", "final_layer_norm")):
            state[dst + hf + ".weight"], state[dst + hf + ".bias"] = get(f"{src}{ct2}/gamma"), get(f"{src}{ct2}/beta")
        weight, bias = get(src + "self_attention/linear_0/weight"), get(src + "self_attention/linear_0/bias")
        if weight.shape[0] != 3 * dim or bias.shape != (3 * dim,):
            raise SpkpeftError(f"{where}: block {i}: fused q, k, v projection of shape {tuple(weight.shape)}, "
                               f"expected ({3 * dim}, {dim})")
        if bias[dim: 2 * dim].abs().max() != 0:
            raise SpkpeftError(f"{where}: block {i}: the key projection has a non-zero bias (Whisper's has none)")
        for j, role in enumerate(("q_proj", "k_proj", "v_proj")):
            state[f"{dst}self_attn.{role}.weight"] = weight[j * dim: (j + 1) * dim]
            if role != "k_proj":
                state[f"{dst}self_attn.{role}.bias"] = bias[j * dim: (j + 1) * dim]
        for ct2, hf in (("self_attention/linear_1", "self_attn.out_proj"), ("ffn/linear_0", "fc1"), ("ffn/linear_1", "fc2")):
            state[dst + hf + ".weight"], state[dst + hf + ".bias"] = get(f"{src}{ct2}/weight"), get(f"{src}{ct2}/bias")
    heads = int(get("num_heads").item())
    unused = sorted(set(raw) - taken)
    if unused:
        raise SpkpeftError(f"{where}: unexpected Whisper encoder variables: {', '.join(unused[:5])}")
    config = {"model_type": "whisper", "num_mel_bins": int(state["conv1.weight"].shape[1]), "d_model": int(dim),
              "encoder_layers": len(blocks), "encoder_attention_heads": heads,
              "encoder_ffn_dim": int(state["layers.0.fc1.weight"].shape[0]),
              "max_source_positions": int(state["embed_positions.weight"].shape[0])}
    return {k: v.contiguous() for k, v in state.items()}, config
