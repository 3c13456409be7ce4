"""PEFT methods: identity at init, training step, gradients, merging, saving, parameter counts."""

from __future__ import annotations

import copy
import math
from collections import OrderedDict

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from spkpeft.nn.aggregation import AttentiveMerge, AttentiveMergeConfig, WeightedSum, build_aggregation
from spkpeft.errors import SpkpeftError
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
    select_layers,
    unmerge_peft,
)
from spkpeft.peft.lora import LoRALinear
from spkpeft.peft.spectral_lora import SpectralLoRALinear
from spkpeft.upstream import S3prlUpstream as Upstream, load_upstream
from spkpeft.upstream.s3prl import random_arch

TINY = ["tiny_wavlm", "tiny_wav2vec2", "tiny_hubert"]
ATOL = 1e-5

#: one config per method variant (small sizes: tiny models, 2 CPU cores)
METHODS = {
    "frozen": FrozenConfig(),
    "full_ft": FullFinetuneConfig(freeze_cnn=True),
    "full_ft_cnn": FullFinetuneConfig(freeze_cnn=False),
    "lora_qv": LoRAConfig(rank=4, alpha=8.0, dropout=0.1),
    "lora_all": LoRAConfig(rank=2, alpha=4.0, dropout=0.0, targets=["attn", "ffn"], layers=[0, -1]),
    "spectral_lora": SpectralLoRAConfig(top_r=8, rank=2, targets=["q", "v", "out", "fc1", "fc2"]),
    "houlsby": AdapterConfig(style="houlsby", placement="sequential", bottleneck=8),
    "houlsby_parallel": AdapterConfig(style="houlsby", placement="parallel", bottleneck=8, scale=2.0),
    "pfeiffer": AdapterConfig(style="pfeiffer", bottleneck=8, activation="relu"),
    "pfeiffer_conformer": AdapterConfig(style="pfeiffer", placement="parallel", adapter_type="conformer", bottleneck=8, kernel_size=5),
    "sv_adapter": SVAdapterConfig(bottleneck=8, embed_bottleneck=8),
    "sv_adapter_conformer": SVAdapterConfig(bottleneck=8, embed_bottleneck=8, adapter_type="conformer", layers="all"),
    "prompt_deep": PromptConfig(num_tokens=3, deep=True),
    "prompt_shallow": PromptConfig(num_tokens=3, deep=False),
    "prompt_gated": PromptConfig(num_tokens=3, deep=True, attention="gated", init="normal"),
    "prefix": PrefixConfig(length=3, mlp_hidden=16),
    "prefix_direct": PrefixConfig(length=3, reparametrize=False, init_std=0.5),
    "prefix_gated": PrefixConfig(length=3, attention="gated", reparametrize=False),
    "bitfit": BitFitConfig(),
}
MERGEABLE = ["lora_qv", "lora_all", "spectral_lora", "prefix"]
#: the published prompt / prefix tuning (joint softmax) change the model from the start
NOT_IDENTITY_AT_INIT = ("prompt_deep", "prompt_shallow", "prefix", "prefix_direct")

#: parameters with provably no effect on the output: a key bias shifts every logit of a
#: query by the same amount, which softmax ignores, so its gradient is 0 up to rounding
FUNCTION_INVARIANT = ("self_attn.k_proj.bias",)

#: tensors whose gradient is exactly 0 at initialisation because the factor or gate they
#: feed into starts at zero (LoRA A / B=0, Spectral-LoRA A_* / B_*=0, adapter down path and
#: convolution / up=0, gated prompt tokens and prefixes / gate=0)
ZERO_INIT_PARTNERS = ("lora_A", ".A_u", ".A_v", ".down.", ".conv.", "prompts.prompt", "prefixes.prefix")


pytestmark = pytest.mark.usefixtures("isolated_model_cache")


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return torch.randn(2, 6400, generator=gen), torch.tensor([6400, 4000])


@pytest.fixture(scope="module")
def bare_outputs() -> dict:
    """Hidden states of each bare tiny upstream (eval mode) on :func:`batch`."""
    wavs, lens = batch()
    outputs = {}
    for arch in TINY:
        with torch.no_grad():
            outputs[arch] = load_upstream(f"random:{arch}").eval()(wavs, lens)
    return outputs


def upstream_with(arch: str, method: str) -> tuple[Upstream, object]:
    up = load_upstream(f"random:{arch}")
    return up, apply_peft(up, copy.deepcopy(METHODS[method]))


def run(up: Upstream) -> tuple[list[torch.Tensor], torch.Tensor]:
    wavs, lens = batch()
    return up(wavs, lens)


def assert_same_outputs(a, b, atol=ATOL):
    (ha, la), (hb, lb) = a, b
    assert torch.equal(la, lb)
    assert len(ha) == len(hb)
    for x, y in zip(ha, hb):
        assert x.shape == y.shape
        torch.testing.assert_close(x, y, atol=atol, rtol=0)


def loss_of(hidden: list[torch.Tensor]) -> torch.Tensor:
    """A generic loss touching every hidden state and channel."""
    gen = torch.Generator().manual_seed(1)
    return sum((h * torch.randn(h.shape[-1], generator=gen)).mean() + h.pow(2).mean() for h in hidden)


def perturb_(params) -> None:
    """Move every given parameter away from its (possibly zero) initial value."""
    gen = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for p in params:
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)


# ---------------------------------------------------------------------------- every method


@pytest.mark.parametrize("arch", TINY)
@pytest.mark.parametrize("method", list(METHODS))
def test_identity_then_training_steps(arch, method, bare_outputs):
    """Init output == bare upstream; then one step moves the zero-initialised factors off 0,
    and from there every trainable tensor gets a non-zero gradient and changes at each step,
    while every frozen tensor stays bit-identical.

    (With a zero-initialised factor, the gradient of its partner is exactly 0 at the first
    step, e.g. dL/dA = B^T (...) = 0 in LoRA; so "every tensor changes" is checked on the
    second step.  The first step must already reach every trainable tensor's graph.)
    """
    up, handle = upstream_with(arch, method)
    with torch.no_grad():
        if method in NOT_IDENTITY_AT_INIT:
            hidden, lengths = run(up.eval())
            assert torch.equal(lengths, bare_outputs[arch][1])
            assert (hidden[-1] - bare_outputs[arch][0][-1]).abs().max() > 1e-3
        else:
            assert_same_outputs(run(up.eval()), bare_outputs[arch])

    up.train()
    trainable = dict(handle.named_trainable_parameters())
    initial = {name: p.detach().clone() for name, p in up.named_parameters()}
    if not trainable:
        assert method == "frozen"
        return
    optimizer = torch.optim.Adam(trainable.values(), lr=1e-3)
    for step in range(2):
        optimizer.zero_grad(set_to_none=True)
        loss_of(run(up)[0]).backward()
        for name, p in up.named_parameters():
            if p.requires_grad:
                assert p.grad is not None, f"{name}: not connected to the output"
                nonzero = bool(p.grad.abs().sum() > 0)
                if step == 0 and not nonzero:
                    assert method not in NOT_IDENTITY_AT_INIT, f"{name}: zero gradient at init"
                    assert any(k in name for k in ZERO_INIT_PARTNERS + FUNCTION_INVARIANT), f"{name}: zero gradient at init"
                if step == 1 and not name.endswith(FUNCTION_INVARIANT):
                    assert nonzero, f"{name}: zero gradient"
            else:
                assert p.grad is None, f"{name}: frozen but got a gradient"
        optimizer.step()
        for name, p in up.named_parameters():
            if not p.requires_grad:
                assert torch.equal(p, initial[name]), f"{name}: frozen tensor changed"
    for name, p in trainable.items():
        if not name.endswith(FUNCTION_INVARIANT):
            assert not torch.equal(p.detach(), initial[name]), f"{name}: did not change"


@pytest.mark.parametrize("method", list(METHODS))
def test_the_modules_of_a_method_say_whether_it_merges(method):
    """The one record of mergeability is the modules a method adds (Mergeable): LoRA and
    Spectral-LoRA wrappers, prefix modules (with or without a reparametrisation to fold)."""
    up, handle = upstream_with("tiny_wavlm", method)
    merges = method in MERGEABLE or method.startswith("prefix")
    assert handle.mergeable == merges == (merge_peft(up) > 0)


@pytest.mark.parametrize("arch", TINY)
@pytest.mark.parametrize("method", MERGEABLE)
def test_merged_equals_unmerged(arch, method):
    up, handle = upstream_with(arch, method)
    perturb_(p for _, p in handle.named_trainable_parameters())
    up.eval()
    before = {n: p.detach().clone() for n, p in up.named_parameters() if not p.requires_grad}
    with torch.no_grad():
        unmerged = run(up)
        merged_count = merge_peft(up)
        assert merged_count > 0
        merged = run(up)
        assert_same_outputs(merged, unmerged)
        assert unmerge_peft(up) == merged_count
        assert_same_outputs(run(up), unmerged)
    for name, p in up.named_parameters():
        if name in before:
            torch.testing.assert_close(p, before[name], atol=1e-6, rtol=0)


@pytest.mark.parametrize("method", ["lora_all", "spectral_lora"])
def test_merge_and_unload_gives_plain_linears(method):
    up, handle = upstream_with("tiny_wav2vec2", method)
    perturb_(p for _, p in handle.named_trainable_parameters())
    with torch.no_grad():
        unmerged = run(up.eval())
        merge_peft(up, unload=True)
        assert not any(isinstance(m, (LoRALinear, SpectralLoRALinear)) for m in up.modules())
        assert all(type(up.layers[i].self_attn.q_proj) is nn.Linear for i in range(up.num_layers))
        assert up.num_base_params() == sum(p.numel() for p in up.parameters())
        assert_same_outputs(run(up), unmerged)


def test_merge_is_a_no_op_for_other_methods():
    up, _ = upstream_with("tiny_wavlm", "houlsby")
    assert merge_peft(up) == 0 and unmerge_peft(up) == 0


def test_apply_twice_and_bad_layers_are_rejected():
    up, _ = upstream_with("tiny_wavlm", "lora_qv")
    with pytest.raises(SpkpeftError, match="already applied"):
        apply_peft(up, LoRAConfig())
    with pytest.raises(SpkpeftError, match="block index 7 is out of range"):
        apply_peft(load_upstream("random:tiny_wavlm"), LoRAConfig(layers=[7]))


def test_select_layers():
    assert select_layers(None, 12) == list(range(12))
    assert select_layers("intermediate", 12) == list(range(3, 9))
    assert select_layers("intermediate", 2) == [0, 1]
    assert select_layers([0, -1, 0], 4) == [0, 3]


# ---------------------------------------------------------------------------- LoRA


def test_lora_matches_huggingface_peft():
    """Same module, same A/B (B non-zero): identical outputs, gradients and merged weights."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    base = nn.Sequential(OrderedDict(proj=nn.Linear(32, 24)))
    hf_model = get_peft_model(copy.deepcopy(base), LoraConfig(r=4, lora_alpha=8, lora_dropout=0.1, target_modules=["proj"]))
    ours = LoRALinear(copy.deepcopy(base.proj), rank=4, alpha=8.0, dropout=0.1)
    hf_layer = hf_model.base_model.model.proj
    a, b = torch.randn(4, 32), torch.randn(24, 4)
    with torch.no_grad():
        hf_layer.lora_A["default"].weight.copy_(a)
        hf_layer.lora_B["default"].weight.copy_(b)
        ours.lora_A.copy_(a)
        ours.lora_B.copy_(b)
    hf_model.eval()
    ours.eval()
    x = torch.randn(3, 5, 32)
    y_hf, y_ours = hf_model(x), ours(x)
    torch.testing.assert_close(y_ours, y_hf, atol=1e-6, rtol=1e-6)
    y_hf.pow(2).sum().backward()
    y_ours.pow(2).sum().backward()
    torch.testing.assert_close(ours.lora_A.grad, hf_layer.lora_A["default"].weight.grad, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours.lora_B.grad, hf_layer.lora_B["default"].weight.grad, atol=1e-5, rtol=1e-5)
    ours.merge()
    merged = hf_model.merge_and_unload()
    torch.testing.assert_close(ours.base.weight, merged.proj.weight, atol=1e-6, rtol=1e-6)


def test_lora_closed_form_count_wav2vec2_large():
    """LoRA r=16 on q, v of random:wav2vec2_large: 24 x 2 x 2 x 1024 x 16 = 1,572,864 (~200x fewer)."""
    with torch.device("meta"):
        model = random_arch.build_model(random_arch.get_arch("wav2vec2_large"))
        up = Upstream(model, "random:wav2vec2_large", normalize_input=True)
        handle = apply_peft(up, LoRAConfig())
    assert handle.num_trainable() == 24 * 2 * 2 * 1024 * 16 == 1_572_864
    assert 195 < up.num_base_params() / handle.num_trainable() < 205


def _closed_form(method: str, layers: int, dim: int, ffn: int, heads: int) -> int:
    """Trainable upstream parameters of METHODS[method] on a model of the given shape."""
    adapter = lambda b: 2 * dim * b + b + dim  # noqa: E731  down (D*b + b) + up (b*D + D)
    conv = lambda b, k: adapter(b) + b * k + b  # noqa: E731  + depthwise conv
    if method == "lora_qv":
        return layers * 2 * 4 * (dim + dim)
    if method == "lora_all":
        return 2 * 2 * (4 * 2 * dim + 2 * (dim + ffn))
    if method == "spectral_lora":
        k, r = 2, 8
        shapes = [(dim, dim)] * 3 + [(ffn, dim), (dim, ffn)]
        return layers * sum(k * (m + n) + 2 * k * r for m, n in shapes)
    if method in ("houlsby", "houlsby_parallel"):
        return layers * 2 * adapter(8)
    if method == "pfeiffer":
        return layers * adapter(8)
    if method == "pfeiffer_conformer":
        return layers * conv(8, 5)
    if method == "sv_adapter":
        inner = len(select_layers("intermediate", layers))
        return inner * adapter(8) + (layers + 1) * adapter(8)
    if method == "prompt_deep":
        return layers * 3 * dim
    if method == "prompt_shallow":
        return 3 * dim
    if method == "prompt_gated":
        return layers * 3 * dim + layers * heads
    if method == "prefix":  # E (P x D) + Linear(D, 16) + Linear(16, L 2 D)
        return 3 * dim + (dim * 16 + 16) + (16 * layers * 2 * dim + layers * 2 * dim)
    if method == "prefix_direct":
        return layers * 2 * 3 * dim
    if method == "prefix_gated":
        return layers * (2 * 3 * dim + heads)
    raise KeyError(method)


@pytest.mark.parametrize(
    "method",
    ["lora_qv", "lora_all", "spectral_lora", "houlsby", "houlsby_parallel", "pfeiffer", "pfeiffer_conformer", "sv_adapter",
     "prompt_deep", "prompt_shallow", "prompt_gated", "prefix", "prefix_direct", "prefix_gated"],
)
def test_parameter_counts_match_closed_form(method):
    up, handle = upstream_with("tiny_hubert", method)  # 4 blocks, 256 dims, FFN 512, 4 heads
    assert handle.num_trainable() == _closed_form(method, 4, 256, 512, 4)
    assert up.num_base_params() == load_upstream("random:tiny_hubert").num_base_params()


def test_bitfit_trains_biases_only():
    up, handle = upstream_with("tiny_wav2vec2", "bitfit")
    names = [n for n, _ in handle.named_trainable_parameters()]
    assert names and all(n.endswith("bias") for n in names)
    assert not any(n.startswith("model.feature_extractor.") for n in names)
    biases = [p for n, p in up.model.named_parameters() if n.endswith("bias") and not n.startswith("feature_extractor.")]
    assert handle.num_trainable() == sum(p.numel() for p in biases)


def test_full_ft_freezes_only_the_cnn():
    up, handle = upstream_with("tiny_hubert", "full_ft")
    cnn = sum(p.numel() for p in up.model.feature_extractor.parameters())
    assert handle.num_trainable() == up.num_base_params() - cnn


def test_lora_on_truncated_upstream_counts_kept_layers_only():
    up = load_upstream("random:tiny_hubert", num_layers=2)
    assert apply_peft(up, LoRAConfig(rank=4)).num_trainable() == 2 * 2 * 4 * (256 + 256)


# ---------------------------------------------------------------------------- Spectral-LoRA


def factor_gradients_ok(module: SpectralLoRALinear) -> None:
    """Assert that A_u, B_u, A_v and B_v all received a non-zero gradient."""
    for name in ("A_u", "B_u", "A_v", "B_v"):
        grad = getattr(module, name).grad
        assert grad is not None and grad.abs().sum() > 0, f"{name} received no gradient"


class RewrappedSpectralLoRA(SpectralLoRALinear):
    """The public reference code's mistake: the rebuilt weight re-wrapped in nn.Parameter."""

    def forward(self, x):
        u_new, v_new = self.adapted_factors()
        weight = self.base.weight - (self.U * self.S) @ self.V.t() + (u_new * self.S) @ v_new.t()
        return F.linear(x, nn.Parameter(weight), self.base.bias)  # detached: factors never train


def _spectral_pair():
    torch.manual_seed(0)
    base = nn.Linear(48, 32)  # non-square: m=32 out, n=48 in
    good = SpectralLoRALinear(copy.deepcopy(base), top_r=6, rank=3)
    broken = RewrappedSpectralLoRA(copy.deepcopy(base), top_r=6, rank=3)
    broken.load_state_dict(good.state_dict())
    return base, good, broken


def test_spectral_lora_starts_exactly_from_w_and_is_the_truncated_svd():
    base, good, _ = _spectral_pair()
    x = torch.randn(7, 48)
    assert torch.equal(good(x), base(x))  # bit-exact at initialisation
    u, s, vh = torch.linalg.svd(base.weight.detach().double(), full_matrices=False)
    top = (u[:, :6] * s[:6]) @ vh[:6]
    torch.testing.assert_close(((good.U * good.S) @ good.V.t()).double(), top, atol=1e-5, rtol=0)
    assert good.U.shape == (32, 6) and good.V.shape == (48, 6)
    assert {n for n, p in good.named_parameters()} == {"base.weight", "base.bias", "A_u", "B_u", "A_v", "B_v"}


def test_spectral_lora_gradients_reach_the_factors_and_catch_rewrapping():
    _, good, broken = _spectral_pair()
    for module in (good, broken):
        module.base.requires_grad_(False)
        perturb_([module.B_u, module.B_v])  # as after a first step (B_* start at zero)
    x = torch.randn(7, 48)
    good(x).pow(2).sum().backward()
    factor_gradients_ok(good)
    out = broken(x)
    torch.testing.assert_close(out, good(x), atol=1e-5, rtol=0)  # same function...
    if out.requires_grad:
        out.pow(2).sum().backward()
    with pytest.raises(AssertionError, match="received no gradient"):
        factor_gradients_ok(broken)  # ...but nothing trains: the check catches it


def test_spectral_lora_rejects_bad_rank():
    with pytest.raises(SpkpeftError, match=r"top_r must be in \[1, 8\]"):
        SpectralLoRALinear(nn.Linear(8, 16), top_r=9, rank=2)


# ---------------------------------------------------------------------------- prompts / prefix


@pytest.mark.parametrize("arch", ["tiny_wavlm", "tiny_wav2vec2"])
@pytest.mark.parametrize("method", ["prompt_gated", "prefix_gated"])
def test_open_gates_change_outputs_but_not_shapes(arch, method, bare_outputs):
    """Gated prompts/prefixes act once their gates open; prompt rows never appear in the outputs."""
    up, handle = upstream_with(arch, method)
    with torch.no_grad():
        for name, p in handle.named_trainable_parameters():
            if "gate" in name:
                p.fill_(1.0)
        hidden, lengths = run(up.eval())
    ref_hidden, ref_lengths = bare_outputs[arch]
    assert torch.equal(lengths, ref_lengths)
    assert [h.shape for h in hidden] == [h.shape for h in ref_hidden]
    torch.testing.assert_close(hidden[0], ref_hidden[0])  # CNN output untouched
    assert (hidden[-1] - ref_hidden[-1]).abs().max() > 1e-3
    assert all(torch.isfinite(h).all() for h in hidden)


def test_prompts_do_not_disturb_wavlm_relative_positions():
    """With prompt tokens prepended, frames still see the bias of their true relative
    distances: a prompt whose keys are ignored (gate 0) but which occupies positions leaves
    WavLM's output unchanged even for huge prompt values."""
    up, handle = upstream_with("tiny_wavlm", "prompt_gated")
    with torch.no_grad():
        up.prompts.prompt.mul_(1e4)
        hidden, _ = run(up.eval())
        bare = load_upstream("random:tiny_wavlm").eval()
        ref, _ = run(bare)
    for a, b in zip(hidden, ref):
        torch.testing.assert_close(a, b, atol=ATOL, rtol=0)


# ---------------------------------------------------------------------------- aggregation


def test_weighted_sum_starts_uniform():
    agg = WeightedSum(3)
    hidden = [torch.full((2, 4, 5), float(i)) for i in range(3)]
    torch.testing.assert_close(agg(hidden, torch.tensor([4, 2])), torch.full((2, 4, 5), 1.0))


def test_attentive_merge_weights_are_convex_and_ignore_padding():
    torch.manual_seed(0)
    agg = build_aggregation(AttentiveMergeConfig(merge="channel_sum", attention_dim=8), 3, 6)
    assert isinstance(agg, AttentiveMerge)
    hidden = [torch.randn(2, 5, 6) for _ in range(3)]
    lengths = torch.tensor([5, 3])
    alpha = agg.layer_weights(hidden, lengths)
    assert alpha.shape == (3, 2, 6)
    torch.testing.assert_close(alpha.sum(0), torch.ones(2, 6))
    out = agg(hidden, lengths)
    assert out.shape == (2, 5, 6)
    padded = [h.clone() for h in hidden]
    for h in padded:
        h[1, 3:] = 100.0  # garbage beyond the length of utterance 1
    torch.testing.assert_close(agg(padded, lengths)[1, :3], out[1, :3])
    assert math.isclose(sum(p.numel() for p in agg.parameters()), 2 * 6 + (6 * 8 + 8) + (8 * 6 + 6) + 3 * 6)
