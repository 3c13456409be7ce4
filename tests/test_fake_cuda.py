"""The fake-CUDA tier: every config of conf/ trains a step and runs a stage-4 forward on "cuda"
tensors without a GPU (tests/fake_cuda.py), so that a CPU tensor meeting a CUDA one, or a dtype
that autocast leaves behind, fails here as it would on a GPU.

Per config, on a tiny upstream of the config's family and tiny inputs: the real backward on
``meta`` (a device mix in the graph fails there), then the trainer's own training epoch (one
batch: forward and loss under the trainer's autocast in fp32, bf16 and fp16, the scaled backward,
the optimizer step) on fake CUDA, counting host synchronisations per step; then the model's
forward on a padded batch of mixed lengths as stage 4 builds it (``pad_batch``).  The
pretraining path (BEST-RQ) takes a step the same way.  A test injects a device bug and shows
that the tier catches it.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from fake_cuda import fake_cuda, for_real, real_batches, write_tiny_data_dir
from spkpeft.engine.inference import pad_batch
from spkpeft.tasks.base import get_task
from spkpeft.tasks.config import load_config

CONF = Path(__file__).resolve().parent.parent / "conf"
#: every complete config: the task folders and the aliases at the top (methods/ and overlays/ are fragments)
CONFIGS = sorted(str(p.relative_to(CONF)) for p in [*CONF.glob("*.yaml"), *CONF.glob("sv/*.yaml"),
                                                     *CONF.glob("cls/*.yaml"), *CONF.glob("cm/*.yaml")])
#: the tiny s3prl upstream of each family (hub name fragment -> random:<arch>)
TINY_S3PRL = (("hubert", "random:tiny_hubert"), ("wav2vec2", "random:tiny_wav2vec2"),
              ("xls_r", "random:tiny_wav2vec2"), ("", "random:tiny_wavlm"))
CROP = 0.25
#: host synchronisations allowed per optimizer step of the training hot path (the batches' forward
#: and backward and the step): the one read of the step's finiteness check, which decides whether
#: the optimizer steps; and per epoch besides: the one read of the epoch's mean loss and accuracy
MAX_SYNCS_PER_STEP = 1
MAX_SYNCS_PER_EPOCH = 1


def tiny_overrides(path: Path) -> dict:
    """Overrides that keep the config's components but make them tiny and the data one batch."""
    cfg = load_config(path)
    over = {"data.crop_seconds": CROP, "data.batch_size": 4, "data.num_workers": 0,
            "train.save_every_steps": 0, "train.log_every_steps": 0, "train.amp": "fp16"}
    if cfg.upstream.type == "s3prl":
        name = next(tiny for fragment, tiny in TINY_S3PRL if fragment in cfg.upstream.name)
        over.update({"upstream.name": name, "upstream.num_layers": 1})
    elif cfg.upstream.type == "ast":
        over.update({"upstream.name": "random:tiny_ast", "upstream.max_length": 100})
        if not getattr(cfg.peft, "train_output_norm", False):  # that needs the final LayerNorm: all blocks
            over["upstream.num_layers"] = 1
    if cfg.head.type == "ecapa":
        over.update({"head.channels": 16, "head.res2_scale": 2, "head.se_channels": 8,
                     "head.attention_channels": 8, "head.embed_dim": 16})
    elif cfg.head.type == "lstm":
        over["head.hidden_size"] = 8
    if cfg.task.type == "sv":
        over.update({"task.val_speakers": 0, "task.val_utts_per_speaker": 0})
    else:
        over["task.val_fraction"] = 0.0
    return over


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return write_tiny_data_dir(tmp_path_factory.mktemp("fake_cuda") / "train")


def meta_backward(trainee, batch: int = 2) -> None:
    """The real backward of ``trainee`` (model and loss) on ``meta`` tensors; leaves it on meta."""
    for_real(trainee.to)("meta")  # real meta tensors: a module moved inside the fake mode could not move again
    trainee.train()
    samples = int(CROP * 16000)
    loss, _ = trainee(torch.zeros(batch, samples, device="meta"),
                      torch.full((batch,), samples, device="meta"), torch.zeros(batch, dtype=torch.long, device="meta"))
    assert loss.dim() == 0 and loss.dtype == torch.float32, "the training loss must be a float32 scalar"
    loss.backward()
    trainee.zero_grad(set_to_none=True)


def fake_cuda_trainer(cfg, data_dir: Path, exp: Path):
    """The trainer of ``cfg`` on fake CUDA, its model built for real and its backward checked on
    meta first (call inside :func:`fake_cuda`); batches read for real."""
    from spkpeft.engine.trainer import Trainee, Trainer

    task = get_task(cfg)
    build_loss = for_real(task.build_loss)

    def build_loss_then_meta_backward(cfg, model, data):
        loss = build_loss(cfg, model, data)
        meta_backward(Trainee(model, loss))
        return loss

    task.build_model = for_real(task.build_model)
    task.build_loss = build_loss_then_meta_backward
    trainer = Trainer(cfg, task, data_dir, exp, "cuda")
    loader = trainer.loader
    trainer.loader = lambda: real_batches(loader())
    return trainer


def train_one_step(trainer, amp: str, syncs) -> tuple[int, int]:
    """One training epoch of one batch under ``amp``; returns its host synchronisations in the
    hot path (the runner's batch and step) and in the whole epoch."""
    trainer.cfg.train.amp = amp
    trainer.batch_in_epoch = 0
    hot = [0]

    def counted(method):
        def call(*args, **kwargs):
            before = syncs.total
            try:
                return method(*args, **kwargs)
            finally:
                hot[0] += syncs.total - before
        return call

    runner = trainer.runner
    runner.batch, runner.step = counted(type(runner).batch.__get__(runner)), counted(type(runner).step.__get__(runner))
    before, step = syncs.total, trainer.step
    trainer.train_epoch()
    assert trainer.step == step + 1
    return hot[0], syncs.total - before


def stage4_forward(model, outputs: int) -> None:
    """The model on a padded batch of three lengths, as extraction builds it, in eval mode."""
    model.eval()
    wavs = [np.zeros(n, dtype=np.float32) for n in (6000, 3000, 1000)]
    with torch.no_grad():
        out = model(*pad_batch(wavs, torch.device("cuda")))
    assert out.device.type == "cuda" and out.dtype == torch.float32 and tuple(out.shape) == (3, outputs)


@pytest.mark.parametrize("name", CONFIGS)
def test_config_trains_and_infers_on_fake_cuda(name, data_dir, tmp_path):
    cfg = load_config(CONF / name, tiny_overrides(CONF / name))
    with fake_cuda() as syncs:
        trainer = fake_cuda_trainer(cfg, data_dir, tmp_path)
        assert all(p.device.type == "cuda" for p in trainer.trainee.parameters())
        counts = {amp: train_one_step(trainer, amp, syncs) for amp in ("none", "bf16", "fp16")}
        stage4_forward(trainer.trainee.model, trainer.trainee.model.output_dim)
    assert syncs.cuda_calls["reset_peak_memory_stats"] == 3, "the peak memory is the epoch's own"
    assert all(hot <= MAX_SYNCS_PER_STEP and epoch <= hot + MAX_SYNCS_PER_EPOCH for hot, epoch in counts.values()), (
        f"host synchronisations (step, epoch of one step) {counts}, at most {MAX_SYNCS_PER_STEP} per step and "
        f"{MAX_SYNCS_PER_EPOCH} per epoch: " + ", ".join(f"{n} x {where}" for where, n in Counter(syncs.where).items()))


def test_loader_pins_memory_for_cuda_only(data_dir, tmp_path):
    cfg = load_config(CONF / "sv" / "mini.yaml", tiny_overrides(CONF / "sv" / "mini.yaml"))
    with fake_cuda():
        trainer = fake_cuda_trainer(cfg, data_dir, tmp_path / "cuda")
        assert type(trainer).loader(trainer).pin_memory
    from spkpeft.engine.trainer import Trainer

    assert not Trainer(cfg, get_task(cfg), data_dir, tmp_path / "cpu").loader().pin_memory


def test_pretraining_steps_on_fake_cuda(data_dir, tmp_path, monkeypatch):
    """BEST-RQ: the target statistics, a training step and its backward (real, on meta) on
    fake CUDA; the checkpoint writes (fake tensors have no bytes) are only recorded."""
    import spkpeft.engine.pretrain as pretrain

    saved = []
    monkeypatch.setattr(pretrain, "save_atomic", lambda obj, path: saved.append(Path(path).name))
    cfg = pretrain.PretrainConfig(steps=1, batch_size=2, crop_seconds=CROP, warmup_steps=0, stats_utts=2,
                                  codebook_size=8, codebook_dim=4)
    monkeypatch.setattr(pretrain, "build_model", for_real(pretrain.build_model))
    with fake_cuda(dynamic_shapes=True):
        trainer = pretrain.Pretrainer(cfg, data_dir, tmp_path, device="cuda")
        trainer.run()
    model = pretrain.build_model(cfg)[0]
    with fake_cuda(dynamic_shapes=True):  # the real backward, on meta (lengths stay on the host, as the trainer's)
        for_real(model.to)("meta")
        samples = int(CROP * 16000)
        loss, _ = model.train()(torch.zeros(2, samples, device="meta"), torch.full((2,), samples),
                                cfg.mask_prob, cfg.mask_span, np.random.default_rng(0))
        loss.backward()
    assert trainer.step == 1 and saved == ["last.pt", "upstream.pt"]


@pytest.mark.parametrize("bug", ["arange_without_device", "zeros_on_the_host"])
def test_the_tier_catches_an_injected_device_bug(bug, data_dir, tmp_path, monkeypatch):
    """A tensor made on the host inside the model: the fake-CUDA tier fails as a GPU would."""
    import spkpeft.nn.heads as heads
    import spkpeft.nn.losses as losses

    if bug == "arange_without_device":
        monkeypatch.setattr(heads, "frame_mask", lambda lengths, n: torch.arange(n)[None, :] < lengths[:, None])
    else:
        margin_logits = losses.MarginSoftmax.margin_logits
        monkeypatch.setattr(losses.MarginSoftmax, "margin_logits",
                            lambda self, cos, labels: margin_logits(self, cos, labels) + torch.zeros(cos.shape))
    cfg = load_config(CONF / "sv" / "mini.yaml", tiny_overrides(CONF / "sv" / "mini.yaml"))
    with pytest.raises(RuntimeError, match="device"), fake_cuda() as syncs:
        train_one_step(fake_cuda_trainer(cfg, data_dir, tmp_path), "none", syncs)


def test_a_cpu_run_resumes_on_cuda_with_fp16(data_dir, tmp_path, monkeypatch):
    """A run started on the CPU (where fp16 needs no scaler: it saves an empty scaler state)
    resumes on CUDA with the fp16 loss scaler, and the CUDA run's checkpoint resumes on the CPU."""
    from spkpeft.engine.trainer import Trainer

    over = {**tiny_overrides(CONF / "sv" / "mini.yaml"), "train.epochs": 2}
    cfg = load_config(CONF / "sv" / "mini.yaml", {**over, "train.epochs": 1})
    Trainer(cfg, get_task(cfg), data_dir, tmp_path).run()
    cfg = load_config(CONF / "sv" / "mini.yaml", over)
    import spkpeft.engine.trainer as trainer_module

    for name in ("load_checkpoint", "set_rng_state"):  # the checkpoint's real tensors, the real RNG
        monkeypatch.setattr(trainer_module, name, for_real(getattr(trainer_module, name)))
    with fake_cuda():
        trainer = fake_cuda_trainer(cfg, data_dir, tmp_path)
        assert trainer.resume() and trainer.epoch == 1 and trainer.scaler.is_enabled()
        state = trainer.state()["scaler"]
    assert state["scale"] == 2.0 ** 16
    cpu = Trainer(cfg, get_task(cfg), data_dir, tmp_path)
    cpu.scaler.load_state_dict(state)  # what resume() does with a CUDA run's checkpoint
    assert not cpu.scaler.is_enabled()
