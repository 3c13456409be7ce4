"""One upstream forward for the SV and the CM model (frozen, identical upstreams): the same numbers
as two passes; models that cannot share are named with the reason."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import REPO
from spkpeft.engine.extract import ExtractConfig, embed_utterances
from spkpeft.errors import SpkpeftError
from spkpeft.nn.model import build_model
from spkpeft.tasks.cm.task import build_cm_model
from spkpeft.tasks.config import load_config
from spkpeft.tasks.sasv.inference import SasvOutputs, can_share, split_outputs

TINY = {"upstream.name": "random:tiny_wavlm"}
SMALL_ECAPA = {"head.channels": 16, "head.embed_dim": 24}


def models(sv_config="conf/sv/mini_frozen.yaml"):
    torch.manual_seed(0)
    sv = build_model(load_config(REPO / sv_config, {**TINY, **SMALL_ECAPA})).eval()
    cm = build_cm_model(load_config(REPO / "conf/cm/frozen.yaml", TINY)).eval()
    for m in (sv, cm):  # heads trained on something: not the fresh initial values
        with torch.no_grad():
            for p in m.parameters():
                if p.requires_grad:
                    p.add_(0.01 * torch.randn_like(p))
    return sv, cm


@torch.no_grad()
def test_shared_upstream_gives_the_numbers_of_two_passes() -> None:
    sv, cm = models()
    assert can_share(sv, cm) is None
    rng = np.random.default_rng(0)
    wavs = [rng.normal(0, 0.1, n).astype(np.float32) for n in (16000, 9000, 24000, 4000)]
    cfg = ExtractConfig(chunk_seconds=1.0, batch_seconds=2.0)
    separate = embed_utterances(SasvOutputs(sv, cm, share=False), wavs, cfg, torch.device("cpu"))
    shared = embed_utterances(SasvOutputs(sv, cm, share=True), wavs, cfg, torch.device("cpu"))
    assert np.array_equal(separate, shared)
    parts = split_outputs(shared, SasvOutputs(sv, cm).dims)
    assert parts.sv.shape == (4, 24) and parts.cm_embedding.shape[0] == 4 and parts.cm_score.shape == (4,)
    # the parts are what each model computes on its own (stage 4 of sv and of cm)
    alone_sv = embed_utterances(sv, wavs, cfg, torch.device("cpu"))
    logits = embed_utterances(cm, wavs, cfg, torch.device("cpu"))
    assert np.array_equal(parts.sv, alone_sv)
    assert np.allclose(parts.cm_score, logits[:, 1] - logits[:, 0], atol=1e-5)


def test_models_that_cannot_share_are_named() -> None:
    sv, cm = models()
    lora_sv, _ = models(sv_config="conf/sv/mini_lora.yaml")
    assert "the first model's upstream carries PEFT modules (LoRALinear)" in can_share(lora_sv, cm)
    with torch.no_grad():
        next(cm.upstream.parameters()).add_(1.0)
    assert "the upstreams differ in" in can_share(sv, cm)
    with pytest.raises(SpkpeftError, match="cannot share one upstream forward"):
        SasvOutputs(sv, cm, share=True)
    fbank_sv = build_model(load_config(REPO / "conf/sv/mini_fbank.yaml", SMALL_ECAPA))
    assert "upstreams differ" in can_share(fbank_sv, cm)
    # the mini recipe's components: fbank front ends without parameters, 80 mel against 60 linear bins
    fbank_cm = build_cm_model(load_config(REPO / "conf/cm/mini.yaml", SMALL_ECAPA))
    assert "configured differently" in can_share(fbank_sv, fbank_cm)
