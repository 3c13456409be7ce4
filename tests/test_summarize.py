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
from spkpeft.tasks.config import load_config
from spkpeft.nn.heads import HeadConfig, head_cost, head_cost_vs_plain
from spkpeft.nn.model import build_model

ROOT = Path(__file__).resolve().parents[1]
CONFS = sorted(p.name for p in (ROOT / "conf").glob("*.yaml") if p.stem != "mini")
TINY = ["random:tiny_wavlm", "random:tiny_wav2vec2", "random:tiny_hubert"]


pytestmark = pytest.mark.usefixtures("isolated_model_cache")


@pytest.mark.parametrize("upstream", TINY)
@pytest.mark.parametrize("conf", CONFS)
def test_summarize_every_conf(conf, upstream):
    result = summarize(str(ROOT / "conf" / conf), upstream)
    assert set(result) == {"upstream", "upstream_params", "trainable", "trainable_pct", "head_cost"}
    assert result["upstream"] == upstream
    assert set(result["trainable"]) == {"peft", "aggregation", "head"}
    assert all(isinstance(v, int) and v >= 0 for v in result["trainable"].values())
    assert isinstance(result["upstream_params"], int) and result["upstream_params"] > 1_000_000
    assert result["trainable"]["aggregation"] > 0 and result["trainable"]["head"] > 0
    assert 0.0 < result["trainable_pct"] <= 100.0
    method = load_config(ROOT / "conf" / conf).peft.method
    assert (result["trainable"]["peft"] == 0) == (method == "frozen")
    cost = result["head_cost"]
    assert set(cost) == {"params", "macs", "plain_params", "plain_macs", "num_frames"}
    assert cost["params"] == result["trainable"]["head"]
    if load_config(ROOT / "conf" / conf).head.transform == "none":
        assert (cost["params"], cost["macs"]) == (cost["plain_params"], cost["plain_macs"])
    assert cost["macs"] > 0 and cost["num_frames"] == 300
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


SMALL_HEAD = dict(channels=64, embed_dim=32, res2_scale=4, se_channels=16, attention_channels=16)


def _small_head_config(tmp_path, **extra) -> Path:
    lines = "".join(f"  {k}: {v}\n" for k, v in {**SMALL_HEAD, **extra}.items())
    path = tmp_path / "small_head.yaml"
    path.write_text(f"base: {ROOT / 'conf' / 'sv' / 'base.yaml'}\nhead:\n{lines}")
    return path


def test_head_cost_next_to_plain_head(tmp_path):
    path = _small_head_config(tmp_path, transform="partition_fusion", partition_groups=4)
    result = summarize(str(path), "random:tiny_wavlm", num_frames=50)  # hidden size D = 256
    cost = result["head_cost"]
    assert cost["params"] == result["trainable"]["head"]
    transformed = HeadConfig(**SMALL_HEAD, transform="partition_fusion", partition_groups=4)
    assert cost == head_cost_vs_plain(transformed, 256, 50)
    plain = head_cost(HeadConfig(**SMALL_HEAD), 256, 50)
    assert (cost["plain_params"], cost["plain_macs"]) == (plain["params"], plain["macs"])
    # closed forms: C=64, s=4 (Res2 width 16), M=192, A=16, E=32, D=256, G=4, T=50
    g, t = 4, 50
    dense_tail = 3 * 192 * 16 + 16 * 192  # attention convs, per frame
    plain_frame = 64 * 256 * 5 + 3 * (2 * 64 * 64 + 3 * 16 * 16 * 3) + 192 * 192 + dense_tail
    plain_utt = 3 * 2 * 64 * 16 + 2 * 192 * 32
    assert cost["plain_macs"] == plain_frame * t + plain_utt
    fusion_frame = 3 * (3 * 64 + 64 // g) + (3 * 192 + 192 // g)  # (3C + C/G) per module
    tm_frame = (
        64 * 256 * 5 + 3 * (2 * 64 * 64 + 3 * 16 * 16 * 3) // g + fusion_frame + 192 * 192 // g + dense_tail
    )
    tm_utt = 3 * 2 * 64 * 16 // g + (3 * 64 + 192) + 2 * 192 * 32
    assert cost["macs"] == tm_frame * t + tm_utt
    assert cost["params"] < cost["plain_params"] and cost["macs"] < cost["plain_macs"]

    plain_result = summarize(str(_small_head_config(tmp_path)), "random:tiny_wavlm", num_frames=50)
    assert plain_result["trainable"]["head"] == cost["plain_params"]
    assert plain_result["head_cost"]["macs"] == plain_result["head_cost"]["plain_macs"] == cost["plain_macs"]


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
    # the CLI prints exactly the in-process summary (the prefix method's own count is
    # pinned in the PEFT tests, not here)
    assert result == summarize(str(ROOT / "conf" / "prefix.yaml"), "random:tiny_hubert")
    assert result["upstream"] == "random:tiny_hubert" and result["trainable"]["peft"] > 0
    assert result["head_cost"]["params"] == result["trainable"]["head"] == result["head_cost"]["plain_params"]

    done = _cli("--config", str(_small_head_config(tmp_path, transform="partition_fusion", partition_groups=2)),
                "--upstream", "random:tiny_wavlm", "--frames", "40")
    assert done.returncode == 0, done.stderr
    cost = json.loads(done.stdout)["head_cost"]
    assert cost["num_frames"] == 40 and cost["macs"] < cost["plain_macs"] and cost["params"] < cost["plain_params"]
    done = _cli("--config", "conf/prefix.yaml", "--upstream", "random:tiny_hubert", "--frames", "0")
    assert done.returncode == 1 and done.stderr.strip().splitlines()[-1] == "summarize: error: --frames must be a positive integer, got 0."

    bad = tmp_path / "bad.yaml"
    bad.write_text("base: " + str(ROOT / "conf" / "sv" / "base.yaml") + "\npeft:\n  method: lora\n  rnak: 3\n")
    done = _cli("--config", str(bad), "--upstream", "random:tiny_hubert")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip().splitlines()[-1] == f"summarize: error: {bad}: unknown key 'peft.rnak' (expected one of: method, rank, alpha, dropout, targets, layers, zero_factor, train_norms)"


def test_summary_of_a_classification_config_counts_the_classifier():
    """A cls config (pooled head, no classifier until the task adds one): the head cost is
    that of the pooling; the summary works for every task's configs."""
    result = summarize(str(ROOT / "conf" / "cls" / "lora.yaml"), "random:tiny_hubert")
    assert result["trainable"]["peft"] == 4 * 2 * 16 * (256 + 256)
    assert result["head_cost"]["params"] == result["head_cost"]["plain_params"] == 0  # mean pooling: no parameters
