"""Tests for the AASIST back-end head (spkpeft.nn.aasist, ``head.type: aasist``)."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from spkpeft.errors import SpkpeftError
from spkpeft.nn.aasist import AasistConfig, AasistHead, GraphPool, first_pool
from spkpeft.nn.heads import HEADS, build_head, count_params

FEAT = 16
#: a tiny head: 4 spectral nodes, two narrow encoder blocks, 8-dim graphs (embed_dim 40)
TINY = AasistConfig(proj_dim=12, filters=[[1, 4], [4, 8]], attention_channels=8, gat_dims=[8, 8])


def tiny(**changes) -> AasistConfig:
    return dataclasses.replace(TINY, **changes)


def no_dropout(cfg: AasistConfig) -> AasistConfig:
    return dataclasses.replace(cfg, gat_dropout=0.0, pool_dropout=0.0, branch_dropout=0.0, readout_dropout=0.0)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _randomise_bn(head: torch.nn.Module) -> None:
    """Non-trivial BatchNorm running statistics and affine parameters (eval behaviour)."""
    with torch.no_grad():
        for mod in head.modules():
            if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 1.5)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.3, 0.3)


def _padded(utterances: list[torch.Tensor], fill: float = 3.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad ``(T_i, D)`` utterances to the longest with noise (padding content must not matter)."""
    longest = max(u.shape[0] for u in utterances)
    batch = fill * torch.randn(len(utterances), longest, utterances[0].shape[1])
    for i, u in enumerate(utterances):
        batch[i, : u.shape[0]] = u
    return batch, torch.tensor([u.shape[0] for u in utterances])


# ---------------------------------------------------------------------------- shape, size


def test_default_output_shape() -> None:
    head = build_head(AasistConfig(), FEAT).eval()
    assert isinstance(head, AasistHead) and head.embed_dim == 160
    out = head(torch.randn(3, 45, FEAT), torch.tensor([45, 30, 7]))
    assert out.shape == (3, 160) and torch.isfinite(out).all()


def _reference_param_count(feat_dim: int, with_dead_bn: bool) -> int:
    """Parameters of SSL-AASIST's back-end (``Model`` of TakHemlata/SSL_Anti-spoofing ``model.py``
    minus the SSL model), counted from its layer shapes, without ``out_layer`` (our task's
    classifier).  ``with_dead_bn``: include the ``bn1`` of the five non-first residual blocks,
    which the reference creates but never uses (``conv1`` is applied to the raw input)."""
    linear = lambda i, o: i * o + o  # noqa: E731
    conv = lambda i, o, kh, kw: i * o * kh * kw + o  # noqa: E731
    bn = lambda c: 2 * c  # noqa: E731

    total = linear(feat_dim, 128) + bn(1)  # LL, first_bn
    for i, (c_in, c_out) in enumerate([(1, 32), (32, 32), (32, 64), (64, 64), (64, 64), (64, 64)]):
        total += conv(c_in, c_out, 2, 3) + bn(c_out) + conv(c_out, c_out, 2, 3)  # conv1, bn2, conv2
        total += conv(c_in, c_out, 1, 3) if c_in != c_out else 0  # conv_downsample
        total += bn(c_in) if with_dead_bn and i > 0 else 0
    total += bn(64)  # first_bn1
    total += conv(64, 128, 1, 1) + bn(128) + conv(128, 64, 1, 1)  # attention
    total += 42 * 64 + 2 * 64  # pos_S (1, 42, 64), master1, master2 (1, 1, 64)
    gal = lambda i, o: 3 * linear(i, o) + o + bn(o)  # att_proj, proj_with/without_att, att_weight, bn  # noqa: E731
    hsgal = lambda i, o: 2 * linear(i, i) + 6 * linear(i, o) + 4 * o + bn(o)  # noqa: E731
    total += 2 * gal(64, 64)  # GAT_layer_S, GAT_layer_T
    total += 2 * (hsgal(64, 32) + hsgal(32, 32))  # HtrgGAT_layer_ST11/12, ST21/22
    total += 2 * linear(64, 1) + 4 * linear(32, 1)  # pool_S, pool_T, pool_hS1/hT1/hS2/hT2
    return total


def test_param_count_matches_reference() -> None:
    # The reference SSL-AASIST Model has 447,242 parameters besides the SSL model (checked by
    # instantiating its model.py with a stub front-end): LL 131,200 + back-end 315,720 +
    # out_layer 322.  We match it layer for layer except out_layer (the task's Linear(160, 2))
    # and, by default, the five dead bn1 layers (512 parameters).
    assert _reference_param_count(1024, with_dead_bn=True) + 322 == 447_242
    assert count_params(build_head(AasistConfig(), 1024)) == _reference_param_count(1024, False) == 446_408
    preact = AasistConfig(encoder_preactivation=True)
    assert count_params(build_head(preact, 1024)) == _reference_param_count(1024, True) == 446_920


# ---------------------------------------------------------------------------- padding


@pytest.mark.parametrize("cfg", [AasistConfig(), tiny(encoder_preactivation=True)], ids=["default", "tiny"])
def test_batch_invariance(cfg: AasistConfig) -> None:
    head = build_head(cfg, FEAT).eval()
    _randomise_bn(head)
    lengths = [50, 23, 37, 2, 3, 12]  # multiples of 3 and not, shorter than the 3x3 pool
    utterances = [torch.randn(n, FEAT) for n in lengths]
    batch, lens = _padded(utterances)
    with torch.no_grad():
        batched = head(batch, lens)
        for i, utt in enumerate(utterances):
            alone = head(utt.unsqueeze(0), torch.tensor([utt.shape[0]]))
            torch.testing.assert_close(batched[i : i + 1], alone, atol=1e-5, rtol=1e-5)


def test_train_statistics_ignore_padding() -> None:
    # training-mode BatchNorm statistics come from valid frames/nodes only: extra padding
    # (of random content) leaves a batch's outputs unchanged
    head = build_head(no_dropout(tiny(encoder_preactivation=True)), FEAT).train()
    utterances = [torch.randn(n, FEAT) for n in (31, 17, 24)]
    batch, lens = _padded(utterances)
    longer = torch.cat([batch, 3.0 * torch.randn(3, 20, FEAT)], dim=1)
    torch.testing.assert_close(head(batch, lens), head(longer, lens), atol=1e-5, rtol=1e-5)


def test_first_pool_carries_ceil_length() -> None:
    x = torch.arange(2 * 7 * 10, dtype=torch.float).view(2, 1, 7, 10)
    mask = torch.arange(10) < torch.tensor([[10], [4]])
    pooled, pooled_mask = first_pool(x, mask)
    assert pooled.shape == (2, 1, 2, 4)  # 7 // 3 spectral rows, ceil(10 / 3) frames
    assert pooled_mask.tolist() == [[True] * 4, [True, True, False, False]]  # ceil(4 / 3) = 2
    assert pooled[1, 0, 0, 1] == x[1, 0, 2, 3]  # the partial window pools its valid frame only
    assert (pooled[1, :, :, 2:] == 0).all()


def test_graph_pool_keeps_a_share_of_each_utterances_nodes() -> None:
    pool = GraphPool(0.5, 4, dropout=0.0)
    nodes = torch.randn(3, 9, 4)
    mask = torch.arange(9) < torch.tensor([[9], [5], [1]])
    out, out_mask = pool(nodes, mask)
    # k_b = max(floor(0.5 n_b), 1) from the utterance's own valid nodes: 4, 2, 1
    assert out.shape == (3, 4, 4) and out_mask.sum(1).tolist() == [4, 2, 1]
    assert (out[~out_mask] == 0).all()
    scores = torch.sigmoid(pool.proj(nodes)).squeeze(-1)
    for b, n in enumerate((9, 5, 1)):  # the best-scored valid nodes, scaled by their score
        k = int(out_mask[b].sum())
        best = scores[b, :n].topk(k).indices
        torch.testing.assert_close(out[b, :k], nodes[b, best] * scores[b, best].unsqueeze(-1))


# ---------------------------------------------------------------------------- training


def test_gradients_reach_every_parameter() -> None:
    head = build_head(AasistConfig(encoder_preactivation=True), FEAT).train()
    out = head(torch.randn(4, 36, FEAT), torch.tensor([36, 20, 36, 8]))
    (out * torch.randn_like(out)).sum().backward()
    dead = [n for n, p in head.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not dead, dead


def _two_classes(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Class 1 adds a zero-mean temporal oscillation (period 6 frames) to class-0 noise."""
    labels = torch.arange(n) % 2
    lengths = torch.randint(12, 40, (n,), generator=gen)
    pattern = torch.sin(2 * math.pi * torch.arange(40) / 6).view(1, 40, 1)
    feats = torch.randn(n, 40, FEAT, generator=gen) + labels.view(-1, 1, 1) * pattern
    return feats, lengths, labels


def test_tiny_head_learns_two_classes() -> None:
    head = build_head(TINY, FEAT)
    classifier = torch.nn.Linear(head.embed_dim, 2)
    opt = torch.optim.Adam([*head.parameters(), *classifier.parameters()], lr=3e-3)
    gen = torch.Generator().manual_seed(1)
    for _ in range(40):
        feats, lengths, labels = _two_classes(16, gen)
        loss = torch.nn.functional.cross_entropy(classifier(head(feats, lengths)), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    head.eval()
    feats, lengths, labels = _two_classes(64, torch.Generator().manual_seed(2))
    with torch.no_grad():
        accuracy = (classifier(head(feats, lengths)).argmax(1) == labels).float().mean()
    assert accuracy >= 0.9


# ---------------------------------------------------------------------------- config, registry


def test_registered_and_read_from_config() -> None:
    from spkpeft.tasks.config import config_from_dict

    assert "aasist" in HEADS and "SSL-AASIST" in HEADS.get("aasist").description
    section = {"type": "aasist", "proj_dim": 12, "filters": [[1, 4], [4, 8]], "attention_channels": 8,
               "gat_dims": [8, 8], "temperatures": [1, 1, 50, 50]}
    cfg = config_from_dict({"head": section}).head
    assert isinstance(cfg, AasistConfig) and cfg.temperatures == [1.0, 1.0, 50.0, 50.0]
    head = build_head(cfg, FEAT)
    assert isinstance(head, AasistHead) and head.embed_dim == 40
    assert head(torch.randn(2, 20, FEAT), torch.tensor([20, 9])).shape == (2, 40)
    with pytest.raises(SpkpeftError, match=r"head\.filters"):
        config_from_dict({"head": {"type": "aasist", "filters": [[1, 4], [8, 8]]}})
    with pytest.raises(SpkpeftError, match=r"head\.nodes"):
        config_from_dict({"head": {"type": "aasist", "nodes": 3}})


@pytest.mark.parametrize(
    "changes, key",
    [
        ({"filters": [[2, 4]]}, "filters"),
        ({"filters": []}, "filters"),
        ({"gat_dims": [8]}, "gat_dims"),
        ({"pool_ratios": [0.5, 0.5, 0.0, 0.5]}, "pool_ratios"),
        ({"temperatures": [1.0, 1.0, 1.0]}, "temperatures"),
        ({"proj_dim": 2}, "proj_dim"),
        ({"readout_dropout": 1.0}, "readout_dropout"),
    ],
)
def test_invalid_config_names_the_key(changes: dict, key: str) -> None:
    with pytest.raises(SpkpeftError, match=rf"head\.{key} "):
        build_head(tiny(**changes), FEAT)


def test_empty_utterance_is_an_error() -> None:
    with pytest.raises(SpkpeftError, match="no frames"):
        build_head(TINY, FEAT)(torch.randn(2, 10, FEAT), torch.tensor([10, 0]))


@pytest.mark.parametrize("training", [True, False])
def test_the_accelerator_path_reads_nothing_and_equals_the_cpu_path(training: bool, monkeypatch) -> None:
    """On an accelerator the graph pooling keeps the static number of slots of the node axis
    (the extra ones padded) and BatchNorm weighs positions by the mask: the same outputs as the
    CPU's paths, which read node counts and masks on the host."""
    import copy

    import spkpeft.nn.aasist as aasist
    import spkpeft.nn.heads as heads

    cpu_head = build_head(no_dropout(tiny(encoder_preactivation=True)), FEAT).train(training)
    _randomise_bn(cpu_head)
    accelerator_head = copy.deepcopy(cpu_head)
    batch, lens = _padded([torch.randn(n, FEAT) for n in (50, 23, 37, 12)])
    expected = cpu_head(batch, lens)
    for module in (aasist, heads):
        monkeypatch.setattr(module, "host_reads_are_cheap", lambda device: False)
    torch.testing.assert_close(accelerator_head(batch, lens), expected, atol=1e-5, rtol=1e-4)
    for (name, a), b in zip(cpu_head.named_buffers(), accelerator_head.buffers()):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-4, msg=name)
