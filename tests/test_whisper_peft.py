"""Every PEFT method on the Whisper upstream through the protocol: the bare model at
initialisation where the method promises it, a training step reaching the method's
parameters, batch invariance with the method in place, LoRA merged == unmerged, full
fine-tuning leaving the position table fixed, and the layer aggregations with truncation."""

from __future__ import annotations

import pytest
import torch

from spkpeft.nn.aggregation import AttentiveMergeConfig, PMFAConfig, build_aggregation
from spkpeft.peft import (
    AdapterConfig,
    BitFitConfig,
    FrozenConfig,
    FullFinetuneConfig,
    LoRAConfig,
    PrefixConfig,
    PromptConfig,
    SpectralLoRAConfig,
    SVAdapterConfig,
    apply_peft,
    merge_peft,
)
from spkpeft.upstream.whisper import load_whisper

pytestmark = pytest.mark.usefixtures("isolated_model_cache")

METHODS = {
    "frozen": FrozenConfig(),
    "full_ft": FullFinetuneConfig(freeze_cnn=False),
    "bitfit": BitFitConfig(),
    "lora": LoRAConfig(rank=4, alpha=8.0, dropout=0.0, targets=["q", "k", "v", "out", "fc1", "fc2"]),
    "spectral_lora": SpectralLoRAConfig(top_r=8, rank=4),
    "pfeiffer_parallel": AdapterConfig(style="pfeiffer", placement="parallel", bottleneck=8),
    "houlsby_sequential": AdapterConfig(style="houlsby", placement="sequential", bottleneck=8),
    "houlsby_conformer": AdapterConfig(style="houlsby", placement="sequential", adapter_type="conformer_module",
                                       reduction_rate=8, kernel_size=5),
    "sv_adapter": SVAdapterConfig(bottleneck=8, embed_bottleneck=8, adapter_type="conformer"),
    "prompt_gated": PromptConfig(num_tokens=3, attention="gated", init="normal", init_std=0.036),
    "prefix_gated": PrefixConfig(length=3, attention="gated", reparametrize=False, init_std=0.036),
    "prompt": PromptConfig(num_tokens=3),
    "prefix": PrefixConfig(length=3, reparametrize=False, init_std=0.5),
}
#: the published prompt / prefix tuning add keys to the softmax: not the bare model at init
NOT_IDENTITY_AT_INIT = {"prompt", "prefix"}
LENGTHS = (12000, 7000)  # 75 and 43 frames


def waves() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    return torch.randn(2, max(LENGTHS), generator=g) * 0.1, torch.tensor(LENGTHS)


@pytest.fixture(scope="module")
def bare():
    with torch.no_grad():
        return load_whisper("random:tiny_whisper").eval()(*waves())


@pytest.mark.parametrize("method", list(METHODS))
def test_init_invariance_and_a_training_step(method, bare):
    up = load_whisper("random:tiny_whisper")
    handle = apply_peft(up, METHODS[method])
    wavs, lens = waves()
    with torch.no_grad():
        hidden, lengths = up.eval()(wavs, lens)
        alone, _ = up(wavs[1:, :LENGTHS[1]], lens[1:])
    assert torch.equal(lengths, bare[1])
    valid = lengths[1].item()
    for ours, single in zip(hidden, alone):  # the padded row equals the utterance alone
        torch.testing.assert_close(ours[1, :valid], single[0], atol=1e-5, rtol=0)
    if method in NOT_IDENTITY_AT_INIT:
        assert (hidden[-1] - bare[0][-1]).abs().max() > 1e-3
    else:
        for ours, ref in zip(hidden, bare[0]):
            torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)
    trainable = dict(handle.named_trainable_parameters())
    if method == "frozen":
        assert not trainable
        return
    up.train()
    hidden, _ = up(wavs, lens)
    sum(h.pow(2).mean() for h in hidden).backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in trainable.values())


def test_full_finetuning_keeps_the_position_table_fixed():
    up = load_whisper("random:tiny_whisper")
    handle = apply_peft(up, FullFinetuneConfig(freeze_cnn=True))
    names = {n for n, _ in handle.named_trainable_parameters()}
    assert "model.embed_positions.weight" not in names and "model.conv1.weight" not in names
    assert "model.layers.0.self_attn.k_proj.weight" in names and "model.layer_norm.weight" in names
    assert handle.num_trainable() == up.num_base_params() - 64 * 1500 - sum(p.numel() for p in up.frontend_parameters())


def test_lora_merged_equals_unmerged():
    up = load_whisper("random:tiny_whisper")
    handle = apply_peft(up, LoRAConfig(rank=4, alpha=8.0, dropout=0.0, targets=["q", "k", "v", "out"]))
    with torch.no_grad():
        for _, p in handle.named_trainable_parameters():
            p.normal_(0.0, 0.1)
        up.eval()
        unmerged, _ = up(*waves())
        assert merge_peft(up) == 4 * up.num_layers
        merged, _ = up(*waves())
    for a, b in zip(unmerged, merged):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=0)


def test_linear_probe_trains_ln_post_only():
    up = load_whisper("random:tiny_whisper")
    handle = apply_peft(up, FrozenConfig(train_output_norm=True))
    assert sorted(n for n, _ in handle.named_trainable_parameters()) == ["model.layer_norm.bias", "model.layer_norm.weight"]


def test_aggregations_on_a_truncated_encoder(bare):
    """Attentive merging and PMFA over the hidden states of an encoder truncated to 1 block
    (upstream.num_layers: the dropped block is never run); PMFA = LayerNorm of the blocks'
    concatenation."""
    cut = load_whisper("random:tiny_whisper", num_layers=1).eval()
    with torch.no_grad():
        hidden, lengths = cut(*waves())
    assert len(hidden) == 2
    torch.testing.assert_close(hidden[1], bare[0][1], atol=1e-6, rtol=0)
    merge = build_aggregation(AttentiveMergeConfig(), cut.num_hidden, cut.hidden_dim)
    assert merge(hidden, lengths).shape == (2, 38, 64)
    pmfa = build_aggregation(PMFAConfig(first=1, last=2), 3, 64)
    out = pmfa(bare[0], bare[1])
    torch.testing.assert_close(out, torch.nn.functional.layer_norm(torch.cat(bare[0][1:], -1), (128,)))
