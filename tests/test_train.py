"""Training: exact resume after SIGKILL, NaN stop, config checks, every variant (two CPU ranks: tests/test_multirank.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import REPO, run
from spkpeft.engine.checkpoint import load_checkpoint
from spkpeft.engine.trainer import trainable_state
from spkpeft.tasks.config import load_config
from spkpeft.errors import SpkpeftError
from spkpeft.tasks.experiment import prepare_experiment


def make_trainer(cfg, data, exp):
    """The trainer of ``cfg``'s task, as ``bin/train`` builds it."""
    from spkpeft.engine.trainer import Trainer
    from spkpeft.tasks.base import get_task

    return Trainer(cfg, get_task(cfg), data, exp)

SMALL = {
    "upstream.name": "random:tiny_wavlm",
    "head.channels": 32, "head.res2_scale": 2, "head.se_channels": 8, "head.attention_channels": 8,
    "data.crop_seconds": 0.5, "data.batch_size": 4, "data.num_workers": 0, "task.val_speakers": 2,
    "task.val_max_seconds": 1.0, "train.epochs": 2, "train.save_every_steps": 1, "train.log_every_steps": 1,
}


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    """A prepared mini corpus: 8 training speakers x 4 utterances of ~1 s."""
    root = tmp_path_factory.mktemp("corpus")
    out = tmp_path_factory.mktemp("data") / "mini"
    gen = run([sys.executable, "local/make_mini_corpus.py", "--out", str(root), "--n-train-spk", "8",
               "--n-test-spk", "2", "--n-sessions", "2", "--n-utts", "2", "--min-dur", "0.8", "--max-dur", "1.2"])
    assert gen.returncode == 0, gen.stderr
    prep = run([sys.executable, "local/prepare_voxceleb1.py", str(root), str(out)])
    assert prep.returncode == 0, prep.stderr
    return out


def overrides_arg(extra: dict | None = None) -> str:
    return repr({**SMALL, **(extra or {})})


def train_cmd(config: str, data: Path, exp: Path, extra: dict) -> list[str]:
    """A training run through the CLI, with SMALL (+ extra) written into a config file."""
    import yaml

    exp.mkdir(parents=True, exist_ok=True)
    nested: dict = {"base": str(REPO / "conf" / config)}
    for key, value in {**SMALL, **extra}.items():
        section, name = key.split(".", 1)
        nested.setdefault(section, {})[name] = value
    cfg_file = exp.parent / f"{exp.name}.yaml"
    cfg_file.write_text(yaml.safe_dump(nested))
    return [sys.executable, "-m", "spkpeft.bin.train", "--config", str(cfg_file),
            "--data", str(data / "train"), "--exp", str(exp)]


def final_weights(exp: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(exp / "checkpoints" / "last.pt")["trainable"]


def test_resume_after_sigkill_matches_uninterrupted_run(tiny_data, tmp_path):
    extra = {"train.deterministic": True}
    env = {"OMP_NUM_THREADS": "1"}
    straight = run(train_cmd("mini.yaml", tiny_data, tmp_path / "straight", extra), env=env)
    assert straight.returncode == 0, straight.stderr[-2000:]

    cmd = train_cmd("mini.yaml", tiny_data, tmp_path / "killed", extra)
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **env}
    proc = subprocess.Popen(cmd, cwd=REPO, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = tmp_path / "killed" / "checkpoints" / "last.pt"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if last.is_file() and load_checkpoint(last)["step"] >= 3:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "training ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = load_checkpoint(last)["step"]
    resumed = run(cmd, env=env)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resumed from {last}" in resumed.stderr and f"step {killed_at}" in resumed.stderr

    a, b = final_weights(tmp_path / "straight"), final_weights(tmp_path / "killed")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    rows = (tmp_path / "killed" / "train_epochs.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,step,train_loss") and len(rows) == 3


def test_nan_loss_stops_naming_the_steps(tiny_data, tmp_path, monkeypatch):
    """A NaN from the 3rd batch on: the good steps train and are saved, the NaN ones are skipped
    (no optimizer or scheduler step, BatchNorm statistics restored) until the patience runs out;
    the error names them and last.pt keeps the last good step."""
    from spkpeft.nn.losses import MarginSoftmax

    forward, calls = MarginSoftmax.forward, [0]

    def nan_from_the_third_batch(self, emb, labels):
        loss, acc = forward(self, emb, labels)
        calls[0] += 1
        return (loss * float("nan") if calls[0] >= 3 else loss), acc

    monkeypatch.setattr(MarginSoftmax, "forward", nan_from_the_third_batch)
    cfg = load_config(REPO / "conf" / "mini.yaml", {**SMALL, "train.nonfinite_patience": 3})
    trainer = make_trainer(cfg, tiny_data / "train", tmp_path / "exp")
    with pytest.raises(SpkpeftError, match=r"non-finite at 3 consecutive optimizer steps \(epoch 1, steps 3-5\), "
                                           r"each skipped; stopping: .*last.pt holds step 2, the last good state"):
        trainer.run()
    last = load_checkpoint(tmp_path / "exp" / "checkpoints" / "last.pt")
    assert last["step"] == 2 and last["scheduler"]["last_epoch"] == 2
    now = trainable_state(trainer.trainee)
    assert all(torch.equal(now[k], v) for k, v in last["trainable"].items())  # skipped steps changed nothing


def test_experiment_refuses_a_different_config(tmp_path):
    exp = tmp_path / "exp"
    prepare_experiment(REPO / "conf" / "mini.yaml", exp)
    prepare_experiment(REPO / "conf" / "mini.yaml", exp)  # same config: fine
    with pytest.raises(SpkpeftError, match="different config.*upstream.name"):
        prepare_experiment(REPO / "conf" / "mini.yaml", exp, upstream="random:tiny_hubert")


def test_experiment_started_before_a_key_existed_still_resumes(tmp_path):
    """A saved config without a key added later (here data.shuffle_buffer) reads it as its default."""
    import yaml

    exp = tmp_path / "exp"
    prepare_experiment(REPO / "conf" / "mini.yaml", exp)
    saved = yaml.safe_load((exp / "config.yaml").read_text())
    del saved["data"]["shuffle_buffer"]
    (exp / "config.yaml").write_text(yaml.safe_dump(saved, sort_keys=False))
    prepare_experiment(REPO / "conf" / "mini.yaml", exp)  # the default of the new key: the same config
    saved["data"]["shuffle_buffer"] = 7  # a non-default value that differs is still a different config
    (exp / "config.yaml").write_text(yaml.safe_dump(saved, sort_keys=False))
    with pytest.raises(SpkpeftError, match=r"different config \('data.shuffle_buffer' differs"):
        prepare_experiment(REPO / "conf" / "mini.yaml", exp)


VARIANTS = sorted(p.stem for p in (REPO / "conf").glob("*.yaml") if p.stem != "base")


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_trains_a_few_steps(variant, tiny_data, tmp_path):
    overrides = {**SMALL, "train.epochs": 1, "train.save_every_steps": 0}
    trainer = make_trainer(load_config(REPO / "conf" / f"{variant}.yaml", overrides), tiny_data / "train", tmp_path)
    before = {k: v.clone() for k, v in trainer.trainee.model.trainable_state_dict().items()}
    trainer.run()
    after = trainer.trainee.model.trainable_state_dict()
    assert trainer.step == trainer.steps_per_epoch > 0
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed, "no trainable tensor changed"
    assert any(k.startswith("upstream.") for k in changed) or variant in ("frozen", "attentive_merge")
    assert (tmp_path / "checkpoints" / "best.pt").is_file()


def test_large_margin_overlay_starts_from_a_trained_model(tiny_data, tmp_path):
    first = tmp_path / "first"
    res = run(train_cmd("mini.yaml", tiny_data, first, {"train.epochs": 1}))
    assert res.returncode == 0, res.stderr[-2000:]
    cmd = train_cmd("mini.yaml", tiny_data, tmp_path / "lmft", {"train.epochs": 1})
    cmd += ["--overlay", str(REPO / "conf" / "overlays" / "large_margin.yaml"),
            "--init-from", str(first / "checkpoints" / "best.pt")]
    res = run(cmd)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "initialised the trainable weights from" in res.stderr
    import yaml

    resolved = yaml.safe_load((tmp_path / "lmft" / "config.yaml").read_text())
    assert resolved["loss"]["margin"] == 0.5 and resolved["data"]["crop_seconds"] == 6.0
    assert resolved["train"]["epochs"] == 2  # the overlay wins over the base config


def test_missing_audio_during_training_is_one_line(tiny_data, tmp_path):
    """A file that disappears after validation fails training with one line naming it (from a worker)."""
    import shutil

    data = tmp_path / "data"
    shutil.copytree(tiny_data / "train", data / "train")
    wav_scp = data / "train" / "wav.scp"
    lines = wav_scp.read_text().splitlines()
    lines[0] = lines[0].split()[0] + " " + str(tmp_path / "gone.wav")
    wav_scp.write_text("\n".join(lines) + "\n")
    res = run(train_cmd("mini.yaml", data, tmp_path / "exp", {"data.num_workers": 1, "train.epochs": 3}))
    assert res.returncode == 1
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("train: error: ") and "gone.wav: audio file does not exist" in last


def test_two_phase_schedule_trains_the_back_end_first(tiny_data, tmp_path):
    overrides = {**SMALL, "train.epochs": 2, "train.freeze_upstream_epochs": 1, "train.save_every_steps": 0,
                 "train.warmup_epochs": 0.0}
    trainer = make_trainer(load_config(REPO / "conf" / "full_ft.yaml", overrides), tiny_data / "train", tmp_path)
    params = list(trainer.trainee.model.parameters())  # full fine-tuning: the upstream counted once
    assert trainer.summary["total_params"] == sum(p.numel() for p in params)
    assert trainer.summary["trainable_params"] == sum(p.numel() for p in params if p.requires_grad)
    start = {k: v.clone() for k, v in trainer.trainee.model.trainable_state_dict().items()}
    trainer.run()
    epoch1 = load_checkpoint(tmp_path / "checkpoints" / "epoch_001.pt")["trainable"]
    epoch2 = load_checkpoint(tmp_path / "checkpoints" / "epoch_002.pt")["trainable"]
    upstream = [k for k in start if k.startswith("upstream.")]
    back_end = [k for k in start if k.startswith(("aggregation.", "head."))]
    assert upstream and back_end
    assert all(torch.equal(epoch1[f"model.{k}"], start[k]) for k in upstream)  # phase 1: upstream untouched
    assert any(not torch.equal(epoch1[f"model.{k}"], start[k]) for k in back_end)
    assert any(not torch.equal(epoch2[f"model.{k}"], epoch1[f"model.{k}"]) for k in upstream)  # phase 2: fine-tuned
    steps, peft, head = trainer.steps_per_epoch, trainer.lr_lambda("peft"), trainer.lr_lambda("head")
    assert peft(0) == peft(steps - 1) == 0.0 and peft(steps) == 1.0 == head(0)  # its schedule starts in phase 2


def test_two_phase_schedule_needs_a_second_phase():
    with pytest.raises(SpkpeftError, match=r"train.freeze_upstream_epochs must be in \[0, train.epochs = 2\), got 2"):
        make_trainer(load_config(REPO / "conf" / "full_ft.yaml", {**SMALL, "train.freeze_upstream_epochs": 2}),
                     "unused", "unused")


def plain_training_loop(trainer) -> list[float]:
    """The textbook loop over the trainer's own model, data, optimizer and schedule (what the
    trainer computed before its hot path learnt to skip non-finite steps and to stay off the
    host): forward, ``loss / grad_accum`` backward, clipping, AdamW and scheduler steps; returns
    each epoch's mean training loss."""
    cfg, means = trainer.cfg.train, []
    for epoch in range(cfg.epochs):
        trainer.trainee.train()
        trainer.sampler.set_epoch(epoch, 0)
        batches = list(trainer.loader())
        total = 0.0
        for i, (wavs, labels) in enumerate(batches):
            trainer.trainee.loss.set_epoch(epoch + i / len(batches))
            loss, _ = trainer.trainee(wavs, torch.full((wavs.shape[0],), wavs.shape[1], dtype=torch.long), labels)
            (loss / cfg.grad_accum).backward()
            total += loss.item()
            if (i + 1) % cfg.grad_accum == 0 or i + 1 == len(batches):
                torch.nn.utils.clip_grad_norm_([p for g in trainer.optimizer.param_groups for p in g["params"]],
                                               cfg.grad_clip)
                trainer.optimizer.step()
                trainer.optimizer.zero_grad(set_to_none=True)
                trainer.scheduler.step()
        means.append(total / len(batches))
    return means


def test_training_numbers_equal_the_plain_loop(tiny_data, tmp_path):
    """Numbers must not move: the trainer's run (checkpoints, validation, accumulation over 2
    batches) gives bit-identical weights and the same epoch losses as the plain loop."""
    overrides = {**SMALL, "train.grad_accum": 2, "train.deterministic": True, "train.save_every_steps": 2}
    cfg = load_config(REPO / "conf" / "mini.yaml", overrides)
    reference = make_trainer(cfg, tiny_data / "train", tmp_path / "plain")
    means = plain_training_loop(reference)
    trainer = make_trainer(cfg, tiny_data / "train", tmp_path / "trainer")
    trainer.run()
    expected = reference.trainee.model.trainable_state_dict()
    got = trainer.trainee.model.trainable_state_dict()
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), key
    rows = (tmp_path / "trainer" / "train_epochs.csv").read_text().splitlines()[1:]
    assert [float(r.split(",")[2]) for r in rows] == [round(m, 6) for m in means]
