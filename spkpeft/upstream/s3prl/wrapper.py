"""The :class:`S3prlUpstream` module: every hidden state of an s3prl SSL model, with lengths.

The s3prl model (``WavLM``, ``Wav2Vec2Model`` or ``HubertModel``, loaded by s3prl's
own loaders, see :mod:`spkpeft.upstream.s3prl.sources`) is kept as ``self.model`` (its parameter names are s3prl's) but run by
this module's own loop, so that parameter-efficient methods can reach inside the blocks:

    hidden[0]   = encoder input (CNN -> projection -> positional conv), s3prl's first hidden state
    hidden[i]   = output of transformer block i (1 <= i <= L)
    hidden[L]   = LayerNorm(output of block L) for pre-LN models (as s3prl's last hidden state)

Truncation to the first ``K`` blocks removes the later blocks (and the final LayerNorm of
pre-LN models, which then belongs to no kept hidden state): ``hidden[0..K]`` equal the
untruncated model's.  Pre-training-only parameters (quantiser, projection heads, mask
embedding, label embeddings) are dropped at load time; they take no part in the forward.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

from spkpeft.errors import SpkpeftError
from spkpeft.upstream.s3prl import frontend, sources
from spkpeft.upstream.base import LayerExtensions, UpstreamBase
from spkpeft.upstream.s3prl.block import block_forward, get_linear, set_linear

#: attributes of the s3prl models used only by self-supervised pre-training
PRETRAINING_ONLY = (
    "mask_emb",
    "quantizer",
    "input_quantizer",
    "project_q",
    "project_inp",
    "final_proj",
    "target_glu",
    "label_embs_concat",
)

def model_family(model: nn.Module) -> str:
    """``wavlm``, ``wav2vec2`` or ``hubert`` from the s3prl model class (error otherwise)."""
    kind = type(model).__name__
    family = {"WavLM": "wavlm", "Wav2Vec2Model": "wav2vec2", "HubertModel": "hubert"}.get(kind)
    if family is None:
        raise SpkpeftError(f"unsupported upstream model class {kind} (expected WavLM, Wav2Vec2Model or HubertModel)")
    layer_type = getattr(getattr(model, "cfg", None), "layer_type", "transformer")
    if layer_type != "transformer" or type(model.encoder).__name__ != "TransformerEncoder":
        raise SpkpeftError(f"unsupported {family} encoder (layer_type '{layer_type}'): only transformer blocks are supported")
    return family


def strip_pretraining_modules(model: nn.Module) -> None:
    """Set the pre-training-only submodules/parameters of ``model`` to None."""
    for name in PRETRAINING_ONLY:
        if getattr(model, name, None) is not None:
            setattr(model, name, None)


class S3prlUpstream(UpstreamBase):
    """An s3prl WavLM / wav2vec 2.0 / HuBERT model exposing all hidden states, behind the
    upstream protocol (:class:`spkpeft.upstream.base.UpstreamBase`).

    Extension slots honoured by :meth:`forward` (None / empty when unused):
    ``layer_ext[i]`` (adapters of block ``i``), ``prompts`` (prompt tokens module with
    ``deep``, ``tokens(i, batch)``, ``gate(i)``: None for a joint softmax), ``prefixes``
    (prefix module with ``key_values() -> {block: ExtraKV}``, computed once per forward),
    ``hidden_adapters`` (one module per hidden state, ``h <- h + a(h, padding_mask)``).
    """

    def __init__(self, model: nn.Module, name: str, normalize_input: bool, num_layers: int | None = None) -> None:
        super().__init__()
        self.family = model_family(model)
        self.name = name
        self.normalize_input = bool(normalize_input)
        strip_pretraining_modules(model)
        model.encoder.layerdrop = 0.0
        self.model = model
        self.final_layer_norm = bool(model.encoder.layer_norm_first)
        depth = len(model.encoder.layers)
        if num_layers is not None:
            if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
                raise SpkpeftError(f"upstream num_layers must be a positive integer, got {num_layers!r}")
            if num_layers < depth:
                self.truncate(num_layers)
        self.layer_ext = nn.ModuleList(LayerExtensions() for _ in self.layers)
        self.mark_base_parameters()

    # ------------------------------------------------------------------ the family
    @classmethod
    def from_config(cls, cfg) -> "S3prlUpstream":
        """``upstream.type: s3prl``: :func:`load_upstream` of ``cfg.name`` keeping ``cfg.num_layers`` blocks."""
        return load_upstream(cfg.name, cfg.num_layers)

    @classmethod
    def check_name(cls, name: str) -> None:
        sources.check_source(name)

    @classmethod
    def weights_file(cls, name: str):
        return sources.checkpoint_file(name)

    @classmethod
    def name_for_weights(cls, fmt: str, path) -> str:
        return sources.checkpoint_name(fmt, path)

    # ------------------------------------------------------------------ structure
    def truncate(self, num_layers: int) -> None:
        """Keep only the first ``num_layers`` blocks (and drop the now unused final LayerNorm)."""
        encoder = self.model.encoder
        encoder.layers = nn.ModuleList(list(encoder.layers)[:num_layers])
        if encoder.layer_norm_first:
            encoder.layer_norm = None
        self.final_layer_norm = False

    @property
    def layers(self) -> nn.ModuleList:
        """The transformer blocks (s3prl ``TransformerSentenceEncoderLayer``)."""
        return self.model.encoder.layers

    @property
    def num_layers(self) -> int:
        """Number of transformer blocks kept."""
        return len(self.layers)

    @property
    def hidden_dim(self) -> int:
        """Dimension of every hidden state."""
        return int(self.model.encoder.embedding_dim)

    @property
    def num_heads(self) -> int:
        """Attention heads per block."""
        return int(self.layers[0].self_attn.num_heads)

    def projection(self, block: int, role: str) -> nn.Module:
        return get_linear(self.layers[block], role)

    def set_projection(self, block: int, role: str, module: nn.Module) -> None:
        set_linear(self.layers[block], role, module)

    def block_input_norm(self, block: int) -> nn.LayerNorm | None:
        """Post-LN: block 0 reads ``encoder.layer_norm``'s output, block ``i`` the previous
        block's ``final_layer_norm``; pre-LN blocks normalise their input themselves."""
        if self.model.encoder.layer_norm_first:
            return None
        return self.model.encoder.layer_norm if block == 0 else self.layers[block - 1].final_layer_norm

    def output_norm(self) -> nn.LayerNorm | None:
        """Pre-LN models: the encoder's final LayerNorm (dropped by truncation); post-LN: None."""
        return self.model.encoder.layer_norm if self.final_layer_norm else None

    def bare_model(self) -> nn.Module:
        return self.model

    def frontend_parameters(self) -> list[nn.Parameter]:
        """The CNN feature encoder's parameters."""
        return list(self.model.feature_extractor.parameters())

    # ------------------------------------------------------------------ forward
    def forward(self, wavs: Tensor, wav_lens: Tensor) -> tuple[list[Tensor], Tensor]:
        """Waveforms ``(B, S)`` at 16 kHz and lengths ``(B,)`` -> (hidden states ``[(B, T, D)]``, lengths ``(B,)``)."""
        if wavs.dim() == 3:
            wavs = wavs.squeeze(-1)
        if wavs.dim() != 2:
            raise SpkpeftError(f"upstream input must be (batch, samples), got shape {tuple(wavs.shape)}")
        wav_lens = wav_lens.to(device=wavs.device, dtype=torch.long)
        x, padding_mask = frontend.extract_frames(self.model, wavs, wav_lens, self.normalize_input)
        x = frontend.encoder_input(self.model.encoder, x, padding_mask)
        lengths = (~padding_mask).sum(1)
        hidden = [x]
        state = x.transpose(0, 1)  # time-first (P + T, B, C)
        carried = 0  # prompt rows currently at the front of `state`
        position_bias = None
        prefixes = self.prefixes.key_values() if self.prefixes is not None else {}
        for index, layer in enumerate(self.layers):
            state, carried, gate = self.with_prompts(index, state, carried)
            extra = [prefixes[index]] if index in prefixes else []
            state, position_bias = block_forward(
                layer, state, padding_mask, position_bias, self.layer_ext[index], carried, gate, extra
            )
            hidden.append(state[carried:].transpose(0, 1))
        if self.final_layer_norm:
            hidden[-1] = self.model.encoder.layer_norm(hidden[-1])
        if self.hidden_adapters is not None:
            hidden = [h + adapter(h, padding_mask) for h, adapter in zip(hidden, self.hidden_adapters)]
        return hidden, lengths

def load_upstream(name: str, num_layers: int | None = None) -> S3prlUpstream:
    """Load an upstream by name.

    ``name`` is an s3prl hub name (``wavlm_base_plus``, ``wavlm_large``, ``hubert_base``,
    ``wav2vec2_base``, ``xls_r_300m``, ...; downloaded by s3prl on first use), a path to a
    ``.pt`` checkpoint in an s3prl local format (optionally ``wavlm_local:PATH``,
    ``wav2vec2_local:PATH`` or ``hubert_local:PATH``), or ``random:<arch>``
    (:data:`spkpeft.upstream.s3prl.random_arch.ARCHS`).  ``num_layers=K`` keeps the first ``K``
    blocks (a larger ``K`` keeps them all).
    """
    expert = sources.load_s3prl(name)
    if hasattr(expert, "remove_all_hooks"):
        expert.remove_all_hooks()
    model = expert.model
    if hasattr(expert, "wav_normalize"):  # wav2vec 2.0
        normalize = expert.wav_normalize
    elif hasattr(expert, "task_cfg"):  # HuBERT
        normalize = expert.task_cfg.normalize
    else:  # WavLM
        normalize = getattr(expert.cfg, "normalize", False)
    upstream = S3prlUpstream(model, name, normalize, num_layers)
    upstream.train()
    return upstream
