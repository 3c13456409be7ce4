"""Upstream loading (hub / local / random), hidden states, truncation and error messages."""

from __future__ import annotations


import pytest
import torch

from spkpeft.errors import SpkpeftError
from spkpeft.upstream import S3prlUpstream as Upstream, load_upstream
from spkpeft.upstream.s3prl import random_arch, sources

TINY = ["tiny_wavlm", "tiny_wav2vec2", "tiny_hubert"]
ATOL = 1e-5


pytestmark = pytest.mark.usefixtures("isolated_model_cache")


def batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(3, 12000, generator=gen), torch.tensor([12000, 9000, 5000])


def forward(up: Upstream, wavs, lens):
    with torch.no_grad():
        return up.eval()(wavs, lens)


@pytest.mark.parametrize("arch", TINY)
def test_hidden_states_match_s3prl(arch):
    """Our block loop, run on a padded batch, reproduces S3PRLUpstream's hidden states of
    each utterance run alone, on every frame the utterance has alone (GroupNorm models
    included: s3prl itself would normalise over the padding of a batch)."""
    from s3prl.nn import S3PRLUpstream

    up = load_upstream(f"random:{arch}")
    with random_arch.random_checkpoint(arch) as (fmt, path):
        ref = S3PRLUpstream(fmt, path_or_url=str(path)).eval()
    wavs, lens = batch()
    hidden, lengths = forward(up, wavs, lens)
    assert len(hidden) == up.num_hidden
    assert lengths.dtype == torch.long and lengths.shape == (3,)
    for b in range(3):
        with torch.no_grad():
            ref_hidden, _ = ref(wavs[b:b + 1, : lens[b]], lens[b:b + 1])
        assert len(ref_hidden) == up.num_hidden
        n = int(lengths[b])
        alone, _ = forward(up, wavs[b:b + 1, : lens[b]], lens[b:b + 1])
        assert alone[0].shape[1] == n  # the frames the utterance has alone (the CNN's output)
        assert ref_hidden[0].shape[1] >= n  # s3prl pads to ceil(S / stride) frames, repeating the last
        for ours, theirs in zip(hidden, ref_hidden):
            assert ours.shape[-1] == up.hidden_dim
            torch.testing.assert_close(ours[b, :n], theirs[0, :n], atol=ATOL, rtol=0)


@pytest.mark.parametrize("arch", TINY)
def test_truncation_keeps_prefix_and_removes_layers(arch):
    full = load_upstream(f"random:{arch}")
    cut = load_upstream(f"random:{arch}", num_layers=1)
    assert cut.num_layers == 1 and cut.num_hidden == 2
    assert len(cut.model.encoder.layers) == 1  # the later blocks are gone, not skipped
    assert cut.num_base_params() < full.num_base_params()
    wavs, lens = batch(1)
    h_full, l_full = forward(full, wavs, lens)
    h_cut, l_cut = forward(cut, wavs, lens)
    assert torch.equal(l_full, l_cut)
    for a, b in zip(h_cut, h_full[:2]):
        torch.testing.assert_close(a, b, atol=ATOL, rtol=0)
    assert load_upstream(f"random:{arch}", num_layers=99).num_layers == full.num_layers


def test_pre_ln_truncation_drops_final_layer_norm():
    """Pre-LN models: the final LayerNorm belongs to the last block only."""
    cut = load_upstream("random:tiny_wav2vec2", num_layers=1)
    assert cut.model.encoder.layer_norm is None and not cut.final_layer_norm
    assert load_upstream("random:tiny_wav2vec2").final_layer_norm


def test_random_checkpoint_cache_and_local_formats(tmp_path):
    """random:<arch> is an ordinary local checkpoint: cached, deterministic, reloadable by path."""
    up = load_upstream("random:tiny_hubert")
    cache = random_arch.cache_dir() / random_arch.cache_key("tiny_hubert", random_arch.DEFAULT_SEED)
    assert cache.is_file()
    ckpt = torch.load(cache, weights_only=True)
    assert set(ckpt) == {"task_cfg", "model_cfg", "model_weight", "dictionaries_symbols"}
    again = load_upstream("random:tiny_hubert")
    for (n1, p1), (n2, p2) in zip(up.state_dict().items(), again.state_dict().items()):
        assert n1 == n2 and torch.equal(p1, p2)
    wavs, lens = batch(2)
    expected, _ = forward(up, wavs, lens)
    for name in (str(cache), f"hubert_local:{cache}"):
        got, _ = forward(load_upstream(name), wavs, lens)
        torch.testing.assert_close(got[-1], expected[-1], atol=0, rtol=0)
    assert set(random_arch.make_checkpoint("tiny_wavlm")) == {"cfg", "model"}
    assert set(random_arch.make_checkpoint("tiny_wav2vec2")) == {"task_cfg", "model_cfg", "model_weight"}


def test_input_normalisation_follows_checkpoint_config():
    """tiny_wav2vec2 has normalize=True (like the large models): invariant to input gain."""
    wavs, lens = batch(3)
    norm = load_upstream("random:tiny_wav2vec2")
    assert norm.normalize_input
    a, _ = forward(norm, wavs, lens)
    b, _ = forward(norm, wavs * 5.0, lens)
    torch.testing.assert_close(a[-1], b[-1], atol=1e-4, rtol=0)
    assert not load_upstream("random:tiny_wavlm").normalize_input


def test_padding_does_not_change_valid_frames():
    """An utterance alone and inside a padded batch gives the same hidden states."""
    up = load_upstream("random:tiny_wav2vec2")
    wavs, lens = batch(4)
    h_batch, l_batch = forward(up, wavs, lens)
    h_alone, l_alone = forward(up, wavs[2:, : lens[2]], lens[2:])
    n = int(l_alone[0])
    assert int(l_batch[2]) == n
    for a, b in zip(h_batch, h_alone):
        torch.testing.assert_close(a[2, :n], b[0, :n], atol=ATOL, rtol=0)


def test_published_parameter_counts():
    """random:wavlm_base_plus ~94.4M; random:wav2vec2_large 317.4M with its pre-training heads."""
    base = random_arch.build_model(random_arch.get_arch("wavlm_base_plus"))
    assert abs(sum(p.numel() for p in base.parameters()) - 94.4e6) < 0.5e6
    with torch.device("meta"):
        large = random_arch.build_model(random_arch.get_arch("wav2vec2_large"))
    assert abs(sum(p.numel() for p in large.parameters()) - 317.4e6) < 0.5e6
    up = Upstream(large, "random:wav2vec2_large", normalize_input=True)
    assert up.num_layers == 24 and up.hidden_dim == 1024 and up.num_heads == 16
    assert abs(up.num_base_params() - 315.4e6) < 0.5e6  # quantiser and projection heads dropped


def _save(path, obj):
    torch.save(obj, path)
    return str(path)


def test_error_unknown_random_arch():
    with pytest.raises(SpkpeftError, match=r"unknown random upstream architecture 'random:nope'.*random:tiny_wavlm"):
        load_upstream("random:nope")


def test_error_missing_checkpoint(tmp_path):
    with pytest.raises(SpkpeftError, match=r"missing\.pt: checkpoint file not found; expected .*wavlm_local"):
        load_upstream(str(tmp_path / "missing.pt"))


def test_error_corrupt_checkpoint(tmp_path):
    path = tmp_path / "corrupt.pt"
    path.write_bytes(b"this is not a checkpoint")
    with pytest.raises(SpkpeftError, match=r"corrupt\.pt: not a readable PyTorch checkpoint.*expected"):
        load_upstream(str(path))


def test_error_truncated_checkpoint(tmp_path):
    with random_arch.random_checkpoint("tiny_wavlm") as (_, path):
        data = path.read_bytes()
    bad = tmp_path / "truncated.pt"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(SpkpeftError, match=r"truncated\.pt: not a readable PyTorch checkpoint"):
        load_upstream(str(bad))


def test_error_wrong_format(tmp_path):
    path = _save(tmp_path / "other.pt", {"state_dict": {"w": torch.zeros(1)}})
    with pytest.raises(SpkpeftError, match=r"unrecognised checkpoint format \(top-level keys: state_dict\).*wavlm_local \{'cfg', 'model'\}"):
        load_upstream(path)
    listing = _save(tmp_path / "list.pt", [1, 2])
    with pytest.raises(SpkpeftError, match=r"holds a list, not a dict"):
        load_upstream(listing)


def test_error_format_prefix_mismatch():
    with random_arch.random_checkpoint("tiny_wavlm") as (_, path):
        with pytest.raises(SpkpeftError, match=r"not a hubert_local checkpoint: missing key\(s\) 'task_cfg'"):
            load_upstream(f"hubert_local:{path}")


def test_error_weights_do_not_match_config(tmp_path):
    ckpt = random_arch.make_checkpoint("tiny_wavlm")
    ckpt["cfg"]["encoder_embed_dim"] = 128
    path = _save(tmp_path / "mismatch.pt", ckpt)
    with pytest.raises(SpkpeftError, match=r"could not load .*mismatch\.pt as wavlm_local"):
        load_upstream(path)


def test_error_unknown_and_unsupported_hub_names():
    with pytest.raises(SpkpeftError, match=r"unknown upstream 'wavlm_base_pluss'.*did you mean wavlm_base_plus"):
        load_upstream("wavlm_base_pluss")
    with pytest.raises(SpkpeftError, match=r"s3prl upstream 'apc' is not a transformer"):
        load_upstream("apc")


def test_detect_format_uses_model_name():
    ckpt = {"task_cfg": {}, "model_cfg": {"_name": "hubert"}, "model_weight": {"w": 0}}
    assert sources.detect_format("x.pt", ckpt) == "hubert_local"
    ckpt["model_cfg"] = {"_name": "wav2vec2"}
    assert sources.detect_format("x.pt", ckpt) == "wav2vec2_local"
    ckpt["model_cfg"] = {}
    ckpt["dictionaries_symbols"] = [[]]
    assert sources.detect_format("x.pt", ckpt) == "hubert_local"


def test_num_layers_must_be_positive():
    with pytest.raises(SpkpeftError, match="num_layers must be a positive integer"):
        load_upstream("random:tiny_wavlm", num_layers=0)


def test_a_family_must_implement_the_whole_contract():
    """register_family refuses a class that leaves abstract methods of UpstreamBase unimplemented
    (naming them), before any experiment could fail on them at export time."""
    from spkpeft.upstream.base import UPSTREAMS, UpstreamBase, UpstreamConfig, register_family

    class Half(UpstreamBase):
        @classmethod
        def from_config(cls, cfg):
            return cls()

    with pytest.raises(SpkpeftError, match=r"upstream family 'half' \(Half\) does not implement: .*check_name.*"
                                           r"name_for_weights.*weights_file"):
        register_family("half", UpstreamConfig, Half)
    with pytest.raises(SpkpeftError, match="not a subclass of UpstreamBase"):
        register_family("half", UpstreamConfig, dict)
    assert "half" not in UPSTREAMS
