"""Prompt tuning (deep / shallow) and prefix tuning.

**Prompt tuning** (deep and shallow prompts as in VPT, Jia et al., "Visual Prompt Tuning",
ECCV 2022, arXiv 2203.12119): ``P`` learned tokens are prepended to the input of every
block ("deep": fresh tokens per block, the previous block's prompt outputs discarded) or of
the first block only ("shallow": the tokens then flow through all blocks).  They are
queries, keys and values of the block like the frames; their outputs are removed from
every hidden state, and the frame lengths are those of the real frames.

**Prefix tuning** (Li & Liang, "Prefix-Tuning: Optimizing Continuous Prompts for
Generation", ACL 2021, arXiv 2101.00190): each selected block gets ``P`` learned keys and
values per head, used by its self-attention in addition to the frames' own.  During
training they are reparametrised by an MLP (the paper's stabilisation; its reference code
uses ``mid_dim`` 512)::

    [K_l ; V_l]  =  (W_2 tanh(W_1 E + c_1) + c_2)[l]       E: P x D,  W_1: D -> H_mlp,  W_2: H_mlp -> L 2 D

and :meth:`PrefixKeyValues.merge` folds the MLP into plain ``(L, 2, P, D)`` prefixes for
extraction (done by ``model.merge()``; ``unload`` drops the MLP).

Both join the frames in **one softmax** by default (``attention: joint``, the published
methods; :mod:`spkpeft.upstream.s3prl.attention`): extra keys change the normalisation of the
frames' attention, so the model is not the bare one at initialisation.  ``attention: gated``
keeps the variant this toolkit used first: a separate softmax over the extra keys scaled
by a per-head gate initialised to 0 (zero-init gated attention of LLaMA-Adapter, Zhang et
al., 2023), which leaves the model exactly unchanged at step 0.

Prompt initialisation (``init: hidden``, default): prompts are drawn on the scale of the
hidden states they join.  In a post-LN block the input is the output of a LayerNorm
(``encoder.layer_norm`` for block 0, the previous block's ``final_layer_norm`` after),
so block ``l``'s prompts start as ``beta_c + gamma_c z``, ``z ~ N(0, 1)``: a sample of that
LayerNorm's output distribution.  A pre-LN block normalises its input itself, so
``z ~ N(0, 1)`` is used there.  (VPT's ``xavier_uniform`` scale, std about 0.02 for 768
dims, is tiny next to unit-scale post-LN hidden states: such prompts barely take part in
the attention and barely train.)  ``init: normal`` draws ``N(0, init_std^2)``.

WavLM's relative position bias is computed over the real frames only (prompts and
prefixes carry no position), so relative distances between frames are untouched.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn
from torch import Tensor

from spkpeft.peft.base import (
    LayerSpec,
    Mergeable,
    PeftConfig,
    choices,
    layers_field,
    non_negative,
    positive_field,
    register_method,
    select_layers,
)
from spkpeft.upstream.base import ExtraKV

ATTENTION_MODES = ("joint", "gated")


@dataclass
class PromptConfig(PeftConfig):
    """``peft.method: prompt``."""

    method: str = "prompt"
    num_tokens: int = positive_field(20)
    deep: bool = True
    attention: str = field(default="joint", metadata=choices(*ATTENTION_MODES))
    init: str = field(default="hidden", metadata=choices("hidden", "normal"))
    init_std: float = field(default=0.02, metadata={"check": non_negative})


@dataclass
class PrefixConfig(PeftConfig):
    """``peft.method: prefix``."""

    method: str = "prefix"
    length: int = positive_field(16)
    attention: str = field(default="joint", metadata=choices(*ATTENTION_MODES))
    reparametrize: bool = True
    mlp_hidden: int = positive_field(512)
    init_std: float = field(default=0.02, metadata={"check": non_negative})
    layers: LayerSpec = layers_field()


def _normal(shape: tuple[int, ...], std: float = 1.0) -> Tensor:
    return torch.randn(shape) * std


def hidden_scale_prompts(upstream: nn.Module, blocks: list[int], num_tokens: int) -> Tensor:
    """Initial prompts ``(len(blocks), P, D)`` on the scale of each block's input (module doc)."""
    prompts = _normal((len(blocks), num_tokens, upstream.hidden_dim))
    for row, block in enumerate(blocks):
        norm = upstream.block_input_norm(block)
        if norm is None:  # a pre-LN block normalises its input itself
            continue
        gamma, beta = norm.weight.detach().float().cpu(), norm.bias.detach().float().cpu()
        prompts[row] = beta + gamma * prompts[row]
    return prompts


class PromptTokens(nn.Module):
    """Learned prompt tokens ``(L or 1, P, D)``; with ``gated``, per-block gates ``(L, H)`` (zeros)."""

    def __init__(self, initial: Tensor, deep: bool, num_layers: int, num_heads: int, gated: bool) -> None:
        super().__init__()
        self.deep = deep
        self.num_tokens = initial.shape[1]
        self.prompt = nn.Parameter(initial.clone())
        self.gates = nn.Parameter(torch.zeros(num_layers, num_heads)) if gated else None

    def tokens(self, layer: int, batch: int) -> Tensor:
        """Time-first prompt tokens for block ``layer``: ``(P, B, D)``."""
        return self.prompt[layer if self.deep else 0].unsqueeze(1).expand(-1, batch, -1)

    def gate(self, layer: int) -> Tensor | None:
        """Per-head gate ``(H,)`` of block ``layer``; None for the joint softmax."""
        return None if self.gates is None else self.gates[layer]


class PrefixKeyValues(Mergeable, nn.Module):
    """Keys and values of every selected block's prefix, ``(L, 2, P, D)``, from an MLP or direct.

    ``key_values()`` -> ``{block index: ExtraKV}`` (the MLP runs once per forward);
    :meth:`merge` caches the prefixes (no MLP at inference), :meth:`unmerge` drops the
    cache, :meth:`unload` deletes the MLP for good.
    """

    def __init__(self, blocks: list[int], dim: int, num_heads: int, cfg: PrefixConfig) -> None:
        super().__init__()
        self.blocks = list(blocks)
        self.num_heads = num_heads
        self.length, self.dim = cfg.length, dim
        count = len(self.blocks)
        if cfg.reparametrize:
            self.embedding = nn.Parameter(_normal((cfg.length, dim)))  # nn.Embedding's N(0, 1)
            self.mlp = nn.Sequential(nn.Linear(dim, cfg.mlp_hidden), nn.Tanh(), nn.Linear(cfg.mlp_hidden, count * 2 * dim))
            self.prefix = None
        else:
            self.embedding, self.mlp = None, None
            self.prefix = nn.Parameter(_normal((count, 2, cfg.length, dim), cfg.init_std))
        self.gates = nn.Parameter(torch.zeros(count, num_heads)) if cfg.attention == "gated" else None
        self.folded: Tensor | None = None
        self.merged = False

    def prefixes(self) -> Tensor:
        """``(L, 2, P, D)``: keys (``[:, 0]``) and values (``[:, 1]``) of every selected block."""
        if self.folded is not None:
            return self.folded
        if self.mlp is None:
            return self.prefix
        out = self.mlp(self.embedding)  # (P, L 2 D)
        return out.view(self.length, len(self.blocks), 2, self.dim).permute(1, 2, 0, 3)

    def _heads(self, x: Tensor) -> Tensor:
        """``(P, D)`` -> ``(1, H, P, d)``."""
        return x.view(self.length, self.num_heads, self.dim // self.num_heads).transpose(0, 1).unsqueeze(0)

    def key_values(self) -> dict[int, ExtraKV]:
        """``{block: ExtraKV}`` with keys/values broadcast over the batch."""
        both = self.prefixes()
        return {
            block: ExtraKV(self._heads(both[i, 0]), self._heads(both[i, 1]), None if self.gates is None else self.gates[i])
            for i, block in enumerate(self.blocks)
        }

    @torch.no_grad()
    def merge(self) -> None:
        """Fold the reparametrisation: compute the prefixes once and use them as they are."""
        if self.mlp is not None:
            self.folded = self.prefixes().detach().clone()
        self.merged = True

    def unmerge(self) -> None:
        """Undo :meth:`merge` (the MLP runs again at every forward)."""
        if self.mlp is not None:
            self.folded = None
        self.merged = False

    def unloaded(self) -> nn.Module:
        """Itself with only the folded prefixes (smallest inference model; irreversible)."""
        if self.mlp is not None:
            self.merge()
            self.prefix = nn.Parameter(self.folded, requires_grad=False)
            self.embedding, self.mlp, self.folded = None, None, None
        return self


def apply_prompt(upstream: nn.Module, cfg: PromptConfig) -> list[nn.Module]:
    """Attach :class:`PromptTokens` to the upstream's block loop."""
    blocks = list(range(upstream.num_layers)) if cfg.deep else [0]
    if cfg.init == "hidden":
        initial = hidden_scale_prompts(upstream, blocks, cfg.num_tokens)
    else:
        initial = _normal((len(blocks), cfg.num_tokens, upstream.hidden_dim), cfg.init_std)
    param = next(upstream.parameters())
    upstream.prompts = PromptTokens(
        initial.to(device=param.device, dtype=param.dtype), cfg.deep, upstream.num_layers, upstream.num_heads,
        cfg.attention == "gated",
    )
    return [upstream.prompts]


def apply_prefix(upstream: nn.Module, cfg: PrefixConfig) -> list[nn.Module]:
    """Give the selected blocks learned key/value prefixes (:class:`PrefixKeyValues`)."""
    blocks = select_layers(cfg.layers, upstream.num_layers)
    param = next(upstream.parameters())
    upstream.prefixes = PrefixKeyValues(blocks, upstream.hidden_dim, upstream.num_heads, cfg).to(param.device)
    return [upstream.prefixes]


register_method("prompt", PromptConfig, apply_prompt, description="deep / shallow prompt tuning")
register_method("prefix", PrefixConfig, apply_prefix, description="prefix tuning")
