"""``python -m spkpeft.bin.summarize``: one JSON object for every conf on every tiny upstream."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from spkpeft.bin.summarize import summarize
from spkpeft.config import load_config
from spkpeft.model import build_model

ROOT = Path(__file__).resolve().parents[1]
CONFS = sorted(p.name for p in (ROOT / "conf").glob("*.yaml") if p.stem != "mini")
TINY = ["random:tiny_wavlm", "random:tiny_wav2vec2", "random:tiny_hubert"]


pytestmark = pytest.mark.usefixtures("isolated_model_cache")


@pytest.mark.parametrize("upstream", TINY)
@pytest.mark.parametrize("conf", CONFS)
def test_summarize_every_conf(conf, upstream):
    result = summarize(str(ROOT / "conf" / conf), upstream)
    assert set(result) == {"upstream", "upstream_params", "trainable", "trainable_pct"}
    assert result["upstream"] == upstream
    assert set(result["trainable"]) == {"peft", "aggregation", "head"}
    assert all(isinstance(v, int) and v >= 0 for v in result["trainable"].values())
    assert isinstance(result["upstream_params"], int) and result["upstream_params"] > 1_000_000
    assert result["trainable"]["aggregation"] > 0 and result["trainable"]["head"] > 0
    assert 0.0 < result["trainable_pct"] <= 100.0
    method = load_config(ROOT / "conf" / conf).peft.method
    assert (result["trainable"]["peft"] == 0) == (method == "frozen")
    json.dumps(result)


def test_lora_summary_is_the_closed_form():
    result = summarize(str(ROOT / "conf" / "lora.yaml"), "random:tiny_wavlm")  # 3 blocks, 256 dims
    assert result["trainable"]["peft"] == 3 * 2 * 16 * (256 + 256)


def test_percentage_counts_every_parameter():
    cfg = load_config(ROOT / "conf" / "adapter_houlsby.yaml", {"upstream.name": "random:tiny_hubert"})
    model = build_model(cfg)
    counts = model.param_counts()
    total = sum(p.numel() for p in model.parameters())
    assert counts["total"] == total == counts["upstream"] + counts["peft"] + counts["aggregation"] + counts["head"]
    result = summarize(str(ROOT / "conf" / "adapter_houlsby.yaml"), "random:tiny_hubert")
    assert result["trainable_pct"] == pytest.approx(100.0 * (total - counts["upstream"]) / total)


def test_trainable_state_dict_round_trip():
    cfg = load_config(ROOT / "conf" / "lora.yaml", {"upstream.name": "random:tiny_wav2vec2"})
    model = build_model(cfg)
    wavs, lens = torch.randn(2, 4000), torch.tensor([4000, 3000])
    model.train()
    with torch.no_grad():
        model(wavs, lens)  # updates the head's BatchNorm running statistics
    state = model.trainable_state_dict()
    params = {k for k, _ in model.named_parameters()}
    n_params = sum(v.numel() for k, v in state.items() if k in params)
    assert n_params == sum(model.param_counts()[k] for k in ("peft", "aggregation", "head"))
    assert any(k.endswith("running_mean") for k in state)  # eval-mode statistics travel too
    assert all(k.startswith(("upstream.", "aggregation.", "head.")) for k in state)
    other = build_model(cfg)
    other.load_trainable_state_dict(state)
    for name, value in other.trainable_state_dict().items():
        assert torch.equal(value, state[name])
    model.eval()
    other.eval()
    with torch.no_grad():
        torch.testing.assert_close(other(wavs, lens), model(wavs, lens), atol=0, rtol=0)
    with torch.no_grad():
        before = model(wavs, lens)
        assert model.merge() == 2 * 2  # q and v of the 2 blocks
        torch.testing.assert_close(model(wavs, lens), before, atol=1e-5, rtol=0)
    assert before.shape == (2, 192)


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, "-m", "spkpeft.bin.summarize", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def test_cli_prints_one_json_object_and_reports_errors(tmp_path):
    done = _cli("--config", "conf/prefix.yaml", "--upstream", "random:tiny_hubert")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert result["upstream"] == "random:tiny_hubert" and result["trainable"]["peft"] == 4 * (2 * 16 * 256 + 4)

    bad = tmp_path / "bad.yaml"
    bad.write_text("base: " + str(ROOT / "conf" / "base.yaml") + "\npeft:\n  method: lora\n  rnak: 3\n")
    done = _cli("--config", str(bad), "--upstream", "random:tiny_hubert")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip().splitlines()[-1] == f"summarize: error: {bad}: unknown key 'peft.rnak' (expected one of: method, rank, alpha, dropout, targets, layers)"
