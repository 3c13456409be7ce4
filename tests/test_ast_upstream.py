"""The AST upstream family: parity with transformers' ASTModel and ASTFeatureExtractor,
position embeddings adapted (not dropped), output modes, batch invariance, bad input."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import ASTFeatureExtractor, ASTModel

from spkpeft.errors import SpkpeftError
from spkpeft.upstream import UPSTREAMS, check_upstream
from spkpeft.upstream.ast import AstConfig, load_ast
from spkpeft.upstream.ast.features import AstFeatures, SpecAugmentConfig, spec_augment
from spkpeft.upstream.ast.positions import adapt_position_embeddings
from spkpeft.upstream.ast.sources import random_model_dir

pytestmark = pytest.mark.usefixtures("isolated_model_cache")
LENGTHS = (16000, 11000, 5000)


def waves(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    wavs = torch.zeros(len(LENGTHS), max(LENGTHS))
    for row, n in enumerate(LENGTHS):
        wavs[row, :n] = torch.randn(n, generator=g) * 0.1
    return wavs, torch.tensor(LENGTHS)


def test_features_equal_ast_feature_extractor():
    """Kaldi fbank (Hanning), zero padding / cutting to max_length, AudioSet normalisation."""
    wavs, lens = waves()
    for max_length in (80, 120):  # cuts the longest utterance; pads the others
        ref = ASTFeatureExtractor(max_length=max_length)(
            [wavs[i, :n].numpy() for i, n in enumerate(LENGTHS)], sampling_rate=16000, return_tensors="pt")
        ours, frames = AstFeatures(128, max_length)(wavs, lens)
        torch.testing.assert_close(ours, ref["input_values"], atol=2e-4, rtol=0)
        assert frames.tolist() == [min(max_length, 1 + (n - 400) // 160) for n in LENGTHS]


def test_hidden_states_equal_ast_model():
    """No method: our block loop gives transformers' hidden states and last_hidden_state."""
    up = load_ast("random:tiny_ast").eval()
    wavs, lens = waves()
    with torch.no_grad():
        hidden, lengths = up(wavs, lens)
        feats, _ = up.features(wavs, lens)
        ref = up.model(feats, output_hidden_states=True)
    assert len(hidden) == up.num_layers + 1 == 3
    for ours, theirs in zip(hidden[:-1], ref.hidden_states[:-1]):
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)
    torch.testing.assert_close(hidden[-1], ref.last_hidden_state, atol=1e-5, rtol=0)
    assert lengths.tolist() == [2 + 12 * 12] * 3


def test_random_arch_is_a_local_directory_and_loads_by_path():
    path = random_model_dir("tiny_ast")
    assert (path / "config.json").is_file() and (path / "model.safetensors").is_file()
    by_name, by_path = load_ast("random:tiny_ast").eval(), load_ast(str(path)).eval()
    for (name, a), (_, b) in zip(by_name.model.state_dict().items(), by_path.model.state_dict().items()):
        assert torch.equal(a, b), name
    assert json.loads((path / "config.json").read_text())["max_length"] == 128


@pytest.mark.parametrize("max_length", [48, 128, 300])
def test_position_embeddings_cropped_or_interpolated_not_dropped(max_length):
    """The checkpoint's 12 x 12 grid becomes 12 x t': centred crop (t' < 12) or bilinear
    interpolation (t' > 12) of the saved table, as the original AST code does.  Loading the
    way PETL-AST does (from_pretrained(max_length=M, ignore_mismatched_sizes=True)) resets the
    table, which this test would catch."""
    path = random_model_dir("tiny_ast")
    saved = ASTModel.from_pretrained(path).embeddings.position_embeddings.detach()
    up = load_ast("random:tiny_ast", max_length=max_length)
    table = up.model.embeddings.position_embeddings.detach()
    t_new = (max_length - 16) // 10 + 1
    assert table.shape == (1, 2 + 12 * t_new, 64) and up.grid == (12, t_new)
    torch.testing.assert_close(table[:, :2], saved[:, :2], atol=0, rtol=0)
    grid = saved[:, 2:].transpose(1, 2).reshape(1, 64, 12, 12)
    if t_new < 12:
        expected = grid[..., 6 - t_new // 2: 6 - t_new // 2 + t_new]
    else:
        expected = torch.nn.functional.interpolate(grid, size=(12, t_new), mode="bilinear", align_corners=False)
    torch.testing.assert_close(table[:, 2:], expected.reshape(1, 64, -1).transpose(1, 2), atol=1e-6, rtol=0)
    if t_new != 12:
        dropped = ASTModel.from_pretrained(path, max_length=max_length, ignore_mismatched_sizes=True)
        assert not torch.allclose(dropped.embeddings.position_embeddings.detach(), table, atol=1e-3)


def test_adapt_position_embeddings_is_identity_on_same_grid():
    table = torch.randn(1, 2 + 6 * 5, 4)
    assert adapt_position_embeddings(table, (6, 5), (6, 5)) is table
    cropped = adapt_position_embeddings(table, (6, 5), (4, 3))
    grid = table[:, 2:].transpose(1, 2).reshape(1, 4, 6, 5)[:, :, 1:5, 1:4]
    torch.testing.assert_close(cropped[:, 2:], grid.reshape(1, 4, 12).transpose(1, 2))


def test_output_modes_and_lengths():
    wavs, lens = waves()
    tokens = load_ast("random:tiny_ast").eval()
    with torch.no_grad():
        ref, _ = tokens(wavs, lens)
        for output in ("cls", "cls_dist", "frames"):
            up = load_ast("random:tiny_ast", output=output).eval()
            hidden, lengths = up(wavs, lens)
            last = ref[-1]
            if output == "cls":
                torch.testing.assert_close(hidden[-1], last[:, :1])
                assert lengths.tolist() == [1, 1, 1]
            elif output == "cls_dist":
                torch.testing.assert_close(hidden[-1][:, 0], (last[:, 0] + last[:, 1]) / 2)
            else:
                grid = last[:, 2:].reshape(3, 12, 12, 64)
                torch.testing.assert_close(hidden[-1], grid.mean(1))
                frames = [1 + (n - 400) // 160 for n in LENGTHS]
                assert lengths.tolist() == [min(12, (f - 16) // 10 + 1) for f in frames]


def test_batch_invariance():
    """An utterance gives the same hidden states alone and in a padded batch (frames output)."""
    up = load_ast("random:tiny_ast", output="frames").eval()
    wavs, lens = waves()
    with torch.no_grad():
        batched, blens = up(wavs, lens)
        for row, n in enumerate(LENGTHS):
            alone, alens = up(wavs[row: row + 1, :n], lens[row: row + 1])
            assert alens.item() == blens[row].item()
            for a, b in zip(alone, batched):
                torch.testing.assert_close(a[0], b[row], atol=1e-5, rtol=0)


def test_specaugment_train_only_and_bounded():
    torch.manual_seed(0)
    feats = torch.ones(4, 50, 20)
    masked = spec_augment(feats, SpecAugmentConfig(freq_mask=5, time_mask=10))
    for row in masked:
        zero_bins = (row == 0).all(0).sum().item()
        zero_frames = (row == 0).all(1).sum().item()
        assert zero_bins < 5 and zero_frames < 10
    assert torch.equal(spec_augment(feats, SpecAugmentConfig()), feats)
    up = load_ast("random:tiny_ast", specaugment=SpecAugmentConfig(freq_mask=24, time_mask=40))
    wavs, lens = waves()
    with torch.no_grad():
        a, _ = up.eval()(wavs, lens)
        b, _ = up.eval()(wavs, lens)
        torch.manual_seed(1)
        c, _ = up.train()(wavs, lens)
    torch.testing.assert_close(a[-1], b[-1], atol=0, rtol=0)
    assert not torch.allclose(a[-1], c[-1])


def test_truncation_keeps_prefix():
    full = load_ast("random:tiny_ast").eval()
    cut = load_ast("random:tiny_ast", num_layers=1).eval()
    assert cut.num_layers == 1 and cut.model.layernorm is None
    wavs, lens = waves()
    with torch.no_grad():
        a, _ = full(wavs, lens)
        b, _ = cut(wavs, lens)
        torch.testing.assert_close(b[1], a[1], atol=1e-6, rtol=0)


def test_config_section_and_errors(tmp_path):
    assert UPSTREAMS.get("ast").config is AstConfig
    check_upstream(AstConfig(name="random:tiny_ast"))
    check_upstream(AstConfig(name="MIT/ast-finetuned-audioset-10-10-0.4593"))  # form only, no download
    with pytest.raises(SpkpeftError, match=r"unknown random AST architecture 'random:nope'.*random:tiny_ast"):
        check_upstream(AstConfig(name="random:nope"))
    with pytest.raises(SpkpeftError, match=r"config.json: missing"):
        check_upstream(AstConfig(name=str(tmp_path)))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "wavlm"}))
    with pytest.raises(SpkpeftError, match=r"config.json: model_type is 'wavlm'"):
        check_upstream(AstConfig(name=str(tmp_path)))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "audio-spectrogram-transformer"}))
    with pytest.raises(SpkpeftError, match=r"no weights file"):
        check_upstream(AstConfig(name=str(tmp_path)))
    with pytest.raises(SpkpeftError, match=r"shorter than one patch"):
        load_ast("random:tiny_ast", max_length=10)


def _legacy_name(name: str) -> str:
    """transformers 4.x ``ASTForAudioClassification`` parameter names (the hub checkpoints')."""
    for new, old in (("layers.", "encoder.layer."), ("attention.q_proj", "attention.attention.query"),
                     ("attention.k_proj", "attention.attention.key"), ("attention.v_proj", "attention.attention.value"),
                     ("attention.o_proj", "attention.output.dense"), ("mlp.fc1", "intermediate.dense"),
                     ("mlp.fc2", "output.dense")):
        name = name.replace(new, old)
    return "audio_spectrogram_transformer." + name


def test_hub_layout_checkpoint_loads_every_weight(tmp_path):
    """A directory in the hub checkpoints' layout (ASTForAudioClassification, transformers 4.x
    names, a classifier head) loads through the local-directory path with every weight."""
    from safetensors.torch import save_file

    source = random_model_dir("tiny_ast")
    config = json.loads((source / "config.json").read_text())
    config["architectures"] = ["ASTForAudioClassification"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    ref = load_ast(str(source)).eval()
    state = {_legacy_name(k): v.contiguous() for k, v in ref.model.state_dict().items()}
    state["classifier.layernorm.weight"] = torch.ones(64)
    state["classifier.dense.weight"] = torch.zeros(3, 64)
    save_file(state, str(tmp_path / "model.safetensors"))
    up = load_ast(str(tmp_path)).eval()
    for name, value in ref.model.state_dict().items():
        assert torch.equal(up.model.state_dict()[name], value), name
    del state["audio_spectrogram_transformer.layers.0.attention.attention.query.weight".replace("layers.", "encoder.layer.")]
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(SpkpeftError, match=r"weights missing or of the wrong shape.*q_proj"):
        load_ast(str(tmp_path))
