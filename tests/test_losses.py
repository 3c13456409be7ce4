"""Tests for the margin softmax losses (spkpeft.nn.losses)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from spkpeft.errors import SpkpeftError
from spkpeft.nn.losses import LossConfig, arc_margin, build_loss, warmup_margin


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _cosines(loss: torch.nn.Module, emb: torch.Tensor) -> torch.Tensor:
    return F.normalize(emb, dim=1) @ F.normalize(loss.weight, dim=1).t()


@pytest.mark.parametrize("kind", ["aam", "am"])
def test_zero_margin_is_scaled_cosine_softmax(kind: str) -> None:
    loss = build_loss(LossConfig(type=kind, margin=0.0, scale=20.0), 8, 5)
    emb, labels = torch.randn(6, 8), torch.randint(0, 5, (6,))
    value, acc = loss(emb, labels)
    cos = _cosines(loss, emb)
    torch.testing.assert_close(value, F.cross_entropy(20.0 * cos, labels))
    assert acc.item() == pytest.approx((cos.argmax(1) == labels).float().mean().item())


def test_aam_target_logit_by_hand() -> None:
    m, s = 0.3, 10.0
    loss = build_loss(LossConfig(type="aam", margin=m, scale=s), 4, 3)
    emb, labels = torch.randn(5, 4), torch.tensor([0, 1, 2, 1, 0])
    cos = _cosines(loss, emb).double()
    logits = loss.logits(emb, labels).double()
    for i, y in enumerate(labels.tolist()):
        theta = math.acos(cos[i, y].item())
        if theta + m <= math.pi:
            expected = math.cos(theta + m)
        else:
            expected = cos[i, y].item() - m * math.sin(m)
        assert logits[i, y].item() == pytest.approx(s * expected, abs=1e-4)
        others = [j for j in range(3) if j != y]
        torch.testing.assert_close(logits[i, others], s * cos[i, others], atol=1e-4, rtol=0)


def test_aam_past_threshold_uses_linear_fix() -> None:
    m = 0.5
    cos = torch.tensor([math.cos(math.pi - 0.2), 0.5])
    out = arc_margin(cos, m)
    assert out[0].item() == pytest.approx(cos[0].item() - m * math.sin(m), abs=1e-6)
    assert out[1].item() == pytest.approx(math.cos(math.acos(0.5) + m), abs=1e-6)
    easy = arc_margin(torch.tensor([-0.3, 0.3]), m, easy_margin=True)
    assert easy[0].item() == pytest.approx(-0.3)
    assert easy[1].item() == pytest.approx(math.cos(math.acos(0.3) + m), abs=1e-6)


def test_am_logits() -> None:
    m, s = 0.25, 30.0
    loss = build_loss(LossConfig(type="am", margin=m, scale=s), 4, 3)
    emb, labels = torch.randn(4, 4), torch.tensor([2, 0, 1, 2])
    expected = s * _cosines(loss, emb)
    expected[torch.arange(4), labels] -= s * m
    torch.testing.assert_close(loss.logits(emb, labels), expected, atol=1e-4, rtol=0)


def test_margin_warmup_schedule() -> None:
    loss = build_loss(LossConfig(margin=0.4, margin_warmup_epochs=2.0), 4, 3)
    assert loss.margin == 0.0
    assert loss.set_epoch(0.5) == pytest.approx(0.1)
    assert loss.set_epoch(1.0) == pytest.approx(0.2)
    assert loss.set_epoch(5.0) == pytest.approx(0.4)
    assert warmup_margin(0.4, 0.0, 0.0) == 0.4
    assert build_loss(LossConfig(margin=0.4), 4, 3).margin == 0.4


@pytest.mark.parametrize("kind", ["aam", "am"])
def test_training_reduces_loss(kind: str) -> None:
    centers = 3.0 * torch.eye(4, 8)
    labels = torch.arange(4).repeat_interleave(8)
    emb = centers[labels] + 0.3 * torch.randn(32, 8)
    loss = build_loss(LossConfig(type=kind, margin=0.2, scale=15.0), 8, 4)
    first, _ = loss(emb, labels)
    for _ in range(30):  # plain gradient descent on the class weights
        value, _ = loss(emb, labels)
        (grad,) = torch.autograd.grad(value, loss.weight)
        with torch.no_grad():
            loss.weight -= 0.5 * grad
    final, acc = loss(emb, labels)
    assert final.item() < 0.5 * first.item()
    assert acc.item() == 1.0


@pytest.mark.parametrize("kind", ["aam", "am"])
def test_no_nan_gradient_at_unit_cosine(kind: str) -> None:
    loss = build_loss(LossConfig(type=kind, margin=0.3), 4, 3)
    with torch.no_grad():
        loss.weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0]]))
    emb = torch.tensor([[2.0, 0, 0, 0], [-3.0, 0, 0, 0], [0, 0, -1.0, 0]], requires_grad=True)
    value, _ = loss(emb, torch.tensor([0, 0, 2]))  # cos = +1, -1, -1 for the targets
    value.backward()
    assert torch.isfinite(value)
    assert torch.isfinite(emb.grad).all() and torch.isfinite(loss.weight.grad).all()


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"type": "softmax"}, "loss.type"),
        ({"scale": 0.0}, "loss.scale"),
        ({"margin": -0.1}, "loss.margin"),
        ({"margin": 2.0}, "loss.margin"),
        ({"margin_warmup_epochs": -1}, "loss.margin_warmup_epochs"),
        ({"scale": "30"}, "loss.scale"),
    ],
)
def test_bad_config(kwargs: dict, key: str) -> None:
    with pytest.raises(SpkpeftError, match=key.replace(".", r"\.")):
        build_loss(LossConfig(**kwargs), 4, 3)


def test_bad_sizes() -> None:
    with pytest.raises(SpkpeftError):
        build_loss(LossConfig(), 4, 0)


# ----------------------------------------------------------------------------- one-class softmax


def test_one_class_softmax_is_the_papers_formula() -> None:
    from spkpeft.nn.losses import CosineToCentre, OneClassSoftmaxConfig

    centre = CosineToCentre(6)
    emb, labels = torch.randn(9, 6), torch.tensor([1, 0, 0, 1, 1, 0, 0, 0, 1])
    cos = centre(emb)
    assert cos.shape == (9, 1)
    w = centre.centre[0]
    brute = [float(torch.dot(e, w) / (e.norm() * w.norm())) for e in emb]
    torch.testing.assert_close(cos[:, 0], torch.tensor(brute), atol=1e-6, rtol=1e-6)
    loss = build_loss(OneClassSoftmaxConfig(), 6, 2)
    value, acc = loss(cos, labels)
    terms = [math.log1p(math.exp(20 * (0.9 - c))) if y == 1 else math.log1p(math.exp(20 * (c - 0.2)))
             for c, y in zip(brute, labels.tolist())]
    assert float(value) == pytest.approx(sum(terms) / len(terms), rel=1e-5)
    assert float(acc) == pytest.approx(sum((c > 0.55) == (y == 1) for c, y in zip(brute, labels.tolist())) / 9)


def test_one_class_softmax_pulls_bonafide_to_the_centre() -> None:
    from spkpeft.nn.losses import CosineToCentre, OneClassSoftmaxConfig

    centre, loss = CosineToCentre(4), build_loss(OneClassSoftmaxConfig(), 4, 2)
    emb = torch.randn(32, 4, requires_grad=True)
    labels = (torch.arange(32) % 2 == 0).long()
    opt = torch.optim.Adam([emb, *centre.parameters()], lr=0.05)
    for _ in range(200):
        opt.zero_grad()
        value, _ = loss(centre(emb), labels)
        value.backward()
        opt.step()
    cos = centre(emb)[:, 0].detach()
    assert cos[labels == 1].min() > 0.8 and cos[labels == 0].max() < 0.3


def test_one_class_softmax_config_errors() -> None:
    from spkpeft.nn.losses import OneClassSoftmaxConfig

    with pytest.raises(SpkpeftError, match="m_other .* must be below loss.m_target"):
        build_loss(OneClassSoftmaxConfig(m_target=0.2, m_other=0.5), 4, 2)
    with pytest.raises(SpkpeftError, match="separates 2 classes"):
        build_loss(OneClassSoftmaxConfig(), 4, 3)


@pytest.mark.parametrize("kind", ["aam", "am"])
def test_margin_logits_are_float32_under_autocast(kind: str) -> None:
    """bf16 has 8 bits of mantissa: cos(theta + m) of nearby cosines would collapse; the margin
    softmax computes its cosines and logits in float32 whatever autocast does (here the CPU's)."""
    torch.manual_seed(0)
    loss = build_loss(LossConfig(type=kind, margin=0.2, scale=30.0), 16, 5)
    emb, labels = torch.randn(4, 16), torch.tensor([0, 1, 2, 3])
    exact = loss.logits(emb, labels)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = loss.logits(emb.bfloat16(), labels)
        value, _ = loss(emb.bfloat16(), labels)
    assert logits.dtype == torch.float32 and value.dtype == torch.float32
    assert torch.allclose(logits, loss.logits(emb.bfloat16().float(), labels))
    assert (logits - exact).abs().max() < 0.2  # the bf16 input, not the arithmetic, is all that differs
