"""conf/{sv,cm,cls}/whisper_*.yaml: every one loads, the papers' settings are what the comments
say, and each config with settings of its own (all sv ones) builds its task model on
random:tiny_whisper and takes a training step."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from spkpeft.tasks.base import TrainingData, get_task
from spkpeft.tasks.config import load_config

pytestmark = pytest.mark.usefixtures("isolated_model_cache")
CONF = Path(__file__).resolve().parent.parent / "conf"
CONFIGS = sorted(f"{p.parent.name}/{p.name}" for task in ("sv", "cm", "cls") for p in (CONF / task).glob("whisper_*.yaml"))


def _own_settings(path: str) -> bool:
    """A config that sets more than its bases (the plain task + method pairs are built for sv)."""
    lines = [line for line in (CONF / path).read_text().splitlines() if line.strip() and not line.startswith("#")]
    return len(lines) > 1 or path.startswith("sv/")


BUILT = [path for path in CONFIGS if _own_settings(path)]
#: keys that fit the paper configs to the 2-block, 64-dim test encoder
TINY = {"upstream.name": "random:tiny_whisper"}
FIT = {"pmfa": {"upstream.num_layers": 2, "aggregation.first": 1, "aggregation.last": 2},
       "spectral_lora": {"peft.top_r": 16}}
#: a small head keeps the step cheap (the configs' heads are tested elsewhere)
SMALL_HEAD = {"ecapa": {"head.channels": 32, "head.se_channels": 8, "head.attention_channels": 8},
              "pooled": {"head.attention_channels": 8}}


def test_paper_settings():
    pmfa = load_config(CONF / "sv" / "whisper_pmfa.yaml")
    assert (pmfa.upstream.type, pmfa.upstream.name, pmfa.upstream.num_layers) == ("whisper", "openai/whisper-large-v2", 24)
    assert (pmfa.aggregation.type, pmfa.aggregation.first, pmfa.aggregation.last) == ("pmfa", 17, 24)
    assert (pmfa.head.type, pmfa.head.pooling, pmfa.head.embed_dim, pmfa.head.attention_channels) == ("pooled", "asp", 192, 128)
    assert (pmfa.loss.margin, pmfa.loss.scale, pmfa.data.crop_seconds) == (0.2, 32.0, 5.0)
    assert (pmfa.train.epochs, pmfa.train.freeze_upstream_epochs, pmfa.peft.method, pmfa.peft.freeze_cnn) == (12, 4, "full_ft", False)
    lora = load_config(CONF / "sv" / "whisper_pmfa_lora.yaml")
    assert (lora.peft.method, lora.peft.rank, lora.peft.targets, lora.peft.layers) == ("lora", 16, ["q", "k", "v", "out"], list(range(16, 24)))
    base = load_config(CONF / "sv" / "whisper_pmfa_base.yaml")
    assert (base.upstream.name, base.upstream.num_layers, base.aggregation.first, base.aggregation.last) == (
        "pretrained:whisper_base", 5, 4, 5)
    kawa = load_config(CONF / "cm" / "whisper_kawa.yaml")
    assert (kawa.upstream.name, kawa.aggregation.type, kawa.train.lr_head, kawa.train.lr_peft, kawa.train.weight_decay) == (
        "pretrained:whisper_tiny_en", "last", 1e-4, 1e-6, 1e-4)
    assert (kawa.train.freeze_upstream_epochs, kawa.peft.method) == (10, "full_ft")
    assert load_config(CONF / "cls" / "whisper_frozen.yaml").loss.label_smoothing == 0.1
    for path in CONFIGS:
        cfg = load_config(CONF / path)
        assert cfg.upstream.type == "whisper" and cfg.upstream.long_inputs == "chunk", path


@pytest.mark.parametrize("path", BUILT)
def test_builds_and_trains_a_step(path):
    overrides = dict(TINY)
    for key, extra in FIT.items():
        if key in path:
            overrides.update(extra)
    if "pmfa_lora" in path:
        overrides["peft.layers"] = [1]
    overrides.update(SMALL_HEAD[load_config(CONF / path).head.type])
    cfg = load_config(CONF / path, overrides)
    task = get_task(cfg)
    data = TrainingData(items=[], class_names=["a", "b", "c"], num_classes=3, class_counts=[1, 1, 1])
    model = task.build_model(cfg, data)
    loss = task.build_loss(cfg, model, data)
    model.train()
    torch.manual_seed(0)
    wavs, lens, labels = torch.randn(2, 16000) * 0.1, torch.tensor([16000, 12000]), torch.tensor([0, 1])
    value = loss(model(wavs, lens), labels)
    value = value[0] if isinstance(value, tuple) else value
    value.backward()
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert trainable and any(p.grad is not None and p.grad.abs().sum() > 0 for p in trainable)
