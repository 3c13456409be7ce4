"""Layer aggregation (attentive merging of Pan et al., 2024, and the earlier channel-sum
variant) and the LSTM back-end: formulas, padding invariance, output sizes, wiring."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from spkpeft.errors import SpkpeftError
from spkpeft.nn.aggregation import (
    AggregationConfig,
    AttentiveMerge,
    AttentiveMergeConfig,
    ConcatAttentiveMerge,
    WeightedSum,
    build_aggregation,
    masked_mean,
)
from spkpeft.nn.heads import HEADS, build_head
from spkpeft.nn.lstm_head import LSTMConfig, LSTMHead
from spkpeft.nn.model import build_model
from spkpeft.tasks.config import load_config

ATOL = 1e-5


def hidden_states(num: int = 4, batch: int = 3, frames: int = 7, dim: int = 6, seed: int = 0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, frames, dim, generator=gen) for _ in range(num)]


# ---------------------------------------------------------------------------- concat (the paper's AttM)


def test_concat_is_the_default_merge_with_the_papers_sizes():
    cfg = AttentiveMergeConfig()
    assert (cfg.merge, cfg.reduction, cfg.proj_dim, cfg.proj_hidden, cfg.include_input) == ("concat", 2, 0, 0, False)
    agg = build_aggregation(cfg, 5, 8)  # h_0 .. h_4: the 4 block outputs are merged
    assert isinstance(agg, ConcatAttentiveMerge)
    assert agg.num_layers == 4 and agg.output_dim == 8
    assert agg.excite[0].weight.shape == (2, 4) and agg.excite[2].weight.shape == (4, 2)  # L -> L/2 -> L
    assert agg.proj[0].weight.shape == (4 * 8 // 4, 4 * 8) and agg.proj[2].weight.shape == (8, 8)  # L D -> L D / 4 -> D
    assert isinstance(agg.proj[1], nn.SiLU)
    torch.testing.assert_close(agg.squeeze.weight, torch.full((1, 8), 1 / 8))  # starts as the channel mean
    assert sum(p.numel() for p in agg.parameters()) == 8 + 2 * (4 * 2) + (32 * 8 + 8) + (8 * 8 + 8)


def test_concat_matches_a_hand_computation_with_set_weights():
    num, dim, batch, frames = 4, 6, 2, 5
    agg = ConcatAttentiveMerge(num, dim, reduction=2, proj_dim=4, proj_hidden=5)  # merges h_1 .. h_3
    layers = num - 1
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in agg.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    hidden = hidden_states(num, batch, frames, dim, seed=2)
    lengths = torch.tensor([5, 3])
    u = agg.squeeze.weight[0]
    w1, w2 = agg.excite[0].weight, agg.excite[2].weight
    p1, b1, p2, b2 = agg.proj[0].weight, agg.proj[0].bias, agg.proj[2].weight, agg.proj[2].bias
    expected = torch.zeros(batch, frames, 4)
    expected_w = torch.zeros(batch, layers)
    for b in range(batch):
        n = int(lengths[b])
        e = torch.stack([hidden[l + 1][b, :n].mean(0) for l in range(layers)])  # (L, D): time average
        z = e @ u  # (L,): channel squeeze
        z = z * torch.sigmoid(z)  # Swish
        s = w1 @ z
        s = s * torch.sigmoid(s)
        w = 1 / (1 + torch.exp(-(w2 @ s)))  # sigmoid gate
        expected_w[b] = w
        for t in range(frames):
            x = torch.cat([w[l] * hidden[l + 1][b, t] for l in range(layers)])  # layer-major
            hid = p1 @ x + b1
            expected[b, t] = p2 @ (hid * torch.sigmoid(hid)) + b2
    torch.testing.assert_close(agg.layer_weights(hidden, lengths), expected_w, atol=ATOL, rtol=0)
    torch.testing.assert_close(agg(hidden, lengths), expected, atol=ATOL, rtol=0)


def test_concat_layer_weights_are_per_utterance_and_in_the_unit_interval():
    torch.manual_seed(0)
    agg = build_aggregation(AttentiveMergeConfig(), 5, 6)
    with torch.no_grad():
        agg.squeeze.weight.normal_()
    hidden = hidden_states(5, batch=3, dim=6)
    w = agg.layer_weights(hidden, torch.tensor([7, 4, 2]))
    assert w.shape == (3, 4)
    assert bool(((w > 0) & (w < 1)).all())
    assert not torch.allclose(w[0], w[1])  # utterance-dependent
    out = agg(hidden, torch.tensor([7, 4, 2]))
    assert out.shape == (3, 7, 6)


def test_concat_include_input_merges_h0_and_rejects_a_single_state_without_it():
    agg = build_aggregation(AttentiveMergeConfig(include_input=True, proj_dim=3), 4, 6)
    assert agg.num_layers == 4 and agg.output_dim == 3
    assert agg(hidden_states(4), torch.tensor([7, 5, 1])).shape == (3, 7, 3)
    one = build_aggregation(AttentiveMergeConfig(include_input=True), 1, 6)  # e.g. fbank: one state
    assert one.excite[0].weight.shape == (1, 1)
    with pytest.raises(SpkpeftError, match="include_input"):
        build_aggregation(AttentiveMergeConfig(), 1, 6)


def test_concat_ignores_padding():
    torch.manual_seed(0)
    agg = build_aggregation(AttentiveMergeConfig(proj_dim=5), 4, 6)
    hidden = hidden_states(4, batch=3, frames=7, dim=6)
    lengths = torch.tensor([7, 4, 2])
    out, w = agg(hidden, lengths), agg.layer_weights(hidden, lengths)
    padded = [h.clone() for h in hidden]
    for h in padded:
        h[1, 4:] = 100.0
        h[2, 2:] = -50.0
    torch.testing.assert_close(agg.layer_weights(padded, lengths), w)
    torch.testing.assert_close(agg(padded, lengths)[1, :4], out[1, :4])
    torch.testing.assert_close(agg(padded, lengths)[2, :2], out[2, :2])
    for b, n in enumerate(lengths.tolist()):  # each utterance alone, unpadded
        alone = [h[b:b + 1, :n] for h in hidden]
        torch.testing.assert_close(agg(alone, torch.tensor([n])), out[b:b + 1, :n], atol=ATOL, rtol=0)
        torch.testing.assert_close(agg.layer_weights(alone, None), w[b:b + 1], atol=ATOL, rtol=0)


def test_masked_mean_uses_valid_frames_only():
    h = torch.arange(12.0).view(2, 3, 2)
    torch.testing.assert_close(masked_mean(h, torch.tensor([3, 1])), torch.tensor([[2.0, 3.0], [6.0, 7.0]]))


# ---------------------------------------------------------------------------- channel_sum (pre-change module)


class PreChangeAttentiveMerge(nn.Module):
    """The ``attentive_merge`` module as it was before ``merge:`` existed (frozen reference)."""

    def __init__(self, num_hidden: int, dim: int, attention_dim: int = 128) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.score = nn.Sequential(nn.Linear(dim, attention_dim), nn.GELU(), nn.Linear(attention_dim, dim))
        self.layer_bias = nn.Parameter(torch.zeros(num_hidden, 1, dim))

    def forward(self, hidden, lengths):
        pooled = torch.stack([masked_mean(h, lengths) for h in hidden], dim=0)
        alpha = torch.softmax(self.score(self.norm(pooled)) + self.layer_bias, dim=0)
        return (alpha[:, :, None, :] * torch.stack(hidden, dim=0)).sum(0)


def test_channel_sum_is_the_pre_change_module():
    torch.manual_seed(3)
    old = PreChangeAttentiveMerge(4, 6, 8)
    torch.manual_seed(3)
    new = build_aggregation(AttentiveMergeConfig(merge="channel_sum", attention_dim=8), 4, 6)
    assert isinstance(new, AttentiveMerge) and new.output_dim == 6
    assert list(new.state_dict()) == list(old.state_dict())  # old checkpoints load
    for (name, a), b in zip(old.state_dict().items(), new.state_dict().values()):
        assert torch.equal(a, b), name
    with torch.no_grad():
        old.layer_bias.normal_()
    new.load_state_dict(old.state_dict())
    hidden, lengths = hidden_states(4), torch.tensor([7, 3, 5])
    torch.testing.assert_close(new(hidden, lengths), old(hidden, lengths), atol=0, rtol=0)


def test_output_dims():
    assert build_aggregation(AggregationConfig(), 4, 6).output_dim == 6
    assert isinstance(build_aggregation(AggregationConfig(), 4, 6), WeightedSum)
    assert build_aggregation(AttentiveMergeConfig(merge="channel_sum"), 4, 6).output_dim == 6
    assert build_aggregation(AttentiveMergeConfig(), 4, 6).output_dim == 6
    assert build_aggregation(AttentiveMergeConfig(proj_dim=11), 4, 6).output_dim == 11


AGGREGATION_CONFIG_ERRORS = [
    ("aggregation:\n  type: attentive_merge\n  merge: sum\n",
     r"key 'aggregation\.merge' must be one of: concat, channel_sum"),
    ("aggregation:\n  type: attentive_merge\n  reduction: 0\n", r"key 'aggregation\.reduction' must be >= 1, got 0"),
    ("aggregation:\n  type: attentive_merge\n  proj_dim: -1\n", r"key 'aggregation\.proj_dim' must be >= 0"),
    ("aggregation:\n  type: weighted_sum\n  merge: concat\n", r"aggregation\.merge"),
]


def config_error(tmp_path, yaml: str, message: str) -> None:
    """Loading a config file of ``yaml`` fails with ``message``."""
    path = tmp_path / "c.yaml"
    path.write_text(yaml)
    with pytest.raises(SpkpeftError, match=message):
        load_config(path)


@pytest.mark.parametrize("yaml, message", AGGREGATION_CONFIG_ERRORS)
def test_aggregation_config_errors(tmp_path, yaml, message):
    config_error(tmp_path, yaml, message)


def test_aggregation_config_reads_the_new_keys(tmp_path):
    path = tmp_path / "a.yaml"
    path.write_text("aggregation:\n  type: attentive_merge\n  merge: concat\n  reduction: 4\n  proj_dim: 128\n"
                    "  proj_hidden: 256\n  include_input: true\n")
    assert load_config(path).aggregation == AttentiveMergeConfig(reduction=4, proj_dim=128, proj_hidden=256,
                                                                 include_input=True)


# ---------------------------------------------------------------------------- LSTM back-end


def test_lstm_is_registered_with_the_papers_defaults():
    assert "lstm" in HEADS
    cfg = LSTMConfig()
    assert (cfg.hidden_size, cfg.num_layers, cfg.bidirectional, cfg.dropout) == (192, 1, False, 0.0)
    head = build_head(cfg, 32)
    assert isinstance(head, LSTMHead) and head.embed_dim == 192
    assert build_head(LSTMConfig(hidden_size=8, bidirectional=True), 32).embed_dim == 16
    # one LSTM layer on D=1024 inputs: 935,424 parameters, the ~936k reported for AttM-LSTM
    assert sum(p.numel() for p in build_head(cfg, 1024).parameters()) == 4 * 192 * (1024 + 192 + 2)


@pytest.mark.parametrize("bidirectional, num_layers", [(False, 1), (True, 2)])
def test_lstm_padded_utterance_equals_alone(bidirectional, num_layers):
    torch.manual_seed(0)
    head = build_head(LSTMConfig(hidden_size=6, num_layers=num_layers, bidirectional=bidirectional), 5).eval()
    feats = torch.randn(3, 9, 5)
    lengths = torch.tensor([4, 9, 6])  # unsorted
    feats[0, 4:] = 1e3  # padding garbage
    feats[2, 6:] = -1e3
    batch = head(feats, lengths)
    assert batch.shape == (3, head.embed_dim)
    for b, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(head(feats[b:b + 1, :n], torch.tensor([n])), batch[b:b + 1], atol=ATOL, rtol=0)
        torch.testing.assert_close(head(feats[b:b + 1, :n]), batch[b:b + 1], atol=ATOL, rtol=0)  # lengths None


def test_lstm_output_is_the_mean_of_the_valid_outputs():
    torch.manual_seed(0)
    head = build_head(LSTMConfig(hidden_size=4), 3)
    feats = torch.randn(1, 6, 3)
    out, _ = head.lstm(feats[:, :4])
    torch.testing.assert_close(head(feats, torch.tensor([4])), out.mean(1), atol=ATOL, rtol=0)


LSTM_CONFIG_ERRORS = [
    ("head:\n  type: lstm\n  hidden_size: 0\n", r"key 'head\.hidden_size' must be >= 1, got 0"),
    ("head:\n  type: lstm\n  num_layers: 0\n", r"key 'head\.num_layers' must be >= 1, got 0"),
    ("head:\n  type: lstm\n  dropout: 1.5\n", r"key 'head\.dropout' must be in \[0, 1\), got 1.5"),
    ("head:\n  type: lstm\n  bidirectional: 2\n", r"head\.bidirectional"),
    ("head:\n  type: lstm\n  channels: 8\n", r"head\.channels"),
]


@pytest.mark.parametrize("yaml, message", LSTM_CONFIG_ERRORS)
def test_lstm_config_errors(tmp_path, yaml, message):
    config_error(tmp_path, yaml, message)


def test_lstm_builder_validates():
    with pytest.raises(SpkpeftError, match=r"head\.hidden_size must be >= 1, got 0"):
        build_head(LSTMConfig(hidden_size=0), 8)
    with pytest.raises(SpkpeftError, match=r"head\.dropout must be 0 with head\.num_layers 1"):
        build_head(LSTMConfig(dropout=0.1), 8)
    assert build_head(LSTMConfig(num_layers=2, dropout=0.1), 8).lstm.dropout == 0.1


# ---------------------------------------------------------------------------- wiring


@pytest.mark.usefixtures("isolated_model_cache")
def test_build_model_attentive_merge_with_lstm_head(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("upstream:\n  name: random:tiny_wavlm\npeft:\n  method: frozen\n"
                    "aggregation:\n  type: attentive_merge\n  proj_dim: 40\n  proj_hidden: 64\n"
                    "head:\n  type: lstm\n  hidden_size: 12\n")
    cfg = load_config(path)
    torch.manual_seed(0)
    model = build_model(cfg, num_classes=2).eval()
    assert isinstance(model.aggregation, ConcatAttentiveMerge) and model.aggregation.output_dim == 40
    assert model.aggregation.num_layers == model.upstream.num_layers  # h_1 .. h_L
    assert isinstance(model.head, LSTMHead) and model.head.lstm.input_size == 40
    seen = {}
    def record(module, args):
        seen.setdefault("shape", tuple(args[0].shape))

    model.head.register_forward_pre_hook(record)
    wavs, lens = torch.randn(2, 4000), torch.tensor([4000, 2500])
    with torch.no_grad():
        logits = model(wavs, lens)
        alone = model(wavs[1:, :2500], lens[1:])
    assert logits.shape == (2, 2) and seen["shape"][0] == 2 and seen["shape"][2] == 40
    torch.testing.assert_close(alone, logits[1:], atol=1e-4, rtol=0)
    counts = model.param_counts()
    assert counts["aggregation"] == sum(p.numel() for p in model.aggregation.parameters())
    assert counts["head"] == sum(p.numel() for p in model.head.parameters()) + 2 * 12 + 2


def test_lstm_accelerator_path_reads_no_length_and_equals_packing(monkeypatch):
    """A unidirectional LSTM on an accelerator runs on the padded batch and masks the mean
    (pack_padded_sequence would read the lengths on the host): the packed result."""
    import spkpeft.nn.lstm_head as lstm_head

    torch.manual_seed(0)
    head = build_head(LSTMConfig(hidden_size=6, num_layers=2), 5).eval()
    feats, lengths = torch.randn(3, 9, 5), torch.tensor([4, 9, 6])
    feats[0, 4:] = 1e3  # padding garbage
    packed = head(feats, lengths)
    monkeypatch.setattr(lstm_head, "host_reads_are_cheap", lambda device: False)
    torch.testing.assert_close(head(feats, lengths), packed, atol=ATOL, rtol=0)
