"""Strict YAML configs: composition through ``base:``, unknown keys, wrong types, overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import REPO
from spkpeft.nn.aggregation import AggregationConfig
from spkpeft.tasks.config import Config, config_from_dict, config_to_dict, load_config
from spkpeft.errors import SpkpeftError
from spkpeft.nn.heads import HeadConfig
from spkpeft.peft import (
    AdapterConfig,
    BitFitConfig,
    FrozenConfig,
    FullFinetuneConfig,
    LoRAConfig,
    PrefixConfig,
    PromptConfig,
    SpectralLoRAConfig,
    SVAdapterConfig,
)

CONF = Path(__file__).resolve().parents[1] / "conf"
VARIANTS = {
    "frozen": FrozenConfig,
    "full_ft": FullFinetuneConfig,
    "lora": LoRAConfig,
    "spectral_lora": SpectralLoRAConfig,
    "adapter_houlsby": AdapterConfig,
    "adapter_pfeiffer": AdapterConfig,
    "adapter_parallel_sv": SVAdapterConfig,
    "prompt": PromptConfig,
    "prefix": PrefixConfig,
    "bitfit": BitFitConfig,
    "attentive_merge": FrozenConfig,
}


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_variant_loads_on_the_shared_base(variant):
    cfg = load_config(CONF / f"{variant}.yaml")
    assert type(cfg.peft) is VARIANTS[variant]
    assert cfg.upstream.name == "wavlm_base_plus"
    assert cfg.head == HeadConfig(channels=512, embed_dim=192)
    assert config_from_dict(config_to_dict(cfg)) == cfg


def test_paper_defaults():
    lora = load_config(CONF / "lora.yaml").peft
    assert (lora.rank, lora.targets, lora.layers) == (16, ["q", "v"], "all")
    houlsby = load_config(CONF / "adapter_houlsby.yaml").peft
    assert (houlsby.style, houlsby.placement, houlsby.bottleneck) == ("houlsby", "sequential", 64)
    assert load_config(CONF / "adapter_pfeiffer.yaml").peft.style == "pfeiffer"
    prompt = load_config(CONF / "prompt.yaml").peft
    assert (prompt.deep, prompt.attention, prompt.init) == (True, "joint", "hidden")
    prefix = load_config(CONF / "prefix.yaml").peft
    assert (prefix.attention, prefix.reparametrize, prefix.mlp_hidden) == ("joint", True, 512)
    spectral = load_config(CONF / "spectral_lora.yaml").peft
    assert (spectral.targets, spectral.top_r, spectral.rank) == (["q", "k"], 256, 16)
    merge = load_config(CONF / "attentive_merge.yaml")
    assert merge.aggregation.type == "attentive_merge" and merge.upstream.num_layers == 8
    assert load_config(CONF / "full_ft.yaml").peft.freeze_cnn is True


def test_conf_directory_has_every_variant():
    """Every method: an overlay in conf/methods/, a complete config per task, an alias at the top."""
    for folder, extra in (("methods", set()), ("sv", {"base", "mini"}), ("cls", {"base", "mini"}), (".", {"mini"})):
        names = {p.stem for p in (CONF / folder).glob("*.yaml")}
        assert set(VARIANTS) | extra <= names, folder


@pytest.mark.parametrize("task", ["sv", "cls"])
def test_task_configs_compose_base_and_method_overlay(task):
    """conf/<task>/<variant>.yaml = the task base + conf/methods/<variant>.yaml (``base:`` a list)."""
    for variant in VARIANTS:
        cfg = load_config(CONF / task / f"{variant}.yaml")
        method = load_config(CONF / "sv" / f"{variant}.yaml").peft
        assert cfg.task.type == task and cfg.peft == method
    cls = load_config(CONF / "cls" / "lora.yaml")
    assert (cls.head.type, cls.loss.type) == ("pooled", "ce")


def test_unknown_key_names_file_and_dotted_key(tmp_path):
    path = write(tmp_path, "lora.yaml", "peft:\n  method: lora\n  rnak: 4\n")
    with pytest.raises(SpkpeftError) as err:
        load_config(path)
    message = str(err.value)
    assert message.startswith(f"{path}: unknown key 'peft.rnak' (expected one of: method, rank, alpha")


def test_unknown_section(tmp_path):
    path = write(tmp_path, "c.yaml", "upstrem:\n  name: x\n")
    with pytest.raises(SpkpeftError, match=r"c\.yaml: unknown section 'upstrem' \(expected one of: task, upstream, peft, aggregation, head"):
        load_config(path)


def test_wrong_type_names_key_and_types(tmp_path):
    path = write(tmp_path, "c.yaml", "peft:\n  method: lora\n  rank: '16'\n")
    with pytest.raises(SpkpeftError, match=r"c\.yaml: key 'peft\.rank' must be int, got str"):
        load_config(path)
    path = write(tmp_path, "d.yaml", "upstream:\n  num_layers: true\n")
    with pytest.raises(SpkpeftError, match=r"key 'upstream\.num_layers' must be int or null, got bool"):
        load_config(path)
    path = write(tmp_path, "e.yaml", "peft:\n  method: lora\n  targets: q\n")
    with pytest.raises(SpkpeftError, match=r"key 'peft\.targets' must be list of str, got str"):
        load_config(path)
    path = write(tmp_path, "f.yaml", "head:\n  channels: 1.5\n")
    with pytest.raises(SpkpeftError, match=r"key 'head\.channels' must be int, got float"):
        load_config(path)
    path = write(tmp_path, "g.yaml", "peft: [lora]\n")
    with pytest.raises(SpkpeftError, match=r"key 'peft' must be a mapping, got list"):
        load_config(path)


def test_int_is_accepted_for_float(tmp_path):
    path = write(tmp_path, "c.yaml", "peft:\n  method: lora\n  alpha: 16\n")
    alpha = load_config(path).peft.alpha
    assert alpha == 16.0 and isinstance(alpha, float)


def test_choices_and_checks(tmp_path):
    path = write(tmp_path, "c.yaml", "peft:\n  method: lora\n  targets: [q, x]\n")
    with pytest.raises(SpkpeftError, match=r"key 'peft\.targets' must be one of: q, k, v, out, fc1, fc2, ffn, attn; got 'x'"):
        load_config(path)
    path = write(tmp_path, "d.yaml", "peft:\n  method: lorax\n")
    with pytest.raises(SpkpeftError, match=r"key 'peft\.method' must be one of: .*lora.*got 'lorax'"):
        load_config(path)
    path = write(tmp_path, "e.yaml", "peft:\n  method: lora\n  rank: 0\n")
    with pytest.raises(SpkpeftError, match=r"key 'peft\.rank' must be > 0, got 0"):
        load_config(path)
    path = write(tmp_path, "f.yaml", "peft:\n  method: adapter\n  layers: middle\n")
    with pytest.raises(SpkpeftError, match=r"key 'peft\.layers' must be a list of block indices or one of: all, intermediate"):
        load_config(path)
    path = write(tmp_path, "g.yaml", "aggregation:\n  type: mean\n")
    with pytest.raises(SpkpeftError, match=r"key 'aggregation\.type' must be one of: weighted_sum, attentive_merge"):
        load_config(path)


def test_base_chain_merges_under_own_values(tmp_path):
    write(tmp_path, "root.yaml", "upstream:\n  name: root\n  num_layers: 3\nhead:\n  embed_dim: 256\n")
    sub = tmp_path / "sub"
    sub.mkdir()
    write(sub, "mid.yaml", "base: ../root.yaml\nupstream:\n  name: mid\npeft:\n  method: lora\n  rank: 4\n")
    top = write(sub, "top.yaml", "base: mid.yaml\npeft:\n  alpha: 8\n")
    cfg = load_config(top)
    assert cfg.upstream == type(cfg.upstream)(name="mid", num_layers=3)
    assert cfg.peft == LoRAConfig(rank=4, alpha=8.0)
    assert cfg.head.embed_dim == 256 and cfg.head.channels == 512
    assert cfg.aggregation == AggregationConfig()


def test_changing_method_replaces_the_base_section(tmp_path):
    write(tmp_path, "base.yaml", "peft:\n  method: lora\n  rank: 4\n")
    top = write(tmp_path, "top.yaml", "base: base.yaml\npeft:\n  method: prefix\n  length: 2\n")
    assert load_config(top).peft == PrefixConfig(length=2)


def test_error_in_base_names_the_base_file(tmp_path):
    base = write(tmp_path, "base.yaml", "head:\n  chanels: 3\n")
    top = write(tmp_path, "top.yaml", "base: base.yaml\n")
    with pytest.raises(SpkpeftError, match=rf"^{base}: unknown key 'head\.chanels'"):
        load_config(top)


def test_base_errors(tmp_path):
    path = write(tmp_path, "a.yaml", "base: missing.yaml\n")
    with pytest.raises(SpkpeftError, match=r"a\.yaml: base config 'missing\.yaml' not found"):
        load_config(path)
    write(tmp_path, "x.yaml", "base: y.yaml\n")
    loop = write(tmp_path, "y.yaml", "base: x.yaml\n")
    with pytest.raises(SpkpeftError, match="circular 'base' chain"):
        load_config(loop)


def test_yaml_syntax_error_names_line(tmp_path):
    path = write(tmp_path, "c.yaml", "peft:\n  method: lora\n  rank: [1\n")
    with pytest.raises(SpkpeftError, match=rf"{path}:\d+: invalid YAML"):
        load_config(path)
    with pytest.raises(SpkpeftError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_overrides(tmp_path):
    cfg = load_config(CONF / "lora.yaml", {"upstream.name": "random:tiny_wavlm", "peft": {"rank": 2}})
    assert cfg.upstream.name == "random:tiny_wavlm" and cfg.peft.rank == 2 and cfg.peft.targets == ["q", "v"]
    with pytest.raises(SpkpeftError, match=r"<overrides>: unknown key 'peft\.rnak'"):
        load_config(CONF / "lora.yaml", {"peft.rnak": 2})


def test_defaults_and_dict_round_trip():
    cfg = config_from_dict({})
    assert cfg == Config()
    data = config_to_dict(load_config(CONF / "spectral_lora.yaml"))
    assert data["peft"]["method"] == "spectral_lora" and data["peft"]["top_r"] == 256


@pytest.mark.parametrize("variant", ["lora", "spectral_lora"])
def test_checkpoint_averaging_is_refused_for_factorised_methods(variant, tmp_path):
    """mean(B) mean(A) is not mean(B A): averaging LoRA-style factors is an error naming the key."""
    top = tmp_path / "top.yaml"
    top.write_text(f"base: {CONF / (variant + '.yaml')}\ntrain:\n  average_last: 3\n")
    with pytest.raises(SpkpeftError, match=rf"{top}: train.average_last must be 0 for peft.method '{variant}'"):
        load_config(top)
    assert load_config(CONF / "adapter_houlsby.yaml", {"train.average_last": 3}).train.average_last == 3


def test_mini_comparison_configs():
    """conf/sv/mini_<row>.yaml: the mini settings with another method, or the fbank front end."""
    mini = load_config(CONF / "sv" / "mini.yaml")
    fbank = load_config(CONF / "sv" / "mini_fbank.yaml")
    assert (fbank.task.type, fbank.upstream.type, fbank.upstream.num_bins, fbank.upstream.scale) == ("sv", "fbank", 80, "mel")
    assert fbank.peft.method == "frozen" and fbank.head == mini.head and fbank.train == mini.train
    for method in ("frozen", "lora", "full_ft"):
        cfg = load_config(CONF / "sv" / f"mini_{method}.yaml")
        assert cfg.peft == load_config(CONF / "sv" / f"{method}.yaml").peft
        assert (cfg.upstream, cfg.head, cfg.train, cfg.data) == (mini.upstream, mini.head, mini.train, mini.data)


def test_overlays_merge_deep_in_order_and_errors_name_the_overlay(tmp_path):
    """Two overlays that both touch data.augment keep each other's keys (the second wins where
    they overlap); a bad key in an overlay is reported with the overlay's file name."""
    noise = tmp_path / "noise.yaml"
    noise.write_text("data:\n  augment:\n    musan_dir: /musan\n    prob: 0.8\n")
    rir = tmp_path / "rir.yaml"
    rir.write_text("data:\n  augment:\n    rir_dir: /rirs\n    prob: 0.5\n")
    cfg = load_config(REPO / "conf" / "sv" / "mini.yaml", overlays=[noise, rir])
    augment = cfg.data.augment
    assert (augment.musan_dir, augment.rir_dir, augment.prob) == ("/musan", "/rirs", 0.5)
    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  augment:\n    musan_dri: /musan\n")
    with pytest.raises(SpkpeftError, match=rf"^{bad}: unknown key 'data\.augment\.musan_dri'"):
        load_config(REPO / "conf" / "sv" / "mini.yaml", overlays=[noise, bad])
    bad.write_text("train:\n  scheduler: linear\n")
    with pytest.raises(SpkpeftError, match=rf"^{bad}: train\.scheduler must be"):
        load_config(REPO / "conf" / "sv" / "mini.yaml", overlays=[bad])
