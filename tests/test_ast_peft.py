"""Every PEFT method on the AST upstream through the protocol: the bare model at
initialisation where the method promises it, a training step reaching the method's
parameters, and LoRA merged == unmerged."""

from __future__ import annotations

import pytest
import torch

from spkpeft.errors import SpkpeftError
from spkpeft.peft import (
    AdapterConfig,
    BitFitConfig,
    FrozenConfig,
    FullFinetuneConfig,
    LoRAConfig,
    PrefixConfig,
    PromptConfig,
    SVAdapterConfig,
    apply_peft,
    merge_peft,
    unmerge_peft,
)
from spkpeft.peft.adapters import ConformerModuleAdapter
from spkpeft.upstream.ast import load_ast

pytestmark = pytest.mark.usefixtures("isolated_model_cache")

METHODS = {
    "frozen": FrozenConfig(),
    "full_ft": FullFinetuneConfig(freeze_cnn=False),
    "bitfit": BitFitConfig(),
    "lora": LoRAConfig(rank=4, alpha=8.0, dropout=0.0),
    "pfeiffer_parallel_bottleneck": AdapterConfig(style="pfeiffer", placement="parallel", reduction_rate=8),
    "houlsby_sequential_bottleneck": AdapterConfig(style="houlsby", placement="sequential", bottleneck=8),
    "pfeiffer_parallel_conformer": AdapterConfig(style="pfeiffer", placement="parallel", adapter_type="conformer_module",
                                                 reduction_rate=8, kernel_size=31),
    "houlsby_sequential_conformer": AdapterConfig(style="houlsby", placement="sequential",
                                                  adapter_type="conformer_module", reduction_rate=8, kernel_size=5),
    "sv_adapter": SVAdapterConfig(bottleneck=8, embed_bottleneck=8),
    "prompt_gated": PromptConfig(num_tokens=3, attention="gated", init="normal", init_std=0.036),
    "prefix_gated": PrefixConfig(length=3, attention="gated", reparametrize=False, init_std=0.036),
    "prompt": PromptConfig(num_tokens=3, init="normal", init_std=0.5),
    "prefix": PrefixConfig(length=3, reparametrize=False, init_std=0.5),
}
#: the published prompt / prefix tuning add keys to the softmax: not the bare model at init
NOT_IDENTITY_AT_INIT = {"prompt", "prefix"}


def waves() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    return torch.randn(2, 14000, generator=g) * 0.1, torch.tensor([14000, 9000])


@pytest.fixture(scope="module")
def bare():
    with torch.no_grad():
        return load_ast("random:tiny_ast", output="frames").eval()(*waves())


@pytest.mark.parametrize("method", list(METHODS))
def test_init_then_a_training_step(method, bare):
    up = load_ast("random:tiny_ast", output="frames")
    handle = apply_peft(up, METHODS[method])
    with torch.no_grad():
        hidden, lengths = up.eval()(*waves())
    assert torch.equal(lengths, bare[1])
    if method in NOT_IDENTITY_AT_INIT:
        assert (hidden[-1] - bare[0][-1]).abs().max() > 1e-3
    else:
        for ours, ref in zip(hidden, bare[0]):
            torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)
    trainable = dict(handle.named_trainable_parameters())
    if method == "frozen":
        assert not trainable
        return
    assert trainable and all(not getattr(p, "_spkpeft_base", False) for p in trainable.values()) == (
        method not in ("full_ft", "bitfit"))
    up.train()
    hidden, _ = up(*waves())
    sum(h.pow(2).mean() for h in hidden).backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in trainable.values())


def test_conformer_adapter_applies_its_layer_norm():
    """The adapter's output depends on the LayerNorm's parameters (PETL-AST discards it)."""
    torch.manual_seed(0)
    adapter = ConformerModuleAdapter(16, 4, kernel_size=3, time_first=False).eval()
    torch.nn.init.normal_(adapter.pointwise_out.weight)
    h = torch.randn(2, 7, 16)
    before = adapter(h)
    with torch.no_grad():
        adapter.norm.weight.mul_(3.0)
        adapter.norm.bias.add_(0.5)
    assert not torch.allclose(adapter(h), before)
    # and it is invariant to the input's scale and offset per frame, as a LayerNorm makes it
    torch.testing.assert_close(adapter(2.0 * h + 1.0), adapter(h), atol=1e-4, rtol=0)


def test_bottleneck_from_reduction_rate():
    up = load_ast("random:tiny_ast")
    apply_peft(up, AdapterConfig(style="pfeiffer", placement="parallel", adapter_type="conformer_module",
                                 reduction_rate=8, kernel_size=31))
    adapter = up.layer_ext[0].ffn_parallel
    assert adapter.depthwise.in_channels == 64 // 8 and adapter.depthwise.kernel_size == (31,)
    assert sum(ext.ffn_parallel is not None for ext in up.layer_ext) == up.num_layers


def test_lora_merged_equals_unmerged():
    up = load_ast("random:tiny_ast")
    handle = apply_peft(up, LoRAConfig(rank=4, alpha=8.0, dropout=0.0, targets=["q", "v", "out", "fc1"]))
    with torch.no_grad():
        for _, p in handle.named_trainable_parameters():
            p.normal_(0.0, 0.1)
        up.eval()
        unmerged, _ = up(*waves())
        assert merge_peft(up) == 4 * up.num_layers  # one LoRA wrapper per target per block
        merged, _ = up(*waves())
        assert unmerge_peft(up) == 4 * up.num_layers
        again, _ = up(*waves())
    assert (unmerged[-1] - bare_like(up)).abs().max() > 1e-3  # the factors do change the model
    for a, b, c in zip(unmerged, merged, again):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=0)
        torch.testing.assert_close(c, a, atol=1e-5, rtol=0)


def bare_like(up) -> torch.Tensor:
    with torch.no_grad():
        return load_ast("random:tiny_ast").eval()(*waves())[0][-1]


def test_linear_probe_trains_the_final_layer_norm_only():
    up = load_ast("random:tiny_ast")
    handle = apply_peft(up, FrozenConfig(train_output_norm=True))
    assert sorted(n for n, _ in handle.named_trainable_parameters()) == ["model.layernorm.bias", "model.layernorm.weight"]
    cut = load_ast("random:tiny_ast", num_layers=1)
    with pytest.raises(SpkpeftError, match="train_output_norm: this upstream has no final LayerNorm"):
        apply_peft(cut, FrozenConfig(train_output_norm=True))
