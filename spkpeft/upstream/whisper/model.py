"""The :class:`WhisperUpstream` module: every hidden state of a Whisper encoder, with lengths.

The encoder is transformers' ``WhisperEncoder`` (``self.model``; parameter names are
transformers'), run by this module's own loop so that parameter-efficient methods reach
inside the blocks and padded frames are masked.  For log-mel features ``F (B, M, T)``
(:mod:`~spkpeft.upstream.whisper.features`; ``T_b = n_b // 160`` valid frames per row)::

    x = GELU(conv1(F))          kernel 3, stride 1, padding 1            (B, D, T)
    x[:, :, t >= T_b] = 0       the boundary conv2 sees is the utterance's own zero padding
    x = GELU(conv2(x))          kernel 3, stride 2, padding 1            (B, D, T')
    hidden[0] = x^T + P[:T']    sinusoidal positions cropped to T' = ceil(T / 2)

then pre-LN blocks (time-first ``x``; the slots of
:class:`~spkpeft.upstream.base.LayerExtensions` in brackets)::

    u = LN_1(x);  h = Att(u) [+ attn_parallel(u)] [h += attn_out(h)];  x = x + drop(h)
    u = LN_2(x);  h = fc2(drop(GELU(fc1(u)))) [+ ffn_parallel(u)] [h += ffn_out(h)];  x = x + drop(h)

with ``Att`` the multi-head attention of :mod:`spkpeft.upstream.attention` over the block's
``q_proj`` / ``k_proj`` (no bias) / ``v_proj`` / ``out_proj``, queries scaled by ``d^-1/2``,
and ``-inf`` at the padded keys.  ``hidden[i]`` is block ``i``'s output and ``hidden[L] =
LN_post(output of block L)``, ``WhisperEncoder``'s ``last_hidden_state`` (truncation to
``num_layers`` drops the later blocks and ``LN_post``, as for the other families).  Lengths:
``ceil(T_b / 2)`` frames of 20 ms.  Without padding this is ``WhisperEncoder.forward`` (which
only accepts exactly 30 s); with it, the zeroed conv1 output and the key mask make every
valid frame of a row equal to the utterance's alone.

Inputs longer than the position table (``max_source_positions`` = 1500 positions, 3000
frames, 30 s): ``long_inputs: refuse`` is an error; ``chunk`` cuts the features into
consecutive 30 s windows (the last one shorter), encodes each as an utterance of its own
(zero-padded conv stem, positions from 0, as Whisper's transcription windows) and joins the
hidden states along time; the features' normalisation (the maximum in
:mod:`~spkpeft.upstream.whisper.features`) is the whole utterance's.  The windows start at
multiples of 30 s of each utterance, so chunking keeps the batch invariance.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spkpeft.errors import SpkpeftError
from spkpeft.upstream.attention import attend_with_extras, key_padding_bias, merge_heads, split_heads
from spkpeft.upstream.base import FAIRSEQ_ROLE_PATHS, ExtraKV, LayerExtensions, PathBlocksUpstream, extend_sublayer
from spkpeft.upstream.whisper import sources
from spkpeft.upstream.whisper.features import WhisperLogMel

LONG_INPUTS = ("chunk", "refuse")

#: projection role -> attribute path of the ``nn.Linear`` inside one ``WhisperEncoderLayer``
ROLE_PATHS = FAIRSEQ_ROLE_PATHS


def self_attention(attn: nn.Module, x: Tensor, bias: Tensor, num_prompts: int, prompt_gate: Tensor | None,
                   extra: list[ExtraKV]) -> Tensor:
    """``WhisperAttention`` on time-first ``x (P + T, B, D)`` through its projection modules."""
    heads = attn.num_heads
    q = split_heads(attn.q_proj(x) * attn.scaling, heads)
    k = split_heads(attn.k_proj(x), heads)
    v = split_heads(attn.v_proj(x), heads)
    dropout = attn.dropout if attn.training else 0.0
    out = attend_with_extras(q, k, v, bias, num_prompts, prompt_gate, extra, dropout)
    return attn.out_proj(merge_heads(out))


def block_forward(layer: nn.Module, x: Tensor, padding: Tensor, ext: LayerExtensions | None, num_prompts: int = 0,
                  prompt_gate: Tensor | None = None, extra: list[ExtraKV] | None = None) -> Tensor:
    """One ``WhisperEncoderLayer`` with the extension slots (module docstring); ``x`` time-first
    ``(P + T, B, D)``, ``padding (B, T)`` True at padded frames."""
    bias = key_padding_bias(padding, num_prompts if prompt_gate is None else 0, x.dtype)
    mask = F.pad(padding, (num_prompts, 0), value=False)  # the adapters' view: prompts are never padding
    drop = layer.dropout if layer.training else 0.0
    u = layer.self_attn_layer_norm(x)
    h = self_attention(layer.self_attn, u, bias, num_prompts, prompt_gate, list(extra or []))
    h = extend_sublayer(ext, "attn", h, u, mask)
    x = x + F.dropout(h, drop, training=drop > 0)
    u = layer.final_layer_norm(x)
    act_drop = layer.activation_dropout if layer.training else 0.0
    h = layer.fc2(F.dropout(layer.activation_fn(layer.fc1(u)), act_drop, training=act_drop > 0))
    h = extend_sublayer(ext, "ffn", h, u, mask)
    return x + F.dropout(h, drop, training=drop > 0)


class WhisperUpstream(PathBlocksUpstream):
    """A ``WhisperEncoder`` behind the upstream protocol (see the module docstring)."""

    ROLE_PATHS = ROLE_PATHS

    def __init__(self, model: nn.Module, name: str, long_inputs: str = "chunk") -> None:
        super().__init__()
        if long_inputs not in LONG_INPUTS:
            raise SpkpeftError(f"upstream.long_inputs must be one of: {', '.join(LONG_INPUTS)}; got '{long_inputs}'")
        self.name, self.long_inputs = name, long_inputs
        self.model = model
        self.final_layer_norm = model.layer_norm is not None
        self.features = WhisperLogMel(int(model.config.num_mel_bins))
        self.max_positions = int(model.embed_positions.weight.shape[0])
        self.layer_ext = nn.ModuleList(LayerExtensions() for _ in model.layers)
        self.mark_base_parameters()

    # ------------------------------------------------------------------ the family
    @classmethod
    def load(cls, name: str, num_layers: int | None = None, long_inputs: str = "chunk") -> "WhisperUpstream":
        """The Whisper upstream ``name`` keeping the first ``num_layers`` blocks (None: all), in
        train mode (see :class:`~spkpeft.upstream.whisper.WhisperConfig`)."""
        encoder, _ = sources.load_encoder(name, num_layers)
        upstream = cls(encoder, name, long_inputs)
        upstream.train()
        return upstream

    @classmethod
    def from_config(cls, cfg) -> "WhisperUpstream":
        return cls.load(cfg.name, cfg.num_layers, cfg.long_inputs)

    @classmethod
    def check_name(cls, name: str) -> None:
        sources.check_source(name)

    @classmethod
    def weights_file(cls, name: str):
        return sources.model_files(name)

    @classmethod
    def name_for_weights(cls, fmt: str, path) -> str:
        return sources.name_of_files(fmt, path)

    # ------------------------------------------------------------------ structure
    @property
    def hidden_dim(self) -> int:
        return int(self.model.config.d_model)

    @property
    def num_heads(self) -> int:
        return int(self.model.config.encoder_attention_heads)

    def block_input_norm(self, block: int) -> nn.LayerNorm | None:
        """Pre-LN blocks normalise their input themselves."""
        return None

    def output_norm(self) -> nn.LayerNorm | None:
        """``WhisperEncoder.layer_norm`` (``ln_post``; None after truncation, which drops it)."""
        return self.model.layer_norm if self.final_layer_norm else None

    def frontend_parameters(self) -> list[nn.Parameter]:
        """The convolution stem (conv1, conv2)."""
        return list(self.model.conv1.parameters()) + list(self.model.conv2.parameters())

    def fixed_parameters(self) -> list[nn.Parameter]:
        """The sinusoidal position table (a fixed buffer in OpenAI's model, frozen in transformers')."""
        return [self.model.embed_positions.weight]

    # ------------------------------------------------------------------ forward
    def encode(self, feats: Tensor, frames: Tensor) -> tuple[list[Tensor], Tensor]:
        """Hidden states ``[(N, T', D)] * (L + 1)`` and lengths ``ceil(frames / 2)`` of features
        ``(N, M, T)`` with ``T' = ceil(T / 2) <= max_positions``."""
        enc = self.model
        steps = torch.arange(feats.shape[2], device=feats.device)[None, :]
        x = F.gelu(enc.conv1(feats.to(enc.conv1.weight.dtype)))
        x = x * (steps < frames[:, None]).to(x.dtype)[:, None, :]
        x = F.gelu(enc.conv2(x)).transpose(1, 2)
        x = x + enc.embed_positions.weight[: x.shape[1]]
        if self.training and enc.dropout > 0:
            x = F.dropout(x, enc.dropout, training=True)
        lengths = torch.div(frames + 1, 2, rounding_mode="floor")
        padding = torch.arange(x.shape[1], device=x.device)[None, :] >= lengths[:, None]
        hidden = [x]
        state = x.transpose(0, 1)
        carried = 0
        prefixes = self.prefixes.key_values() if self.prefixes is not None else {}
        for index, layer in enumerate(self.layers):
            state, carried, gate = self.with_prompts(index, state, carried)
            extra = [prefixes[index]] if index in prefixes else []
            state = block_forward(layer, state, padding, self.layer_ext[index], carried, gate, extra)
            hidden.append(state[carried:].transpose(0, 1))
        if self.final_layer_norm:
            hidden[-1] = enc.layer_norm(hidden[-1])
        return hidden, lengths

    def encode_chunked(self, feats: Tensor, frames: Tensor) -> tuple[list[Tensor], Tensor]:
        """:meth:`encode` over consecutive windows of ``2 max_positions`` frames of each row
        (module docstring), joined along time."""
        window = 2 * self.max_positions
        batch, bins, total = feats.shape
        count = math.ceil(total / window)
        feats = F.pad(feats, (0, count * window - total))
        chunks = feats.reshape(batch, bins, count, window).permute(0, 2, 1, 3).reshape(batch * count, bins, window)
        starts = torch.arange(count, device=frames.device)[None, :] * window
        chunk_frames = torch.clamp(frames[:, None] - starts, min=1, max=window).reshape(-1)  # empty windows: 1 frame
        hidden, _ = self.encode(chunks, chunk_frames)
        out_frames = math.ceil(total / 2)
        hidden = [h.reshape(batch, count * h.shape[1], h.shape[2])[:, :out_frames] for h in hidden]
        return hidden, torch.div(frames + 1, 2, rounding_mode="floor")

    def forward(self, wavs: Tensor, wav_lens: Tensor) -> tuple[list[Tensor], Tensor]:
        """Waveforms ``(B, S)`` at 16 kHz, lengths ``(B,)`` -> (hidden states ``[(B, T', D)]``, lengths ``(B,)``)."""
        if wavs.dim() != 2:
            raise SpkpeftError(f"upstream input must be (batch, samples), got shape {tuple(wavs.shape)}")
        wav_lens = wav_lens.to(device=wavs.device, dtype=torch.long)
        feats, frames = self.features(wavs, wav_lens)
        if feats.shape[2] > 2 * self.max_positions:
            if self.long_inputs == "refuse" and int(frames.max()) > 2 * self.max_positions:
                raise SpkpeftError(
                    f"an input of {int(wav_lens.max()) / 16000:.1f} s is longer than the {self.max_positions / 50:g} s "
                    f"that Whisper's {self.max_positions} positions cover; set upstream.long_inputs: chunk, or cut "
                    f"the inputs (extract.chunk_seconds)")
            hidden, lengths = self.encode_chunked(feats, frames)
        else:
            hidden, lengths = self.encode(feats, frames)
        if self.hidden_adapters is not None:
            mask = torch.arange(hidden[0].shape[1], device=wavs.device)[None, :] >= lengths[:, None]
            hidden = [h + adapter(h, mask) for h, adapter in zip(hidden, self.hidden_adapters)]
        return hidden, lengths
