"""conf/cls/ast_*.yaml and conf/sv/ast_mini.yaml: the paper code's defaults are what they say,
and each builds its task model on random:tiny_ast and takes a training step."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from spkpeft.tasks.base import TrainingData, get_task
from spkpeft.tasks.config import load_config

pytestmark = pytest.mark.usefixtures("isolated_model_cache")
CONF = Path(__file__).resolve().parent.parent / "conf"
AST_CLS = sorted(p.stem for p in (CONF / "cls").glob("ast_*.yaml") if p.stem != "ast_common")
AST_METHODS = [name for name in AST_CLS if not name.endswith("_paper")]  # *_paper: tests/test_paper_configs.py


def test_paper_defaults():
    common = load_config(CONF / "cls" / "ast_common.yaml")
    assert (common.upstream.type, common.upstream.max_length, common.upstream.output) == ("ast", 500, "tokens")
    assert (common.upstream.specaugment.freq_mask, common.upstream.specaugment.time_mask) == (24, 80)
    assert (common.aggregation.type, common.head.pooling, common.train.weight_decay) == ("last", "mean", 0.1)
    lora = load_config(CONF / "cls" / "ast_lora.yaml")
    assert (lora.peft.rank, lora.peft.alpha / lora.peft.rank, lora.peft.targets) == (12, 0.125, ["q", "v"])
    conformer = load_config(CONF / "cls" / "ast_conformer_pfeiffer.yaml").peft
    assert (conformer.adapter_type, conformer.placement, conformer.reduction_rate, conformer.kernel_size) == (
        "conformer_module", "parallel", 96, 31)
    lrs = {name: load_config(CONF / "cls" / f"{name}.yaml").train.lr_peft for name in AST_METHODS if name != "ast_mini"}
    assert lrs == {"ast_linear": 1e-3, "ast_full_ft": 5e-5, "ast_bitfit": 5e-3, "ast_lora": 5e-3,
                   "ast_adapter_pfeiffer": 5e-3, "ast_adapter_houlsby": 5e-3, "ast_conformer_pfeiffer": 5e-3,
                   "ast_conformer_houlsby": 5e-3, "ast_prompt": 1e-2, "ast_prefix": 1e-2}
    assert load_config(CONF / "cls" / "ast_linear.yaml").peft.train_output_norm


@pytest.mark.parametrize("path", [f"cls/{n}.yaml" for n in AST_METHODS] + ["sv/ast_mini.yaml"])
def test_builds_and_trains_a_step(path):
    cfg = load_config(CONF / path, {"upstream.name": "random:tiny_ast", "upstream.max_length": 100})
    task = get_task(cfg)
    data = TrainingData(items=[], class_names=["a", "b", "c"], num_classes=3, class_counts=[1, 1, 1])
    model = task.build_model(cfg, data)
    loss = task.build_loss(cfg, model, data)
    model.train()
    torch.manual_seed(0)
    wavs, lens, labels = torch.randn(2, 16000) * 0.1, torch.tensor([16000, 12000]), torch.tensor([0, 2])
    out = model(wavs, lens)
    value = loss(out, labels)
    value = value[0] if isinstance(value, tuple) else value
    value.backward()
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert trainable and any(p.grad is not None and p.grad.abs().sum() > 0 for p in trainable)
