"""Spectral-LoRA (spkpeft.peft.spectral_lora): the reference code's defaults and init, exact
identity at initialisation, exact merging, gradients, shapes, and bf16 accuracy of the
low-rank update against LoRA's."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from spkpeft.tasks.config import load_config
from spkpeft.peft import SpectralLoRAConfig, apply_peft, merge_peft, unmerge_peft
from spkpeft.peft.lora import LoRALinear
from spkpeft.peft.spectral_lora import SpectralLoRALinear
from spkpeft.upstream import load_upstream

CONF = Path(__file__).resolve().parents[1] / "conf"
FACTORS = ("A_u", "B_u", "A_v", "B_v")

pytestmark = pytest.mark.usefixtures("isolated_model_cache")


def rms(t: torch.Tensor) -> float:
    return t.double().pow(2).mean().sqrt().item()


def make(out_dim=32, in_dim=48, top_r=6, rank=3, seed=0) -> tuple[nn.Linear, SpectralLoRALinear]:
    torch.manual_seed(seed)
    base = nn.Linear(in_dim, out_dim)
    return base, SpectralLoRALinear(copy.deepcopy(base), top_r=top_r, rank=rank)


def randomise_(module: SpectralLoRALinear, scale: float = 0.05, seed: int = 3) -> None:
    """Non-zero B factors (as after some training)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in (module.B_u, module.B_v):
            p.copy_(torch.randn(p.shape, generator=gen) * scale)


# ---------------------------------------------------------------------------- defaults and init


def test_defaults_are_the_reference_codes():
    cfg = SpectralLoRAConfig()
    assert (cfg.targets, cfg.top_r, cfg.rank, cfg.layers) == (["q", "k"], 256, 16, None)
    peft = load_config(CONF / "spectral_lora.yaml").peft
    assert isinstance(peft, SpectralLoRAConfig)
    assert (peft.targets, peft.top_r, peft.rank, peft.layers) == (["q", "k"], 256, 16, "all")


def test_init_is_kaiming_uniform_with_fan_in_rank_and_zero_b():
    """A_u (m x k) and A_v (r x k): U(-sqrt(6/k), sqrt(6/k)); B_u, B_v: zeros."""
    _, module = make(out_dim=512, in_dim=384, top_r=256, rank=16)
    bound = math.sqrt(6.0 / 16)
    assert module.A_u.shape == (512, 16) and module.B_u.shape == (16, 256)
    assert module.A_v.shape == (256, 16) and module.B_v.shape == (16, 384)
    for a in (module.A_u, module.A_v):
        a = a.detach()
        assert a.abs().max() <= bound
        assert a.abs().max() > 0.95 * bound  # uses the whole range (4096+ samples)
        assert abs(a.std().item() - bound / math.sqrt(3)) < 0.05 * bound  # uniform: std = bound / sqrt(3)
        assert abs(a.mean().item()) < 0.05 * bound
    assert torch.count_nonzero(module.B_u) == 0 and torch.count_nonzero(module.B_v) == 0


def test_trainable_count_at_defaults_for_768():
    _, module = make(out_dim=768, in_dim=768, top_r=256, rank=16)
    trainable = sum(getattr(module, n).numel() for n in FACTORS)
    assert trainable == 16 * (768 + 768) + 2 * 16 * 256 == 32_768


def test_defaults_apply_to_q_and_k_of_a_tiny_upstream():
    up = load_upstream("random:tiny_wavlm")  # 256-dim blocks: top_r = 256 is full rank here
    handle = apply_peft(up, SpectralLoRAConfig())
    wrapped = {n.rsplit(".", 1)[-1] for n, m in up.named_modules() if isinstance(m, SpectralLoRALinear)}
    assert wrapped == {"q_proj", "k_proj"}
    assert sum(isinstance(m, SpectralLoRALinear) for m in up.modules()) == 2 * up.num_layers
    assert handle.num_trainable() == 2 * up.num_layers * (16 * (256 + 256) + 2 * 16 * 256)


# ---------------------------------------------------------------------------- function


def test_identity_at_init_is_bit_exact():
    base, module = make()
    x = torch.randn(5, 7, 48)
    assert torch.equal(module(x), base(x))
    assert torch.count_nonzero(module.delta(x)) == 0


def test_identity_at_init_on_an_upstream():
    """Bit-exact against the same upstream with LoRA (q, k) at init, which takes the same
    module-call attention path (the bare upstream's fused path differs by rounding only)."""
    from spkpeft.peft import LoRAConfig

    wavs = torch.randn(2, 4000, generator=torch.Generator().manual_seed(0))
    lens = torch.tensor([4000, 3000])
    outputs = {}
    with torch.no_grad():
        for name, cfg in [("bare", None), ("lora", LoRAConfig(dropout=0.0, targets=["q", "k"])), ("spectral", SpectralLoRAConfig())]:
            up = load_upstream("random:tiny_wavlm")
            if cfg is not None:
                apply_peft(up, cfg)
            outputs[name] = up.eval()(wavs, lens)[0]
    assert all(torch.equal(a, b) for a, b in zip(outputs["spectral"], outputs["lora"]))
    for a, b in zip(outputs["spectral"], outputs["bare"]):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_forward_is_w_with_the_top_singular_vectors_replaced():
    """y = (W - U_r S_r V_r^T) x + U_r' S_r V_r'^T x + b, against a float64 rebuild."""
    base, module = make()
    randomise_(module)
    u_new, v_new = (t.double() for t in module.adapted_factors())
    u, s, v = module.U.double(), module.S.double(), module.V.double()
    weight = base.weight.double() - (u * s) @ v.t() + (u_new * s) @ v_new.t()
    x = torch.randn(9, 48)
    expected = x.double() @ weight.t() + base.bias.double()
    torch.testing.assert_close(module(x).double(), expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(module.delta_weight().double(), weight - base.weight.double(), atol=1e-6, rtol=0)


def test_merge_is_exact_and_unmerge_restores_the_weight():
    base, module = make()
    randomise_(module)
    x = torch.randn(11, 48)
    with torch.no_grad():
        unmerged = module(x)
        module.merge()
        assert module.merged
        torch.testing.assert_close(module(x), unmerged, atol=1e-5, rtol=0)
        torch.testing.assert_close(module.base.weight, base.weight + module.delta_weight(), atol=1e-6, rtol=0)
        module.unmerge()
    assert not module.merged
    torch.testing.assert_close(module.base.weight, base.weight, atol=1e-6, rtol=0)
    torch.testing.assert_close(module(x), unmerged, atol=1e-6, rtol=0)


def test_merge_on_an_upstream_matches_unmerged_outputs():
    up = load_upstream("random:tiny_wavlm").eval()
    apply_peft(up, SpectralLoRAConfig())
    wrappers = [m for m in up.modules() if isinstance(m, SpectralLoRALinear)]
    for module in wrappers:
        randomise_(module, scale=0.02)
    wavs = torch.randn(1, 4000, generator=torch.Generator().manual_seed(1))
    lens = torch.tensor([4000])
    with torch.no_grad():
        unmerged, _ = up.eval()(wavs, lens)
        assert merge_peft(up) == len(wrappers) == 2 * up.num_layers
        merged, _ = up(wavs, lens)
        assert unmerge_peft(up) == len(wrappers)
    for a, b in zip(merged, unmerged):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=0)


def test_gradients_reach_all_four_factors():
    _, module = make()
    module.base.requires_grad_(False)
    x = torch.randn(7, 48)
    # at init only the zero factors (B_*) get a gradient: their partners (A_*) are random
    module(x).pow(2).sum().backward()
    assert module.B_u.grad.abs().sum() > 0 and module.B_v.grad.abs().sum() > 0
    assert torch.count_nonzero(module.A_u.grad) == 0 and torch.count_nonzero(module.A_v.grad) == 0
    module.zero_grad()
    randomise_(module)  # as after a first step
    module(x).pow(2).sum().backward()
    for name in FACTORS:
        grad = getattr(module, name).grad
        assert grad is not None and grad.abs().sum() > 0, f"{name} received no gradient"
    assert module.base.weight.grad is None and module.U.grad is None and module.S.grad is None


@pytest.mark.parametrize("shape", [(32, 48), (48, 32)])
def test_non_square_weights(shape):
    out_dim, in_dim = shape
    base, module = make(out_dim=out_dim, in_dim=in_dim, top_r=min(shape), rank=4)
    assert module.U.shape == (out_dim, min(shape)) and module.V.shape == (in_dim, min(shape))
    randomise_(module)
    x = torch.randn(3, 5, in_dim)
    y = module(x)
    assert y.shape == (3, 5, out_dim)
    torch.testing.assert_close(y, base(x) + module.delta(x), atol=0, rtol=0)
    torch.testing.assert_close(module.delta(x), x @ module.delta_weight().t(), atol=1e-5, rtol=0)


def test_meta_device_weights_count_without_an_svd():
    with torch.device("meta"):
        module = SpectralLoRALinear(nn.Linear(768, 768), top_r=256, rank=16)
    assert module.U.is_meta and module.A_u.is_meta
    assert sum(getattr(module, n).numel() for n in FACTORS) == 32_768


def test_top_r_larger_than_the_weight_is_a_clear_error():
    from spkpeft.errors import SpkpeftError

    with pytest.raises(SpkpeftError, match=r"top_r must be in \[1, 48\] for a 48x64 weight, got 256"):
        SpectralLoRALinear(nn.Linear(64, 48), top_r=256, rank=16)


# ---------------------------------------------------------------------------- bf16 accuracy


def test_bf16_update_error_within_twice_loras():
    """At ~equal size (768x768: Spectral-LoRA r=256, k=16: 32,768 parameters; LoRA rank 21:
    32,256) and equal update rms, the bf16 update's rms relative error (against float64 on the
    same bf16 values) is at most 2x LoRA's.  The update is computed in low rank; the difference
    of two full top-r products (the earlier formula) is also measured, and is far worse."""
    torch.manual_seed(0)
    dim = 768
    base = nn.Linear(dim, dim)
    spectral = SpectralLoRALinear(copy.deepcopy(base), top_r=256, rank=16)
    lora = LoRALinear(copy.deepcopy(base), rank=21, alpha=42.0)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(256, dim, generator=gen)
    with torch.no_grad():
        for p in (spectral.B_u, spectral.B_v):
            p.copy_(torch.randn(p.shape, generator=gen) * 1e-3)
        lora.lora_B.copy_(torch.randn(lora.lora_B.shape, generator=gen))
        lora_update = lambda m, inp: (inp @ m.lora_A.t() @ m.lora_B.t()) * m.scaling  # noqa: E731
        # same update rms for both
        lora.lora_B.mul_(rms(copy.deepcopy(spectral).double().delta(x.double())) / rms(lora_update(lora.double(), x.double())))
        lora.float()

        sp16, lo16, x16 = spectral.to(torch.bfloat16), lora.to(torch.bfloat16), x.to(torch.bfloat16)
        sp64, lo64, x64 = copy.deepcopy(sp16).double(), copy.deepcopy(lo16).double(), x16.double()
        ref_sp, ref_lo = sp64.delta(x64), lora_update(lo64, x64)
        assert 0.5 < rms(ref_sp) / rms(ref_lo) < 2.0
        assert 0.01 < rms(ref_sp) / rms(base(x)) < 0.2  # a plausible update size

        err_sp = rms(sp16.delta(x16).double() - ref_sp) / rms(ref_sp)
        err_lo = rms(lora_update(lo16, x16).double() - ref_lo) / rms(ref_lo)
        u_new, v_new = sp16.adapted_factors()
        old = ((x16 @ v_new) * sp16.S) @ u_new.t() - ((x16 @ sp16.V) * sp16.S) @ sp16.U.t()
        err_old = rms(old.double() - ref_sp) / rms(ref_sp)
    print(f"bf16 rms relative error: spectral {err_sp:.4g}, LoRA {err_lo:.4g}, difference of projections {err_old:.4g}")
    assert err_sp <= 2 * err_lo
    assert err_old > 5 * err_sp
