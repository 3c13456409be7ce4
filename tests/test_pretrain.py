"""BEST-RQ pre-training (spkpeft.bin.pretrain): the loss falls, the result loads as an upstream
through the local-checkpoint path, a run killed while saving resumes to the same weights, and
bad input is a one-line error."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import python_module
from spkpeft.bin._cli import run_main
from spkpeft.bin.pretrain import main
from spkpeft.data.synth import CorpusSpec, write_corpus
from spkpeft.engine.checkpoint import TEST_KILL_ENV
from spkpeft.engine.pretrain import CURVE, RESULT, STATE, PretrainConfig, Pretrainer, curve_summary
from spkpeft.errors import SpkpeftError
from spkpeft.upstream.s3prl import sources
from spkpeft.upstream.s3prl.bestrq import RandomProjectionQuantizer, span_mask
from spkpeft.upstream.s3prl.wrapper import load_upstream

STEPS, SAVE_EVERY = 16, 4
OPTS = {"steps": STEPS, "batch_size": 4, "crop_seconds": 1.0, "lr": 2.0e-3, "warmup_steps": 2}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """wav.scp of a tiny synthetic corpus (6 speakers x 3 utterances of 1-2 s)."""
    root = tmp_path_factory.mktemp("pretrain_corpus")
    write_corpus(root, CorpusSpec(n_train_spk=4, n_test_spk=2, n_sessions=1, n_utts=3, min_dur=1.0, max_dur=2.0))
    wavs = sorted((root / "wav").rglob("*.wav"))
    data = root / "data"
    data.mkdir()
    (data / "wav.scp").write_text("".join(f"u{i:03d} {p}\n" for i, p in enumerate(wavs)))
    return data


@pytest.fixture(scope="module")
def finished(data_dir, tmp_path_factory):
    """An uninterrupted in-process run: (output directory, trainer)."""
    out = tmp_path_factory.mktemp("pretrain_full")
    trainer = Pretrainer(PretrainConfig(**OPTS), data_dir, out, save_every=SAVE_EVERY, log=lambda _: None)
    trainer.run()
    return out, trainer


def test_loss_falls_and_the_result_loads_as_an_upstream(finished):
    out, trainer = finished
    first, last = curve_summary(trainer.history, 4)
    assert first > np.log(512) - 0.5  # starts near chance over 512 codes
    assert last < first - 0.5, (first, last)
    quantizer = trainer.model.quantizer  # global target statistics were fitted (log-mel means are far from 0)
    assert quantizer.mean.abs().min() > 1.0 and bool((quantizer.std > 0.1).all())
    lines = (out / CURVE).read_text().splitlines()
    assert lines[0] == "step,loss,accuracy,lr" and len(lines) == STEPS + 1

    path = out / RESULT
    sources.check_source(str(path))  # what `--upstream PATH` checks before training
    upstream = load_upstream(str(path))
    assert type(upstream.model).__name__ == "WavLM"
    trained = trainer.model.upstream.model.state_dict()
    loaded = upstream.model.state_dict()
    assert set(loaded) == set(trained) and all(torch.equal(loaded[k], trained[k]) for k in loaded)
    initial = load_upstream("random:tiny_wavlm").model.state_dict()
    assert sum(not torch.equal(loaded[k], initial[k]) for k in loaded) > 0.9 * len(loaded)
    ckpt = torch.load(path, weights_only=True)
    assert set(ckpt) == {"cfg", "model"} and torch.equal(ckpt["model"]["mask_emb"], trainer.model.mask_emb.detach())


def test_killed_while_saving_resumes_to_the_same_weights(finished, data_dir, tmp_path):
    out = tmp_path / "out"
    args = ["--data", data_dir, "--out", out, "--save-every", SAVE_EVERY,
            *[a for key, value in OPTS.items() for a in (f"--{key.replace('_', '-')}", value)]]
    killed = python_module("spkpeft.bin.pretrain", *args, env={TEST_KILL_ENV: f"2:{STATE}"})
    assert killed.returncode == -9 and not (out / RESULT).exists()
    assert len((out / CURVE).read_text().splitlines()) == SAVE_EVERY + 1  # the first save only
    resumed = python_module("spkpeft.bin.pretrain", *args)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert resumed.stdout.strip() == str(out / RESULT) and (out / "loss.png").stat().st_size > 0
    assert f"resuming {out / STATE} at step {SAVE_EVERY}/{STEPS}" in resumed.stderr
    assert (out / CURVE).read_text() == (finished[0] / CURVE).read_text()
    a = torch.load(out / RESULT, weights_only=True)["model"]
    b = torch.load(finished[0] / RESULT, weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in b)


def test_resume_with_other_options_names_the_option(finished, data_dir):
    with pytest.raises(SpkpeftError, match=r"last\.pt: was made with mask_prob=0\.05, now 0\.1"):
        Pretrainer(PretrainConfig(**{**OPTS, "mask_prob": 0.1}), data_dir, finished[0], log=lambda _: None).run()


def test_missing_wav_scp_is_a_one_line_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        run_main(main, ["--data", str(tmp_path), "--out", str(tmp_path / "out")])
    assert exit_.value.code == 1
    assert capsys.readouterr().err.strip() == (f"pretrain: error: {tmp_path / 'wav.scp'}: not found "
                                               f"(pre-training reads the wav.scp of a data directory)")
    assert not (tmp_path / "out").exists()


def test_targets_and_masks():
    """Targets: one code per 20 ms frame, the same for an utterance alone or zero-padded in a batch;
    masks: spans inside the valid frames, at least one per utterance."""
    quantizer = RandomProjectionQuantizer(320, codebook_size=64)
    wavs = torch.randn(2, 16000) * 0.1
    wavs[1, 8000:] = 0.0
    codes, lens = quantizer(wavs, torch.tensor([16000, 8000]))
    alone, alone_len = quantizer(wavs[1:, :8000], torch.tensor([8000]))
    assert lens.tolist() == [49, 24] and codes.shape == (2, 49) and int(codes.max()) < 64
    assert torch.equal(codes[1, :24], alone[0, :24]) and alone_len.tolist() == [24]
    mask = span_mask([50, 5], 50, 0.05, 10, np.random.default_rng(0))
    assert mask[0].sum() >= 10 and 1 <= mask[1].sum() <= 5 and not mask[1, 5:].any()
