"""Prompt and prefix tuning as published (joint softmax), their gated variants, and the
upstream's train/eval mode per method."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from spkpeft.peft import FrozenConfig, FullFinetuneConfig, PrefixConfig, PromptConfig, apply_peft, merge_peft, unmerge_peft
from spkpeft.peft.prompts import hidden_scale_prompts
from spkpeft.upstream import load_upstream
from spkpeft.upstream.s3prl.attention import ExtraKV, gated_position_bias, self_attention

pytestmark = pytest.mark.usefixtures("isolated_model_cache")

PRE_LN, POST_LN = "tiny_wav2vec2", "tiny_wavlm"


def waves(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(2, 6400, generator=gen), torch.tensor([6400, 4200])


def reference_attention(attn, x, frame_mask, frame_bias, extra_keys=None, extra_values=None, num_prompts=0):
    """Plain multi-head attention, one softmax over ``[extra keys; prompt keys; frame keys]``.

    ``x``: time-first ``(P + T, B, C)`` (prompts first); ``frame_mask`` ``(B, T)`` True at padding;
    ``frame_bias`` ``(B|1, H, T, T)`` between frames or None; ``extra_*`` ``(H, E, d)`` prefixes.
    """
    seq, batch, dim = x.shape
    heads = attn.num_heads
    d = dim // heads

    def proj(linear, scale=1.0):
        y = F.linear(x, linear.weight, linear.bias) * scale  # (S, B, C)
        return y.view(seq, batch, heads, d).permute(1, 2, 0, 3)  # (B, H, S, d)

    q, k, v = proj(attn.q_proj, d ** -0.5), proj(attn.k_proj), proj(attn.v_proj)
    extra = 0
    if extra_keys is not None:
        extra = extra_keys.shape[1]
        k = torch.cat([extra_keys.unsqueeze(0).expand(batch, -1, -1, -1), k], dim=2)
        v = torch.cat([extra_values.unsqueeze(0).expand(batch, -1, -1, -1), v], dim=2)
    bias = torch.zeros(batch, heads, seq, extra + seq)
    start = extra + num_prompts
    if frame_bias is not None:
        bias[:, :, num_prompts:, start:] = frame_bias
    bias[:, :, :, start:] = bias[:, :, :, start:].masked_fill(frame_mask[:, None, None, :], float("-inf"))
    probs = torch.softmax(q @ k.transpose(-1, -2) + bias, dim=-1)
    out = (probs @ v).permute(2, 0, 1, 3).reshape(seq, batch, dim)
    return F.linear(out, attn.out_proj.weight, attn.out_proj.bias)


def frame_inputs(up, seed: int = 0):
    """Time-first block-0 attention input ``(T, B, C)``, frame padding mask ``(B, T)`` and
    the frames' position bias (WavLM) for two padded utterances."""
    gen = torch.Generator().manual_seed(seed)
    frames, batch = 9, 2
    x = torch.randn(frames, batch, up.hidden_dim, generator=gen)
    mask = torch.zeros(batch, frames, dtype=torch.bool)
    mask[1, 6:] = True
    attn = up.layers[0].self_attn
    bias = None
    if getattr(attn, "has_relative_attention_bias", False):
        bias = gated_position_bias(attn, x, attn.compute_bias(frames, frames))
    return attn, x, mask, bias


@pytest.mark.parametrize("arch", [PRE_LN, POST_LN])
def test_joint_prompts_match_plain_attention_with_extra_tokens(arch):
    up = load_upstream(f"random:{arch}").eval()
    attn, x, mask, bias = frame_inputs(up)
    prompts = torch.randn(4, 1, up.hidden_dim).expand(-1, x.shape[1], -1)
    full = torch.cat([prompts, x], dim=0)
    with torch.no_grad():
        ours, _ = self_attention(attn, full, mask, None, num_prompts=4, prompt_gate=None)
        ref = reference_attention(attn, full, mask, bias, num_prompts=4)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("arch", [PRE_LN, POST_LN])
def test_joint_prefixes_match_plain_attention_with_extra_keys(arch):
    up = load_upstream(f"random:{arch}").eval()
    attn, x, mask, bias = frame_inputs(up, seed=1)
    heads, d = up.num_heads, up.hidden_dim // up.num_heads
    keys, values = torch.randn(heads, 5, d), torch.randn(heads, 5, d)
    with torch.no_grad():
        ours, _ = self_attention(attn, x, mask, None, extra=[ExtraKV(keys.unsqueeze(0), values.unsqueeze(0))])
        ref = reference_attention(attn, x, mask, bias, keys, values)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)


def test_prefix_module_feeds_its_keys_to_the_right_blocks():
    """The whole upstream with a direct prefix on block 1 equals a forward where block 1's
    attention gets those keys/values (checked through the attention reference above)."""
    up = load_upstream(f"random:{POST_LN}").eval()
    apply_peft(up, PrefixConfig(length=2, reparametrize=False, init_std=1.0, layers=[1]))
    bare = load_upstream(f"random:{POST_LN}").eval()
    wavs, lens = waves()
    with torch.no_grad():
        hidden, _ = up(wavs, lens)
        ref, _ = bare(wavs, lens)
    torch.testing.assert_close(hidden[1], ref[1], atol=1e-5, rtol=0)  # block 0 untouched
    assert (hidden[2] - ref[2]).abs().max() > 1e-2  # block 1 attends to the prefix
    assert list(up.prefixes.key_values()) == [1]


def relative_move(arch: str, cfg, steps: int = 3) -> float:
    """``|h_after - h_before| / |h_before|`` of the last hidden state after ``steps`` AdamW
    steps (lr 1e-3) on a fixed linear loss."""
    torch.manual_seed(0)
    up = load_upstream(f"random:{arch}")
    handle = apply_peft(up, cfg)
    wavs, lens = waves()
    with torch.no_grad():
        before = up.eval()(wavs, lens)[0][-1]
    optimizer = torch.optim.AdamW([p for _, p in handle.named_trainable_parameters()], lr=1e-3)
    target = torch.randn(before.shape[-1], generator=torch.Generator().manual_seed(3))
    up.train()
    for _ in range(steps):
        optimizer.zero_grad()
        (up(wavs, lens)[0][-1] * target).mean().backward()
        optimizer.step()
    with torch.no_grad():
        after = up.eval()(wavs, lens)[0][-1]
    return ((after - before).norm() / before.norm()).item()


@pytest.mark.parametrize("arch", [PRE_LN, POST_LN])
@pytest.mark.parametrize(
    "cfg",
    [PromptConfig(num_tokens=4, deep=True), PromptConfig(num_tokens=4, deep=False), PrefixConfig(length=4, mlp_hidden=32)],
    ids=["prompt_deep", "prompt_shallow", "prefix"],
)
def test_outputs_move_measurably_after_a_few_steps(arch, cfg):
    """Three steps move the last hidden state by more than 1e-4 relative (measured: deep prompts
    2e-3 pre-LN, 2e-4 post-LN WavLM; prefixes 2e-2 to 9e-2), and by over 10x what the gated
    gated variant moves for deep prompts on post-LN WavLM (6e-6) and for prefixes (2e-5 to 5e-5)."""
    moved = relative_move(arch, cfg)
    assert moved > 1e-4, moved
    if isinstance(cfg, PromptConfig):
        gated = PromptConfig(num_tokens=4, deep=cfg.deep, attention="gated", init="normal")
    else:
        gated = PrefixConfig(length=4, attention="gated", reparametrize=False)
    if isinstance(cfg, PrefixConfig) or (arch == POST_LN and cfg.deep):  # the default configs
        assert moved > 10 * relative_move(arch, gated)


def test_prompts_start_on_the_scale_of_post_ln_hidden_states():
    """Post-LN: block l's prompts are samples of the LayerNorm output feeding block l."""
    torch.manual_seed(0)
    up = load_upstream(f"random:{POST_LN}")
    with torch.no_grad():
        up.model.encoder.layer_norm.weight.fill_(3.0)
        up.model.encoder.layer_norm.bias.fill_(-2.0)
    prompts = hidden_scale_prompts(up, [0, 1], 400)
    assert abs(prompts[0].mean().item() + 2.0) < 0.05 and abs(prompts[0].std().item() - 3.0) < 0.05
    assert abs(prompts[1].mean().item()) < 0.05 and abs(prompts[1].std().item() - 1.0) < 0.05
    pre = load_upstream(f"random:{PRE_LN}")
    assert abs(hidden_scale_prompts(pre, [0], 400).std().item() - 1.0) < 0.05  # the block normalises it


def test_prefix_mlp_folds_into_plain_prefixes():
    torch.manual_seed(0)
    up = load_upstream(f"random:{PRE_LN}").eval()
    apply_peft(up, PrefixConfig(length=3, mlp_hidden=8))
    wavs, lens = waves()
    with torch.no_grad():
        unmerged = up(wavs, lens)[0]
        assert merge_peft(up) == 1 and up.prefixes.folded is not None
        merged = up(wavs, lens)[0]
        assert unmerge_peft(up) == 1 and up.prefixes.folded is None
        merge_peft(up, unload=True)
        unloaded = up(wavs, lens)[0]
    assert up.prefixes.mlp is None and up.prefixes.prefix.shape == (up.num_layers, 2, 3, up.hidden_dim)
    for a, b, c in zip(unmerged, merged, unloaded):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
        torch.testing.assert_close(a, c, atol=1e-6, rtol=0)


@pytest.mark.parametrize("arch", [PRE_LN, POST_LN])
def test_frozen_upstream_runs_without_dropout_in_train_mode(arch):
    """``frozen``: the upstream stays in eval mode when the model trains (SUPERB), while
    methods that train inside it keep the upstream's dropout on."""
    wavs, lens = waves()
    frozen = load_upstream(f"random:{arch}")
    apply_peft(frozen, FrozenConfig())
    frozen.train()
    assert frozen.training and not frozen.model.training
    with torch.no_grad():
        first, second = frozen(wavs, lens)[0], frozen(wavs, lens)[0]
    for a, b in zip(first, second):
        assert torch.equal(a, b)
    tuned = load_upstream(f"random:{arch}")
    apply_peft(tuned, FullFinetuneConfig())
    tuned.train()
    with torch.no_grad():
        first, second = tuned(wavs, lens)[0], tuned(wavs, lens)[0]
    assert (first[-1] - second[-1]).abs().max() > 1e-3  # dropout is on
