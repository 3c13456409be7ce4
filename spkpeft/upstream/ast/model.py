"""The :class:`AstUpstream` module: every hidden state of an Audio Spectrogram Transformer.

The Hugging Face ``ASTModel`` (``self.model``, its parameter names are transformers') is run
by this module's own loop so that parameter-efficient methods reach inside the blocks.
``ASTLayer`` is pre-LN; with ``u`` the sub-layer input, :func:`block_forward` computes, on
time-first tokens ``x (S, B, D)`` (the slots of :class:`~spkpeft.upstream.base.LayerExtensions`
in brackets)::

    u = LN_before(x);  h = Att(u) [+ attn_parallel(u)] [h += attn_out(h)];  x = x + drop(h)
    u = LN_after(x);   h = fc2(act(fc1(u))) [+ ffn_parallel(u)] [h += ffn_out(h)];  x = x + drop(h)

with ``Att`` the multi-head self-attention of :mod:`spkpeft.upstream.attention` over the
block's own ``q_proj`` / ``k_proj`` / ``v_proj`` / ``o_proj`` modules (prompt tokens and
prefix keys/values join it there).  Without any extension this is ``ASTLayer.forward``.

Hidden states (tokens: CLS, distillation, then the ``f x t`` patches frequency-major)::

    hidden[0] = embeddings (patches + tokens + position embeddings)
    hidden[i] = output of block i (1 <= i <= L)
    hidden[L] = LayerNorm(output of block L): ASTModel's last_hidden_state

(``num_layers`` truncation drops the later blocks and the final LayerNorm, as for the s3prl
family's pre-LN models.)  ``output`` selects what every hidden state is returned as:

* ``tokens``: all ``2 + f t`` tokens, ``(B, 2 + f t, D)``, every one valid: a mean-pooled
  head over the last state is PETL-AST's classifier input (``final_output: ALL``);
* ``cls``: the CLS token, ``(B, 1, D)`` (PETL-AST ``final_output: CLS``);
* ``cls_dist``: the mean of the CLS and distillation tokens, ``(B, 1, D)`` (the original
  AST's and ``ASTModel``'s pooled output);
* ``frames``: the patch tokens averaged over frequency, ``(B, t, D)``, one frame every
  ``time_stride`` input frames (100 ms), and as lengths the patches lying wholly inside the
  utterance, ``floor((T_b - patch) / stride) + 1`` (at least 1): a frame sequence for the
  sv / cm heads (ECAPA-TDNN).

Every utterance is padded or cut to ``max_length`` frames on its own
(:mod:`spkpeft.upstream.ast.features`), and attention is not masked (as in AST, whose
checkpoints were trained on padded inputs), so an utterance gives the same hidden states
alone and in any batch.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from spkpeft.errors import SpkpeftError
from spkpeft.upstream.ast import sources
from spkpeft.upstream.ast.features import AstFeatures, SpecAugmentConfig, spec_augment
from spkpeft.upstream.ast.positions import adapt_position_embeddings, grid_shape
from spkpeft.upstream.attention import attend_with_extras, merge_heads, split_heads
from spkpeft.upstream.base import ExtraKV, LayerExtensions, PathBlocksUpstream, extend_sublayer

OUTPUTS = ("tokens", "cls", "cls_dist", "frames")

#: projection role -> attribute path of the ``nn.Linear`` inside one ``ASTLayer``
ROLE_PATHS: dict[str, str] = {
    "q": "attention.q_proj",
    "k": "attention.k_proj",
    "v": "attention.v_proj",
    "out": "attention.o_proj",
    "fc1": "mlp.fc1",
    "fc2": "mlp.fc2",
}


def self_attention(attn: nn.Module, x: Tensor, num_prompts: int, prompt_gate: Tensor | None,
                   extra: list[ExtraKV]) -> Tensor:
    """``ASTAttention`` on time-first ``x (P + S, B, D)`` through its projection modules."""
    heads = attn.num_attention_heads
    q = split_heads(attn.q_proj(x) * attn.scaling, heads)
    k = split_heads(attn.k_proj(x), heads)
    v = split_heads(attn.v_proj(x), heads)
    dropout = attn.attention_dropout if attn.training else 0.0
    out = attend_with_extras(q, k, v, None, num_prompts, prompt_gate, extra, dropout)
    return attn.o_proj(merge_heads(out))


def block_forward(layer: nn.Module, x: Tensor, ext: LayerExtensions | None, num_prompts: int = 0,
                  prompt_gate: Tensor | None = None, extra: list[ExtraKV] | None = None) -> Tensor:
    """One ``ASTLayer`` with the extension slots (module docstring); ``x`` time-first."""
    u = layer.layernorm_before(x)
    h = self_attention(layer.attention, u, num_prompts, prompt_gate, list(extra or []))
    h = extend_sublayer(ext, "attn", h, u, None)
    x = x + layer.dropout(h)
    u = layer.layernorm_after(x)
    mlp = layer.mlp
    h = mlp.fc2(mlp.activation_fn(mlp.fc1(u)))
    h = extend_sublayer(ext, "ffn", h, u, None)
    return x + layer.dropout(h)


class AstUpstream(PathBlocksUpstream):
    """An ``ASTModel`` behind the upstream protocol (see the module docstring)."""

    ROLE_PATHS = ROLE_PATHS

    def __init__(self, model: nn.Module, name: str, max_length: int | None = None, num_layers: int | None = None,
                 output: str = "tokens", specaugment: SpecAugmentConfig | None = None) -> None:
        super().__init__()
        if output not in OUTPUTS:
            raise SpkpeftError(f"upstream.output must be one of: {', '.join(OUTPUTS)}; got '{output}'")
        self.name, self.output = name, output
        self.model = model
        cfg = model.config
        self.patch, self.time_stride = cfg.patch_size, cfg.time_stride
        self.max_length = int(max_length or cfg.max_length)
        self.set_input_length(self.max_length)
        self.features = AstFeatures(cfg.num_mel_bins, self.max_length)
        self.specaugment = specaugment or SpecAugmentConfig()
        self.final_layer_norm = True
        if num_layers is not None and num_layers < len(model.layers):
            model.layers = nn.ModuleList(list(model.layers)[:num_layers])
            model.layernorm = None
            self.final_layer_norm = False
        self.layer_ext = nn.ModuleList(LayerExtensions() for _ in model.layers)
        self.mark_base_parameters()

    # ---- the family (upstream.type: ast)
    @classmethod
    def load(cls, name: str, num_layers: int | None = None, max_length: int | None = None, output: str = "tokens",
             specaugment: SpecAugmentConfig | None = None) -> "AstUpstream":
        """The AST upstream ``name`` in train mode (see :class:`~spkpeft.upstream.ast.AstConfig`)."""
        upstream = cls(sources.load_pretrained(name), name, max_length, num_layers, output, specaugment)
        upstream.train()
        return upstream

    @classmethod
    def from_config(cls, cfg) -> "AstUpstream":
        return cls.load(cfg.name, cfg.num_layers, cfg.max_length, cfg.output, cfg.specaugment)

    @classmethod
    def check_name(cls, name: str) -> None:
        sources.check_source(name)

    @classmethod
    def weights_file(cls, name: str):
        return sources.model_files(name)

    @classmethod
    def name_for_weights(cls, fmt: str, path) -> str:
        return sources.name_of_files(fmt, path)

    def set_input_length(self, max_length: int) -> None:
        """Adapt the checkpoint's position embeddings to ``max_length`` frames (crop or interpolate)."""
        cfg = self.model.config
        old = grid_shape(cfg.num_mel_bins, cfg.max_length, cfg.patch_size, cfg.frequency_stride, cfg.time_stride)
        new = grid_shape(cfg.num_mel_bins, max_length, cfg.patch_size, cfg.frequency_stride, cfg.time_stride)
        if new[1] < 1:
            raise SpkpeftError(f"upstream.max_length {max_length} is shorter than one patch ({cfg.patch_size} frames)")
        emb = self.model.embeddings
        table = adapt_position_embeddings(emb.position_embeddings.detach(), old, new)
        emb.position_embeddings = nn.Parameter(table, requires_grad=emb.position_embeddings.requires_grad)
        cfg.max_length = max_length
        self.grid = new

    # ------------------------------------------------------------------ structure
    @property
    def hidden_dim(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def num_heads(self) -> int:
        return int(self.model.config.num_attention_heads)

    def block_input_norm(self, block: int) -> nn.LayerNorm | None:
        """Pre-LN blocks normalise their input themselves."""
        return None

    def output_norm(self) -> nn.LayerNorm | None:
        """``ASTModel.layernorm`` (None after truncation, which drops it)."""
        return self.model.layernorm if self.final_layer_norm else None

    def frontend_parameters(self) -> list[nn.Parameter]:
        """The patch embedding (the 16 x 16 convolution over the spectrogram)."""
        return list(self.model.embeddings.patch_embeddings.parameters())

    # ------------------------------------------------------------------ forward
    def patch_lengths(self, frames: Tensor) -> Tensor:
        """Time patches wholly inside ``frames`` input frames, in ``[1, t]``."""
        count = torch.div(frames - self.patch, self.time_stride, rounding_mode="floor") + 1
        return count.clamp(min=1, max=self.grid[1])

    def encode(self, wavs: Tensor, wav_lens: Tensor) -> tuple[list[Tensor], Tensor]:
        """Token hidden states ``[(B, 2 + f t, D)] * (L + 1)`` and the input frame counts ``(B,)``."""
        if wavs.dim() != 2:
            raise SpkpeftError(f"upstream input must be (batch, samples), got shape {tuple(wavs.shape)}")
        feats, frames = self.features(wavs, wav_lens)
        if self.training and (self.specaugment.freq_mask or self.specaugment.time_mask):
            feats = spec_augment(feats, self.specaugment)
        x = self.model.embeddings(feats.to(self.model.embeddings.position_embeddings.dtype))
        hidden = [x]
        state = x.transpose(0, 1)
        carried = 0
        prefixes = self.prefixes.key_values() if self.prefixes is not None else {}
        for index, layer in enumerate(self.layers):
            state, carried, gate = self.with_prompts(index, state, carried)
            extra = [prefixes[index]] if index in prefixes else []
            state = block_forward(layer, state, self.layer_ext[index], carried, gate, extra)
            hidden.append(state[carried:].transpose(0, 1))
        if self.final_layer_norm:
            hidden[-1] = self.model.layernorm(hidden[-1])
        return hidden, frames

    def select(self, tokens: Tensor) -> Tensor:
        """One hidden state as ``self.output`` asks (module docstring)."""
        if self.output == "tokens":
            return tokens
        if self.output == "cls":
            return tokens[:, :1]
        if self.output == "cls_dist":
            return tokens[:, :2].mean(1, keepdim=True)
        batch, _, dim = tokens.shape
        return tokens[:, 2:].reshape(batch, self.grid[0], self.grid[1], dim).mean(1)

    def forward(self, wavs: Tensor, wav_lens: Tensor) -> tuple[list[Tensor], Tensor]:
        """Waveforms ``(B, S)`` at 16 kHz, lengths ``(B,)`` -> (hidden states ``[(B, T, D)]``, lengths ``(B,)``)."""
        wav_lens = wav_lens.to(device=wavs.device, dtype=torch.long)
        tokens, frames = self.encode(wavs, wav_lens)
        hidden = [self.select(h) for h in tokens]
        if self.output == "frames":
            lengths = self.patch_lengths(frames)
        else:
            lengths = torch.full_like(frames, hidden[0].shape[1])
        if self.hidden_adapters is not None:
            mask = torch.arange(hidden[0].shape[1], device=wavs.device)[None, :] >= lengths[:, None]
            hidden = [h + adapter(h, mask) for h, adapter in zip(hidden, self.hidden_adapters)]
        return hidden, lengths
