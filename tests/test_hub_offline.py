"""The s3prl hub path without a network: a checkpoint placed where s3prl's download cache
keeps ``wavlm_base_plus`` is loaded through the hub name, exactly as a user's run would."""

from __future__ import annotations

import hashlib
import inspect
import socket

import torch

from spkpeft.tasks.config import load_config
from spkpeft.upstream import build_upstream
from spkpeft.upstream.s3prl import random_arch
from spkpeft.upstream.s3prl.sources import hub_download_dir

from conftest import REPO

URL = "https://huggingface.co/s3prl/converted_ckpts/resolve/main/wavlm_base_plus.pt"


def no_network(*_args, **_kwargs):
    raise AssertionError("network access attempted")


def test_wavlm_base_plus_loads_from_the_download_cache_without_network(tmp_path, monkeypatch):
    from s3prl.upstream.wavlm import hubconf
    from s3prl.util import download

    assert URL in inspect.getsource(hubconf.wavlm_base_plus)  # the URL s3prl's hub entry names
    monkeypatch.setattr(download, "_download_dir", download.get_dir())  # restored after the test
    monkeypatch.setenv("S3PRL_CACHE", str(tmp_path / "s3prl"))
    for name in ("_download_url_to_file", "_download_url_to_file_requests"):
        monkeypatch.setattr(download, name, no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)

    # a random WavLM in s3prl's wavlm_local format (tiny: the hub loader builds the model from
    # the checkpoint's own cfg, so the path is the same as for the published weights)
    ckpt = random_arch.make_checkpoint("tiny_wavlm", seed=3)
    cached = tmp_path / "s3prl" / f"{hashlib.sha256(URL.encode()).hexdigest()}.wavlm_base_plus.pt"
    assert hub_download_dir() == tmp_path / "s3prl"
    assert download._urls_to_filepaths(URL, download=False) == str(cached.resolve())
    torch.save(ckpt, cached)

    cfg = load_config(REPO / "conf" / "sv" / "frozen.yaml", {"upstream.name": "wavlm_base_plus"})
    upstream = build_upstream(cfg.upstream)
    loaded = upstream.model.state_dict()
    assert set(ckpt["model"]) - set(loaded) == {"mask_emb"}  # pre-training only, dropped by the wrapper
    assert all(torch.equal(v, ckpt["model"][k]) for k, v in loaded.items())
    assert sorted(p.name for p in cached.parent.iterdir()) == [cached.name, cached.name + ".lock"]
