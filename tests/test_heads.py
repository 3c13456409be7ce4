"""Tests for the ECAPA-TDNN head (spkpeft.heads)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from spkpeft.errors import SpkpeftError
from spkpeft.heads import HeadConfig, build_head, count_macs, count_params, head_cost

SMALL = HeadConfig(channels=32, embed_dim=16, res2_scale=4, se_channels=8, attention_channels=8)
FEAT = 12


def small(**changes) -> HeadConfig:
    return dataclasses.replace(SMALL, **changes)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _randomise_bn(head: torch.nn.Module) -> None:
    """Give BatchNorm layers non-trivial running statistics (eval behaviour)."""
    for mod in head.modules():
        if isinstance(mod, torch.nn.BatchNorm1d):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 1.5)


@pytest.mark.parametrize("groups", [0, 2])
def test_output_shape(groups: int) -> None:
    head = build_head(small(partition_groups=groups), FEAT).eval()
    out = head(torch.randn(3, 40, FEAT), torch.tensor([40, 25, 7]))
    assert out.shape == (3, 16)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("groups", [0, 2])
def test_padding_does_not_change_embedding(groups: int) -> None:
    head = build_head(small(partition_groups=groups), FEAT).eval()
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


def test_training_batch_norm_ignores_padding() -> None:
    head = build_head(SMALL, FEAT).train()
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


def test_partition_saves_params_and_macs() -> None:
    # reference C=512 head: G=4 groups the block and MFA convolutions
    base = head_cost(HeadConfig(), 80, num_frames=100)
    part = head_cost(HeadConfig(partition_groups=4), 80, num_frames=100)
    assert part["params"] < 0.55 * base["params"]
    assert part["macs"] < 0.5 * base["macs"]


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


@pytest.mark.parametrize("groups", [0, 2])
def test_gradient_reaches_all_parameters(groups: int) -> None:
    head = build_head(small(partition_groups=groups), FEAT).train()
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
        ({"partition_groups": 3}, "head.partition_groups"),
        ({"channels": 0}, "head.channels"),
        ({"embed_dim": -1}, "head.embed_dim"),
        ({"res2_scale": 1}, "head.res2_scale"),
        ({"mfa_channels": 50, "partition_groups": 4}, "head.partition_groups"),
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
