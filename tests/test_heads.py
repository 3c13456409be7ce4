"""Tests for the ECAPA-TDNN head (spkpeft.nn.heads)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from spkpeft.errors import SpkpeftError
from spkpeft.nn.heads import (
    HeadConfig,
    PartitionFusion,
    build_head,
    count_macs,
    count_params,
    frame_mask,
    head_cost,
    head_cost_vs_plain,
)

SMALL = HeadConfig(channels=32, embed_dim=16, res2_scale=4, se_channels=8, attention_channels=8)
FEAT = 12


def small(**changes) -> HeadConfig:
    return dataclasses.replace(SMALL, **changes)


def part(groups: int, **changes) -> HeadConfig:
    """SMALL with the transformation module on ``groups`` subsets (0: plain head)."""
    if groups == 0:
        return small(**changes)
    return small(transform="partition_fusion", partition_groups=groups, **changes)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _randomise_bn(head: torch.nn.Module) -> None:
    """Give BatchNorm layers non-trivial running statistics (eval behaviour)."""
    for mod in head.modules():
        if isinstance(mod, torch.nn.BatchNorm1d):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 1.5)


@pytest.mark.parametrize("groups", [0, 2, 4])
def test_output_shape(groups: int) -> None:
    head = build_head(part(groups), FEAT).eval()
    out = head(torch.randn(3, 40, FEAT), torch.tensor([40, 25, 7]))
    assert out.shape == (3, 16)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("groups", [0, 2, 4])
def test_padding_does_not_change_embedding(groups: int) -> None:
    head = build_head(part(groups), FEAT).eval()
    _randomise_bn(head)
    short = torch.randn(1, 23, FEAT)
    other = torch.randn(1, 50, FEAT)
    batch = torch.zeros(2, 50, FEAT)
    batch[0, :23] = short[0]
    batch[0, 23:] = 100.0 * torch.randn(27, FEAT)  # garbage padding must be ignored
    batch[1] = other[0]
    with torch.no_grad():
        alone = head(short, torch.tensor([23]))
        batched = head(batch, torch.tensor([23, 50]))
        other_alone = head(other, torch.tensor([50]))
    torch.testing.assert_close(batched[0], alone[0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(batched[1], other_alone[0], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("groups", [0, 4])
def test_training_batch_norm_ignores_padding(groups: int) -> None:
    head = build_head(part(groups), FEAT).train()
    x = torch.randn(2, 30, FEAT)
    y = x.clone()
    y[0, 20:] = 50.0
    out_x = head(x, torch.tensor([20, 30]))
    out_y = head(y, torch.tensor([20, 30]))
    torch.testing.assert_close(out_x, out_y, atol=1e-5, rtol=1e-4)


def test_reference_parameter_counts() -> None:
    # Desplanques et al. 2020: C=512 -> 6.2M, C=1024 (MFA 1536) -> 14.7M on 80 fbank.
    c512 = count_params(build_head(HeadConfig(), 80))
    c1024 = count_params(build_head(HeadConfig(channels=1024, mfa_channels=1536), 80))
    assert abs(c512 - 6.2e6) / 6.2e6 < 0.05
    assert abs(c1024 - 14.7e6) / 14.7e6 < 0.05


@pytest.mark.parametrize("feat_dim", [80, 768])
@pytest.mark.parametrize("groups", [2, 4, 8])
def test_partition_saves_params_and_macs(groups: int, feat_dim: int) -> None:
    # reference C=512 head: grouping the blocks and MFA outweighs the fusion modules
    cfg = HeadConfig(transform="partition_fusion", partition_groups=groups)
    cost = head_cost_vs_plain(cfg, feat_dim, num_frames=100)
    assert (cost["plain_params"], cost["plain_macs"]) == tuple(
        head_cost(HeadConfig(), feat_dim, num_frames=100).values()
    )
    assert cost["params"] == count_params(build_head(cfg, feat_dim))
    assert cost["params"] < 0.75 * cost["plain_params"]
    assert cost["macs"] < 0.75 * cost["plain_macs"]
    if groups == 4 and feat_dim == 80:
        assert cost["params"] < 0.5 * cost["plain_params"]
        assert cost["macs"] < 0.45 * cost["plain_macs"]


def test_count_macs_closed_form() -> None:
    # SMALL: C=32, s=4 (width 8), M=96, A=8, E=16, D=12
    per_frame = (
        32 * FEAT * 5  # input TDNN k=5
        + 3 * (2 * 32 * 32 + 3 * 8 * 8 * 3)  # blocks: two 1x1 convs + Res2 convs
        + 96 * 96  # MFA
        + 3 * 96 * 8 + 8 * 96  # attention convs
    )
    per_utt = 3 * 2 * 32 * 8 + 2 * 96 * 16  # SE linears + final linear
    head = build_head(SMALL, FEAT)
    assert count_macs(head, FEAT, 20) == per_frame * 20 + per_utt
    assert count_macs(SMALL, FEAT, 7) == per_frame * 7 + per_utt
    assert head.training  # mode restored


@pytest.mark.parametrize("groups", [0, 2, 4])
def test_gradient_reaches_all_parameters(groups: int) -> None:
    head = build_head(part(groups), FEAT).train()
    out = head(torch.randn(4, 30, FEAT), torch.tensor([30, 21, 30, 12]))
    (out * torch.randn_like(out)).sum().backward()
    missing = [
        n for n, p in head.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0
    ]
    assert not missing


@pytest.mark.parametrize(
    "changes, key",
    [
        ({"type": "xvector"}, "head.type"),
        ({"channels": 30}, "head.res2_scale"),
        ({"transform": "shuffle"}, "head.transform"),
        ({"partition_groups": 2}, "head.partition_groups"),  # transform: none
        ({"transform": "partition_fusion"}, "head.partition_groups"),  # G = 0
        ({"transform": "partition_fusion", "partition_groups": 1}, "head.partition_groups"),
        ({"transform": "partition_fusion", "partition_groups": 3}, "head.partition_groups"),
        ({"channels": 0}, "head.channels"),
        ({"embed_dim": -1}, "head.embed_dim"),
        ({"res2_scale": 1}, "head.res2_scale"),
        ({"transform": "partition_fusion", "partition_groups": 4, "mfa_channels": 50},
         "head.partition_groups"),
        ({"transform": "partition_fusion", "partition_groups": 4, "se_channels": 6},
         "head.se_channels"),
    ],
)
def test_bad_config(changes: dict, key: str) -> None:
    with pytest.raises(SpkpeftError, match=key.replace(".", r"\.")):
        build_head(small(**changes), FEAT)


def test_bad_feat_dim_and_empty_utterance() -> None:
    with pytest.raises(SpkpeftError):
        build_head(SMALL, 0)
    head = build_head(SMALL, FEAT)
    with pytest.raises(SpkpeftError, match="no frames"):
        head(torch.randn(2, 10, FEAT), torch.tensor([10, 0]))


# ----------------------------------------------------------------------------
# transformation module (arXiv:2312.03324)


def test_count_macs_closed_form_with_transform() -> None:
    # SMALL with G=2: C=32 (subsets of 16), s=4 (Res2 width 8), M=96, A=8, E=16, D=12
    g = 2

    def fusion(ch: int) -> tuple[int, int]:  # (per frame, per utterance), see count_macs
        return 3 * ch + ch // g, ch

    per_frame = (
        32 * FEAT * 5  # dense input TDNN
        + 3 * (2 * 32 * 32 // g + 3 * 8 * 8 * 3 // g)  # grouped block convs
        + 3 * fusion(32)[0] + fusion(96)[0]  # fusion before each block and before MFA
        + 96 * 96 // g  # grouped MFA
        + 3 * 96 * 8 + 8 * 96  # dense attention convs
    )
    per_utt = 3 * 2 * 32 * 8 // g + 3 * fusion(32)[1] + fusion(96)[1] + 2 * 96 * 16
    head = build_head(part(g), FEAT)
    assert count_macs(head, FEAT, 20) == per_frame * 20 + per_utt
    assert count_macs(part(g), FEAT, 7) == per_frame * 7 + per_utt
    fusion_params = 5 * 32 * 3 + 5 * 96  # 3 weights + BN affine per channel
    plain_block = 2 * (32 * 32 + 32) + 3 * (8 * 8 * 3 + 8) + 2 * (32 * 8) + 8 + 32
    block = 2 * (32 * 32 // g + 32) + 3 * (8 * 8 * 3 // g + 8) + 2 * (32 * 8 // g) + 8 + 32
    plain, transformed = count_params(build_head(SMALL, FEAT)), count_params(head)
    assert transformed - plain == fusion_params + 3 * (block - plain_block) - 96 * 96 // g


def _masked_input(channels: int, lengths: list[int], frames: int) -> tuple:
    mask = frame_mask(torch.tensor(lengths), frames)
    return torch.randn(len(lengths), channels, frames) * mask.unsqueeze(1), mask


@pytest.mark.parametrize("train", [False, True])
@pytest.mark.parametrize("groups", [2, 4])
def test_subsets_are_independent_between_fusions(groups: int, train: bool) -> None:
    """Perturbing subset g at a block's input (after its fusion) changes only subset g."""
    head = build_head(part(groups), FEAT).train(train)
    _randomise_bn(head)
    layers = [(blk, SMALL.channels) for blk in head.blocks]
    layers.append((lambda x, mask: head.mfa(x), 3 * SMALL.channels))  # MFA (before its ReLU)
    for layer, channels in layers:
        x, mask = _masked_input(channels, [30, 17], 30)
        width = channels // groups
        for g in range(groups):
            y = x.clone()
            y[:, g * width:(g + 1) * width] += 3.0 * torch.randn(2, width, 30) * mask.unsqueeze(1)
            with torch.no_grad():
                out_x, out_y = layer(x, mask), layer(y, mask)
            out_w = out_x.shape[1] // groups
            changed = (out_x - out_y).abs().amax(dim=(0, 2)).view(groups, out_w).amax(dim=1)
            assert changed[g] > 1e-3
            others = torch.cat([changed[:g], changed[g + 1:]])
            assert others.max() == 0.0, (g, changed)


def test_se_gate_is_per_subset() -> None:
    head = build_head(part(4), FEAT)
    se = head.blocks[0].se
    assert se.down.groups == se.up.groups == 4
    assert count_params(se) == 2 * 32 * 8 // 4 + 8 + 32


def test_fusion_exchanges_information_between_subsets() -> None:
    fusion = PartitionFusion(32, 4).eval()
    _randomise_bn(fusion)
    with torch.no_grad():
        fusion.weight.uniform_(0.5, 1.5)
    x, mask = _masked_input(32, [25, 12], 25)
    y = x.clone()
    y[:, :8] += torch.randn(2, 8, 25) * mask.unsqueeze(1)  # subset 0 only
    with torch.no_grad():
        out_x, out_y = fusion(x, mask), fusion(y, mask)
    changed = (out_x - out_y).abs().amax(dim=(0, 2)).view(4, 8)
    assert (changed.amax(dim=1) > 1e-3).all()  # every subset sees subset 0
    assert (out_x * ~mask.unsqueeze(1)).abs().max() == 0  # padded frames stay zero
    # the whole head mixes subsets: a change confined to subset 0 of the input
    # layer's output reaches the embedding through every block's subsets
    head = build_head(part(4), FEAT).eval()
    h, mask = _masked_input(32, [20], 20)
    h2 = h.clone()
    h2[:, :8] += 1.0
    h2 = h2 * mask.unsqueeze(1)
    with torch.no_grad():
        a = head.blocks[0](head.fusions[0](h, mask), mask)
        b = head.blocks[0](head.fusions[0](h2, mask), mask)
    assert ((a - b).abs().amax(dim=(0, 2)).view(4, 8).amax(dim=1) > 1e-4).all()


def test_transform_padding_invariance() -> None:
    head = build_head(part(4), FEAT).eval()
    _randomise_bn(head)
    short, long = torch.randn(1, 17, FEAT), torch.randn(1, 61, FEAT)
    batch = torch.randn(2, 61, FEAT) * 50.0  # garbage in the padding
    batch[0, :17], batch[1] = short[0], long[0]
    with torch.no_grad():
        alone = head(short, torch.tensor([17]))
        batched = head(batch, torch.tensor([17, 61]))
        long_alone = head(long)
    assert (batched[0] - alone[0]).abs().max() < 1e-5
    assert (batched[1] - long_alone[0]).abs().max() < 1e-5


def test_transform_config_loads(tmp_path) -> None:
    from spkpeft.tasks.config import load_config

    root = __import__("pathlib").Path(__file__).resolve().parents[1]
    path = tmp_path / "tm.yaml"
    path.write_text(
        f"base: {root / 'conf' / 'sv' / 'base.yaml'}\n"
        "head:\n  transform: partition_fusion\n  partition_groups: 4\n"
    )
    cfg = load_config(path)
    assert (cfg.head.transform, cfg.head.partition_groups) == ("partition_fusion", 4)
    path.write_text(f"base: {root / 'conf' / 'sv' / 'base.yaml'}\nhead:\n  transform: shuffle\n")
    with pytest.raises(SpkpeftError, match=r"head\.transform"):
        load_config(path)
    path.write_text(f"base: {root / 'conf' / 'sv' / 'base.yaml'}\nhead:\n  partition_groups: 4\n")
    with pytest.raises(SpkpeftError, match=r"head\.partition_groups"):
        load_config(path)


def test_lstm_and_conv2d_macs_are_counted_from_their_shapes():
    import torch.nn as nn

    from spkpeft.nn.heads import count_macs
    from spkpeft.nn.lstm_head import LSTMConfig, LSTMHead

    head = LSTMHead(LSTMConfig(hidden_size=12, num_layers=2, bidirectional=True), 10)
    per_step = 2 * (4 * 12 * (10 + 12) + 4 * 12 * (24 + 12))  # two directions, layer inputs 10 and 2 x 12
    assert count_macs(head, 10, 7) == 7 * per_step

    class Conv(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 3, (2, 5), padding=(1, 2))

        def forward(self, x, lengths):
            return self.conv(x[:, None])

    assert count_macs(Conv(), 6, 8) == (3 * 9 * 6) * (1 * 2 * 5)  # output (3, 8 + 1, 6) elements x kernel


@pytest.mark.parametrize("training", [True, False])
def test_the_accelerator_path_reads_nothing_and_equals_the_cpu_path(training: bool, monkeypatch) -> None:
    """On an accelerator the head never reads the mask on the host (BatchNorm statistics weighted
    by the mask, a device-side length check): the same outputs and running statistics as the
    CPU's paths (bn(x) on full batches, bn of the gathered valid frames on padded ones)."""
    import copy

    import spkpeft.nn.heads as heads

    torch.manual_seed(0)
    cpu_head = build_head(part(0), FEAT).train(training)
    accelerator_head = copy.deepcopy(cpu_head)
    x, lengths = torch.randn(3, 30, FEAT), torch.tensor([20, 30, 7])
    for lens in (lengths, torch.full((3,), 30)):
        expected = cpu_head(x, lens)
        monkeypatch.setattr(heads, "host_reads_are_cheap", lambda device: False)
        got = accelerator_head(x, lens)
        monkeypatch.undo()
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    for (name, a), b in zip(cpu_head.named_buffers(), accelerator_head.buffers()):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-4, msg=name)
    monkeypatch.setattr(heads, "host_reads_are_cheap", lambda device: False)
    with pytest.raises(RuntimeError, match="no frames"):
        accelerator_head(x, torch.tensor([20, 0, 7]))
