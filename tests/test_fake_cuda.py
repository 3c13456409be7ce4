"""The fake-CUDA tier: every config of conf/ trains a step and runs a stage-4 forward on "cuda"
tensors without a GPU (tests/fake_cuda.py), so that a CPU tensor meeting a CUDA one, or a dtype
that autocast leaves behind, fails here as it would on a GPU.

Per config, on a tiny upstream of the config's family and tiny inputs:

* on ``meta`` tensors (native, fast; a CPU tensor meeting one fails, and so does any read on the
  host): the fp32 forward, loss and real backward, and the stage-4 forward in eval mode on a
  padded batch of mixed lengths built by extraction's ``pad_batch``;
* on fake CUDA: forward and loss under the trainer's bf16 autocast, and the trainer's own
  training epoch of one batch under fp16 (forward, scaled backward, optimizer step, loss
  scaler), counting host synchronisations.

An alias config (``conf/<name>.yaml``: ``base: sv/<name>.yaml`` and nothing else) resolves to
exactly its target's config; its test checks that and leaves the step to the target's test.  The
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
#: the tests run in this order: configs of one model family together, so that the fake mode's
#: operation cache (per test worker) serves the next config
CONFIGS.sort(key=lambda name: (load_config(CONF / name).upstream.type, load_config(CONF / name).head.type, name))
#: the tiny s3prl upstream of each family (hub name fragment -> random:<arch>)
TINY_S3PRL = (("hubert", "random:tiny_hubert"), ("wav2vec2", "random:tiny_wav2vec2"),
              ("xls_r", "random:tiny_wav2vec2"), ("", "random:tiny_wavlm"))
CROP = 0.25
BATCH = 4
#: host synchronisations allowed per optimizer step of the training hot path (the batches' forward
#: and backward and the step): the one read of the step's finiteness check, which decides whether
#: the optimizer steps; and per epoch besides: the one read of the epoch's mean loss and accuracy
MAX_SYNCS_PER_STEP = 1
MAX_SYNCS_PER_EPOCH = 1


def tiny_overrides(path: Path) -> dict:
    """Overrides that keep the config's components but make them tiny and the data one batch."""
    cfg = load_config(path)
    over = {"data.crop_seconds": CROP, "data.batch_size": BATCH, "data.num_workers": 0,
            "train.save_every_steps": 0, "train.log_every_steps": 0, "train.amp": "fp16"}
    if cfg.upstream.type == "s3prl":
        name = next(tiny for fragment, tiny in TINY_S3PRL if fragment in cfg.upstream.name)
        over.update({"upstream.name": name, "upstream.num_layers": 1})
    elif cfg.upstream.type == "ast":
        over.update({"upstream.name": "random:tiny_ast", "upstream.max_length": 100})
        if not getattr(cfg.peft, "train_output_norm", False):  # that needs the final LayerNorm: all blocks
            over["upstream.num_layers"] = 1
    elif cfg.upstream.type == "whisper":  # the 2-block test encoder; PMFA's block range fitted to it
        over["upstream.name"] = "random:tiny_whisper"
        if cfg.aggregation.type == "pmfa":
            over.update({"upstream.num_layers": 2, "aggregation.first": 1, "aggregation.last": 2})
        if getattr(cfg.peft, "layers", "all") not in ("all", None):
            over["peft.layers"] = [1]
        if cfg.peft.method == "spectral_lora":
            over["peft.top_r"] = 16
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


def on_meta(trainee) -> None:
    """``trainee`` (model and loss) on ``meta``: the fp32 training forward, loss and real
    backward, then the stage-4 forward in eval mode on a padded batch of mixed lengths (built by
    extraction's ``pad_batch``, the training batch's shape); leaves it on meta, gradients unset."""
    meta = torch.device("meta")
    trainee.to(meta).train()
    samples = int(CROP * 16000)
    loss, _ = trainee(torch.zeros(BATCH, samples, device=meta), torch.full((BATCH,), samples, device=meta),
                      torch.zeros(BATCH, dtype=torch.long, device=meta))
    assert loss.dim() == 0 and loss.dtype == torch.float32, "the training loss must be a float32 scalar"
    loss.backward()
    trainee.zero_grad(set_to_none=True)
    model = trainee.model.eval()
    wavs = [np.zeros(n, dtype=np.float32) for n in (samples, samples // 2, samples // 3, samples // 5)]
    with torch.no_grad():
        out = model(*pad_batch(wavs, meta))
    assert out.device == meta and out.dtype == torch.float32 and tuple(out.shape) == (BATCH, model.output_dim)


def fake_cuda_trainer(cfg, data_dir: Path, exp: Path):
    """The trainer of ``cfg`` on fake CUDA (call inside :func:`fake_cuda`): its model built for
    real and run on meta first (:func:`on_meta`, outside the fake mode), its batches read for real."""
    from spkpeft.engine.trainer import Trainee, Trainer

    task = get_task(cfg)
    build_loss = for_real(task.build_loss)

    def build_loss_then_meta(cfg, model, data):
        loss = build_loss(cfg, model, data)
        for_real(on_meta)(Trainee(model, loss))
        return loss

    task.build_model = for_real(task.build_model)
    task.build_loss = build_loss_then_meta
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


def forward_and_loss(trainee, amp: str) -> None:
    """The training forward and loss of one batch on fake CUDA under the trainer's autocast."""
    from spkpeft.engine.trainer import autocast_context

    samples = int(CROP * 16000)
    wavs, lens = torch.zeros(BATCH, samples, device="cuda"), torch.full((BATCH,), samples, device="cuda")
    with autocast_context(amp, torch.device("cuda")):
        loss, _ = trainee.train()(wavs, lens, torch.zeros(BATCH, dtype=torch.long, device="cuda"))
    assert loss.dtype == torch.float32 and loss.device.type == "cuda"


def alias_target(name: str) -> str | None:
    """``sv/<name>.yaml`` when ``conf/<name>`` is only ``base: sv/<name>.yaml``."""
    import yaml

    if "/" in name:
        return None
    data = yaml.safe_load((CONF / name).read_text())
    return data["base"] if set(data) == {"base"} and data["base"] in CONFIGS else None


@pytest.mark.parametrize("name", CONFIGS)
def test_config_trains_and_infers_on_fake_cuda(name, data_dir, tmp_path):
    """The passes of the module docstring; host synchronisations: none in the bf16 forward, the
    allowed ones in the training epoch (the meta passes allow none: a read there fails)."""
    from spkpeft.tasks.config import config_to_dict

    target = alias_target(name)
    if target is not None:
        assert config_to_dict(load_config(CONF / name)) == config_to_dict(load_config(CONF / target))
        return
    cfg = load_config(CONF / name, tiny_overrides(CONF / name))
    with fake_cuda() as syncs:
        trainer = fake_cuda_trainer(cfg, data_dir, tmp_path)
        assert all(p.device.type == "cuda" for p in trainer.trainee.parameters())
        forward_and_loss(trainer.trainee, "bf16")
        forward = syncs.total
        hot, epoch = train_one_step(trainer, "fp16", syncs)
    assert syncs.cuda_calls["reset_peak_memory_stats"] == 1, "the peak memory is the epoch's own"
    assert forward == 0 and hot <= MAX_SYNCS_PER_STEP and epoch <= hot + MAX_SYNCS_PER_EPOCH, (
        f"host synchronisations: {forward} in the bf16 forward, {hot} in the training step (at most "
        f"{MAX_SYNCS_PER_STEP}), {epoch} in its epoch (at most {MAX_SYNCS_PER_EPOCH} more): "
        + ", ".join(f"{n} x {where}" for where, n in Counter(syncs.where).items()))


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
