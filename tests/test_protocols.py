"""The protocol options of the reference implementations (docs/paper_protocols.md): crops,
batches, the cm score rule, trained LayerNorms, initialisations, position embeddings, waveform
normalisation, optimizers and schedules, checkpoint averaging and early stopping, the
one-class softmax's centre optimizer, and the official ASVspoof 2021 t-DCF coefficients."""

from __future__ import annotations

import math
import pickle
import types
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import REPO
from spkpeft.config import build
from spkpeft.data.crops import (BalancedBatchSampler, CropDataset, DataConfig, ShuffledBatchSampler, batch_sampler,
                                first_samples)
from spkpeft.engine.extract import ExtractConfig, model_inputs
from spkpeft.engine.optim import best_epochs, make_optimizer, step_decay_factor, stop_early
from spkpeft.engine.trainer import Trainee, Trainer, TrainConfig, build_optimizer
from spkpeft.errors import SpkpeftError
from spkpeft.eval.cm_metrics import (AsvErrorRates, Tdcf2021Coefficients, asv_error_rates, min_tdcf_2021,
                                     min_tdcf_2021_from, read_asv_scores, read_c012, read_official_c012,
                                     tdcf_2021_coefficients)
from spkpeft.nn.losses import OneClassSoftmax
from spkpeft.peft import apply_peft
from spkpeft.tasks.cm.task import BonafideScore, CMTask, bonafide_scores, build_cm_model
from spkpeft.tasks.config import Config, load_config
from spkpeft.upstream import build_upstream

pytestmark = pytest.mark.usefixtures("isolated_model_cache")
CONF = REPO / "conf"


def write_wav(path: Path, wav: np.ndarray) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), wav, 16000, subtype="FLOAT")
    return str(path)


# --------------------------------------------------------------------- crops and batches

def test_first_crop_starts_at_zero_and_tiles_short_utterances(tmp_path):
    rng = np.random.default_rng(0)
    long, short = rng.standard_normal(3000).astype(np.float32), rng.standard_normal(700).astype(np.float32)
    utts = [("long", write_wav(tmp_path / "long.wav", long), 0), ("short", write_wav(tmp_path / "short.wav", short), 1)]
    first = CropDataset(utts, 2, 1000 / 16000, first=True)
    random = CropDataset(utts, 2, 1000 / 16000)
    for seed in (1, 2, 3):
        np.testing.assert_array_equal(first[(0, seed)][0].numpy(), long[:1000])
        np.testing.assert_array_equal(first[(1, seed)][0].numpy(), np.concatenate([short, short[:300]]))
    starts = {int(np.flatnonzero(np.isclose(long, float(random[(0, s)][0][0])))[0]) for s in range(8)}
    assert len(starts) > 1  # the default still draws the start
    np.testing.assert_array_equal(first_samples(short, 1000), np.tile(short, 2)[:1000])


def test_shuffle_sampler_keeps_corpus_proportions_and_drops_the_last_batch():
    labels = [0] * 27 + [1] * 3
    sampler = ShuffledBatchSampler(labels, batch_size=4, seed=1, drop_last=True)
    batches = sampler.epoch_batches(0)
    assert len(batches) == 7 and all(len(b) == 4 for b in batches)  # 30 // 4, the partial one dropped
    seen = [i for b in batches for i, _ in b]
    assert len(set(seen)) == 28 and set(seen) <= set(range(30))  # each utterance at most once
    assert sampler.epoch_batches(0) == batches and sampler.epoch_batches(1) != batches
    kept = ShuffledBatchSampler(labels, batch_size=4, seed=1, drop_last=False).epoch_batches(0)
    assert len(kept) == 8 and len(kept[-1]) == 2 and sorted(i for b in kept for i, _ in b) == list(range(30))
    assert isinstance(batch_sampler(DataConfig(batch_size=4), labels, 0), BalancedBatchSampler)
    assert isinstance(batch_sampler(DataConfig(batch_size=4, sampler="shuffle"), labels, 0), ShuffledBatchSampler)
    halves = [ShuffledBatchSampler(labels, 4, seed=1, rank=r, world_size=2) for r in (0, 1)]
    for rank, part in enumerate(halves):
        part.set_epoch(0)
        assert list(part) == sampler.epoch_batches(0)[:6][rank::2]


def test_evaluation_crop_first_samples_or_chunks(tmp_path):
    from spkpeft.io.audio import AudioFile

    wav = np.arange(100000, dtype=np.float32)
    first = model_inputs(wav, ExtractConfig(crop="first", crop_samples=64600))
    assert len(first) == 1 and np.array_equal(first[0], wav[:64600])
    short = model_inputs(wav[:30000], ExtractConfig(crop="first"))[0]
    assert np.array_equal(short, np.concatenate([wav[:30000], wav[:30000], wav[:4600]]))
    chunks = model_inputs(wav, ExtractConfig(chunk_seconds=2.0))
    assert [len(c) for c in chunks] == [25000] * 4 and np.array_equal(np.concatenate(chunks), wav)
    # stage 4 reads files: the same inputs from an AudioFile (chunks read lazily, the first crop at once)
    audio = (np.sin(np.arange(100000) / 7.0) * 0.5).astype(np.float32)
    sf.write(tmp_path / "long.wav", audio, 16000, subtype="FLOAT")
    sf.write(tmp_path / "short.wav", audio[:30000], 16000, subtype="FLOAT")
    for name, samples in (("long.wav", audio), ("short.wav", audio[:30000])):
        for cfg in (ExtractConfig(crop="first"), ExtractConfig(chunk_seconds=2.0)):
            from_file = [np.asarray(p) for p in model_inputs(AudioFile(tmp_path / name), cfg)]
            from_array = model_inputs(samples, cfg)
            assert len(from_file) == len(from_array)
            assert all(np.array_equal(a, b) for a, b in zip(from_file, from_array))


# --------------------------------------------------------------------- cm score rule

def test_score_rules_and_the_model_carries_its_rule():
    logits = np.array([[2.0, -1.0], [0.0, 3.0], [5.0, 4.0]])
    np.testing.assert_allclose(bonafide_scores(logits), [-3.0, 3.0, -1.0])
    np.testing.assert_allclose(bonafide_scores(logits, "bonafide_logit"), [-1.0, 3.0, 4.0])
    with pytest.raises(SpkpeftError, match="task.score"):
        bonafide_scores(logits, "posterior")
    cfg = load_config(CONF / "cm" / "mini.yaml", {"task.score": "bonafide_logit", "head.channels": 16})
    model = build_cm_model(cfg).eval()
    wavs, lens = torch.randn(2, 8000) * 0.1, torch.tensor([8000, 8000])
    with torch.no_grad():
        out = model(wavs, lens)
        assert torch.equal(BonafideScore(model)(wavs, lens)[:, 0], out[:, 1])
        assert torch.equal(BonafideScore(model, "log_posterior_ratio")(wavs, lens)[:, 0], out[:, 1] - out[:, 0])


def test_selection_by_development_loss():
    task = CMTask()
    assert task.selection == ("val_eer_pct", "min")
    cfg = load_config(CONF / "cm" / "mini.yaml", {"task.select_by": "loss"})
    data = types.SimpleNamespace(wav={"a": "x", "b": "y"}, utt2label={"a": "bonafide", "b": "spoof"}, utt2attack=None,
                                 path=Path("d"))
    task.training_data(cfg, data, 0)
    assert task.selection == ("val_loss", "min")


# --------------------------------------------------------------------- PEFT details

def ast_upstream(**extra):
    cfg = load_config(CONF / "cls" / "ast_mini.yaml", {"upstream.name": "random:tiny_ast", **extra}).upstream
    return build_upstream(cfg)


def trainable_names(upstream) -> set[str]:
    return {n for n, p in upstream.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("norms, expected", [
    (["output"], {"model.layernorm.weight", "model.layernorm.bias"}),
    (["ffn"], {f"model.layers.{i}.layernorm_after.{w}" for i in (0, 1) for w in ("weight", "bias")}),
    (["attention", "ffn"], {f"model.layers.{i}.layernorm_{s}.{w}" for i in (0, 1) for s in ("before", "after")
                            for w in ("weight", "bias")}),
])
def test_train_norms_unfreezes_exactly_those_layer_norms(norms, expected):
    from spkpeft.peft import LoRAConfig

    upstream = ast_upstream()
    apply_peft(upstream, LoRAConfig(rank=2, train_norms=norms))
    assert {n for n in trainable_names(upstream) if "lora" not in n} == expected


def test_train_norms_on_post_ln_wavlm_names_the_norms_each_sublayer_reads():
    from spkpeft.peft import FrozenConfig

    upstream = build_upstream(load_config(CONF / "cm" / "mini_tiny_wavlm.yaml").upstream)
    apply_peft(upstream, FrozenConfig(train_norms=["attention", "ffn"]))
    names = trainable_names(upstream)
    assert "model.encoder.layer_norm.weight" in names  # what block 0's attention reads (post-LN)
    assert {f"model.encoder.layers.{i}.self_attn_layer_norm.weight" for i in range(3)} <= names
    with pytest.raises(SpkpeftError, match="no final LayerNorm"):
        apply_peft(build_upstream(load_config(CONF / "cm" / "mini_tiny_wavlm.yaml").upstream),
                   FrozenConfig(train_norms=["output"]))


def test_train_norms_on_pre_ln_whisper_names_each_blocks_own_norms():
    from spkpeft.peft import FrozenConfig
    from spkpeft.upstream.whisper import load_whisper

    upstream = load_whisper("random:tiny_whisper")
    apply_peft(upstream, FrozenConfig(train_norms=["attention", "ffn", "output"]))
    expected = {f"model.layers.{i}.{norm}.{w}" for i in range(upstream.num_layers)
                for norm in ("self_attn_layer_norm", "final_layer_norm") for w in ("weight", "bias")}
    assert trainable_names(upstream) == expected | {"model.layer_norm.weight", "model.layer_norm.bias"}


def test_lora_zero_factor_down_starts_from_the_pretrained_model_and_trains_down():
    from spkpeft.peft.lora import LoRALinear

    base = torch.nn.Linear(8, 6)
    up, down = LoRALinear(base, 2, 4.0), LoRALinear(base, 2, 4.0, zero_factor="down")
    assert torch.all(up.lora_B == 0) and torch.any(up.lora_A != 0)
    assert torch.all(down.lora_A == 0) and torch.any(down.lora_B != 0)
    x = torch.randn(3, 8)
    assert torch.equal(down(x), base(x))
    down(x).sum().backward()
    assert down.lora_A.grad.abs().sum() > 0 and down.lora_B.grad.abs().sum() == 0


def test_adapter_initialisations():
    from spkpeft.peft.adapters import make_adapter

    h = torch.randn(5, 2, 16)
    zero_all = make_adapter(16, 4, "bottleneck", 3, "gelu", 1.0, True, init="zero_all")
    zero_all(h).sum().backward()
    grads = {n: p.grad.abs().sum().item() for n, p in zero_all.named_parameters()}
    assert grads == {"down.weight": 0.0, "down.bias": 0.0, "up.weight": 0.0, "up.bias": grads["up.bias"]}
    assert grads["up.bias"] > 0  # the adapter reduces to a learned bias (PETL-AST's Bottleneck_adapter)
    default = make_adapter(16, 4, "conformer_module", 3, "gelu", 1.0, True, init="default", module_norm=False)
    assert isinstance(default.norm, torch.nn.Identity) and default.pointwise_out.weight.abs().sum() > 0
    assert default(h).abs().sum() > 0  # the model no longer equals the pre-trained one at step 0
    ours = make_adapter(16, 4, "conformer_module", 3, "gelu", 1.0, True)
    assert isinstance(ours.norm, torch.nn.LayerNorm) and torch.all(ours(h) == 0)


def test_attentive_merge_initialisation_of_the_reference():
    from spkpeft.nn.aggregation import ConcatAttentiveMerge

    torch.manual_seed(0)
    ours, reference = ConcatAttentiveMerge(13, 64), ConcatAttentiveMerge(13, 64, init="normal")
    assert torch.all(ours.squeeze.weight == 1 / 64)
    for weight in (reference.squeeze.weight, reference.excite[0].weight, reference.excite[2].weight):
        assert abs(float(weight.std()) - 1.0) < 0.35  # N(0, 1), as torch.randn in class AttM
    assert load_config(CONF / "cm" / "attm_paper.yaml").aggregation.init == "normal"


def test_ast_positions_zeroed_when_resized_and_trained_only_by_full_fine_tuning():
    from spkpeft.peft import FullFinetuneConfig, LoRAConfig

    adapted = ast_upstream(**{"upstream.max_length": 100})
    zeroed = ast_upstream(**{"upstream.max_length": 100, "upstream.positions": "zeroed_if_resized"})
    kept = ast_upstream(**{"upstream.max_length": 128, "upstream.positions": "zeroed_if_resized"})
    table = lambda u: u.model.embeddings.position_embeddings  # noqa: E731
    assert table(adapted).abs().sum() > 0 and torch.all(table(zeroed) == 0) and table(kept).abs().sum() > 0
    apply_peft(zeroed, LoRAConfig(rank=2))
    assert not table(zeroed).requires_grad
    full = ast_upstream(**{"upstream.max_length": 100, "upstream.positions": "zeroed_if_resized"})
    apply_peft(full, FullFinetuneConfig(freeze_cnn=False))
    assert table(full).requires_grad


def test_waveform_normalisation_follows_the_checkpoint_unless_forced():
    def upstream(value):
        return build_upstream(load_config(CONF / "cm" / "mini_tiny_wavlm.yaml", {
            "upstream.name": "random:tiny_wav2vec2", "upstream.normalize_waveform": value}).upstream).eval()

    default, raw = upstream(None), upstream(False)
    assert default.normalize_input and not raw.normalize_input and upstream(True).normalize_input
    raw.load_state_dict(default.state_dict())
    wav = torch.randn(1, 8000) * 0.05 + 0.02
    with torch.no_grad():
        a, b = default(wav, torch.tensor([8000]))[0][-1], raw(wav, torch.tensor([8000]))[0][-1]
        c = raw(torch.nn.functional.layer_norm(wav, (8000,)), torch.tensor([8000]))[0][-1]
    assert not torch.allclose(a, b) and torch.allclose(a, c, atol=1e-4)


# --------------------------------------------------------------------- optimizer and schedule

def schedule(cfg: TrainConfig, steps_per_epoch: int):
    """``Trainer.lr_lambda`` of ``cfg`` without building a trainer."""
    trainer = types.SimpleNamespace(cfg=types.SimpleNamespace(train=cfg), steps_per_epoch=steps_per_epoch)
    return lambda group: Trainer.lr_lambda(trainer, group)


def test_attm_learning_rates_per_epoch_as_the_reference():
    cfg = load_config(CONF / "cm" / "attm_paper.yaml").train
    lam = schedule(cfg, steps_per_epoch=7)
    head, peft = lam({"name": "head"}), lam({"name": "peft"})
    reference = [(e + 1) / 5 if e < 5 else 0.8 ** (e - 5) for e in range(30)]  # LinearWarm_ExpDecay(5, gamma 0.8)
    for epoch in range(30):
        for step in (epoch * 7, epoch * 7 + 6):  # constant within the epoch
            assert math.isclose(head(step), reference[epoch], rel_tol=1e-12)
            assert math.isclose(peft(step), reference[epoch], rel_tol=1e-12)
    assert math.isclose(1e-4 * peft(10 * 7), 3.2768e-5, rel_tol=1e-12)  # phase 2 starts near 3.3e-5
    restart = schedule(TrainConfig(**{**vars(cfg), "two_phase_schedule": "restart"}), 7)({"name": "peft"})
    assert restart(10 * 7 - 1) == 0.0 and restart(10 * 7) == 1 / 5


def test_spectralft_and_petl_ast_schedules():
    sgd = schedule(load_config(CONF / "sv" / "spectral_lora_paper.yaml").train, 3)({"name": "head"})
    assert all(math.isclose(sgd(3 * e + 2), 0.97 ** e, rel_tol=1e-12) for e in range(30))  # StepLR(1, 0.97)
    petl = load_config(CONF / "cls" / "ast_lora_paper.yaml").train
    cosine = schedule(petl, 4)({"name": "peft"})
    total = 4 * petl.epochs
    assert all(math.isclose(cosine(t), 0.5 * (1 + math.cos(math.pi * t / total)), abs_tol=1e-12) for t in range(total))
    assert schedule(TrainConfig(scheduler="constant", warmup_epochs=0), 3)({"name": "head"})(50) == 1.0


def test_optimizers_and_the_plain_sgd_group():
    cfg = load_config(CONF / "cm" / "mini.yaml", {"loss.type": "ocsoftmax", "loss.centre_optimizer": "sgd",
                                                   "loss.centre_lr": 0.5, "train.optimizer": "adam",
                                                   "train.betas": [0.8, 0.9], "train.eps": 1e-6})
    model = build_cm_model(cfg)
    trainee = Trainee(model, OneClassSoftmax(cfg.loss))
    opt = build_optimizer(trainee, cfg.train)
    assert isinstance(opt, torch.optim.Adam) and not isinstance(opt, torch.optim.AdamW)
    names = [g["name"] for g in opt.param_groups]
    assert names == ["head", "centre"] and opt.param_groups[0]["betas"] == (0.8, 0.9)
    centre = model.classifier.centre
    assert all(centre is not p for p in opt.param_groups[0]["params"])
    before = centre.detach().clone()
    others = [p.detach().clone() for p in opt.param_groups[0]["params"]]
    loss, _ = trainee(torch.randn(4, 8000) * 0.1, torch.full((4,), 8000), torch.tensor([0, 1, 0, 1]))
    loss.backward()
    grad = centre.grad.clone()
    opt.step()
    assert torch.allclose(centre, before - 0.5 * grad)  # p <- p - lr * grad (AIR-ASVspoof's SGD)
    assert any(not torch.equal(p, q) for p, q in zip(opt.param_groups[0]["params"], others))
    assert [step_decay_factor(e, 0.5, 10) for e in (0, 9, 10, 25)] == [1.0, 1.0, 0.5, 0.25]
    lam = schedule(cfg.train, 5)(opt.param_groups[1])
    assert lam(49) == 1.0 and lam(50) == 0.5  # halved after 10 epochs of 5 steps
    sgd = make_optimizer([{"params": [torch.nn.Parameter(torch.zeros(2))]}], TrainConfig(optimizer="sgd", momentum=0.9))
    assert isinstance(sgd, torch.optim.SGD) and sgd.param_groups[0]["momentum"] == 0.9


def test_best_epochs_and_early_stopping():
    losses = [(1, 0.9), (2, 0.5), (3, 0.6), (4, 0.5), (5, 0.7), (6, 0.4), (7, float("nan"))]
    assert best_epochs(losses, 3, "min") == [2, 4, 6]  # ties in epoch order
    assert best_epochs([(1, 10.0), (2, 30.0), (3, 20.0)], 2, "max") == [2, 3]
    flat = [(e, 1.0) for e in range(1, 8)]  # no improvement after epoch 1
    assert not stop_early(flat[:5], 5, 1, "min") and stop_early(flat[:6], 5, 1, "min")
    assert not stop_early(flat[:6], 5, 7, "min") and stop_early(flat, 5, 7, "min")
    assert not stop_early(flat, 0, 1, "min")


# --------------------------------------------------------------------- config checks

@pytest.mark.parametrize("key, value, message", [
    ("task.score", "posterior", "key 'task.score' must be one of: log_posterior_ratio, bonafide_logit"),
    ("task.select_by", 3, "key 'task.select_by' must be str, got int"),
    ("data.train_crop", "middle", "key 'data.train_crop' must be one of: random, first"),
    ("data.sampler", "weighted", "key 'data.sampler' must be one of: balanced, shuffle"),
    ("data.drop_last", "yes", "key 'data.drop_last' must be bool, got str"),
    ("extract.crop", "last", "key 'extract.crop' must be one of: chunks, first"),
    ("upstream.normalize_waveform", "no", "key 'upstream.normalize_waveform' must be bool or null, got str"),
    ("peft.train_norms", ["final"], "key 'peft.train_norms' must be one of: output, attention, ffn"),
    ("loss.centre_optimizer", "adam", "key 'loss.centre_optimizer' must be one of: with_head, sgd"),
    ("train.betas", "0.9", "key 'train.betas' must be list of float, got str"),
    ("train.lr_stepping", "epoch", "unknown key 'train.lr_stepping'"),
])
def test_new_keys_are_checked_naming_file_and_key(key, value, message, tmp_path):
    import yaml

    section, name = key.split(".")
    base = CONF / "cm" / ("lora.yaml" if key.startswith(("peft.", "upstream.")) else "mini.yaml")
    if key == "loss.centre_optimizer":
        value = {"type": "ocsoftmax", "centre_optimizer": value}
        name = None
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"base": str(base), section: {name: value} if name else value}))
    with pytest.raises(SpkpeftError) as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value)


@pytest.mark.parametrize("overrides, message", [
    ({"train.optimizer": "rmsprop"}, "train.optimizer must be one of adamw, adam, sgd"),
    ({"train.lr_step": "step"}, "train.lr_step must be one of batch, epoch"),
    ({"train.two_phase_schedule": "later"}, "train.two_phase_schedule must be one of restart, continue"),
    ({"train.average_best": 2, "train.average_last": 2}, "not set together with train.average_last"),
    ({"train.scheduler": "exponential", "train.final_lr_ratio": 0.0}, "train.final_lr_ratio must be in [0, 1]"),
    ({"data.shards": "x", "data.sampler": "shuffle"}, "data.sampler must be balanced with data.shards"),
])
def test_new_values_are_checked(overrides, message):
    with pytest.raises(SpkpeftError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_config(CONF / "cm" / "mini.yaml", overrides)


def test_config_defaults_keep_the_previous_behaviour():
    cfg = build(Config, {}, {}, "<defaults>")
    assert (cfg.data.train_crop, cfg.data.sampler, cfg.extract.crop) == ("random", "balanced", "chunks")
    assert (cfg.train.optimizer, cfg.train.lr_step, cfg.train.two_phase_schedule) == ("adamw", "batch", "restart")
    assert cfg.peft.train_norms == [] and cfg.train.average_best == 0 and cfg.train.early_stop_patience == 0
    cm = load_config(CONF / "cm" / "base.yaml")
    assert (cm.task.score, cm.task.select_by) == ("log_posterior_ratio", "eer")


# --------------------------------------------------------------------- ASVspoof 2021 t-DCF coefficients

RATES = AsvErrorRates(pfa_asv=0.02, pmiss_asv=0.03, pmiss_spoof_asv=0.4, pfa_spoof_asv=0.6, threshold=0.0)


def test_official_c012_file_is_read_without_running_code(tmp_path):
    ours = tdcf_2021_coefficients(RATES)
    table = {"Pooled": {"Pooled": {"C0": np.float64(ours.c0), "C1": ours.c1, "C2": np.float64(ours.c2)}},
             "A07": {"C1": {"C0": 1.0, "C1": 2.0, "C2": 3.0}}}
    path = tmp_path / "LA-C012-eval.npy"
    np.array(table).dump(str(path))  # how the eval-package writes it (eval_wrapper.dump_C012_dict)
    official = read_official_c012(path)
    assert official.source == "official" and official.close_to(ours, rtol=0)
    assert read_official_c012(path, ("A07", "C1")) == Tdcf2021Coefficients(1.0, 2.0, 3.0, "official")
    bona, spoof = np.array([2.0, 1.5, 0.1, 3.0]), np.array([-1.0, 0.2, 1.6, -0.5])
    assert min_tdcf_2021_from(bona, spoof, official) == min_tdcf_2021(bona, spoof, RATES)
    evil = tmp_path / "evil.npy"
    evil.write_bytes(pickle.dumps(types.SimpleNamespace(a=1)))
    with pytest.raises(SpkpeftError, match=r"evil.npy: not an ASVspoof 2021 C012 file .*types.SimpleNamespace"):
        read_official_c012(evil)
    text = tmp_path / "la_eval.c012"
    text.write_text(f"{ours.c0!r} {ours.c1!r} {ours.c2!r}\n")
    assert read_c012(text).close_to(ours, rtol=0)
    text.write_text("1 2\n")
    with pytest.raises(SpkpeftError, match=r"la_eval.c012:1: expected 3 fields"):
        read_c012(text)


def test_stage_1_keeps_the_official_c012_and_stage_5_uses_them(tmp_path, caplog):
    from test_prepare_asvspoof import make_2021, prepare

    from spkpeft.tasks.cm.evaluate import evaluate_set

    root = make_2021(tmp_path / "asvspoof2021")
    official = {"Pooled": {"Pooled": {"C0": 0.05, "C1": 0.8905, "C2": 0.25}}}
    np.array(official).dump(str(root / "keys" / "LA" / "LA-C012-eval.npy"))
    out = tmp_path / "data" / "asvspoof2021"
    res = prepare("asvspoof2021", root, out, "--tracks", "la")
    assert res.returncode == 0, res.stderr
    assert (out / "asv" / "la_eval.c012").read_text() == "0.05 0.8905 0.25\n"
    exp = tmp_path / "exp"
    scores = {"LA_E_9332881": -1.0, "LA_E_7294490": 2.0, "LA_E_1000001": 0.5}
    (exp / "cm_scores" / "la_eval").mkdir(parents=True)
    (exp / "cm_scores" / "la_eval" / "scores.txt").write_text("".join(f"{u} {s}\n" for u, s in sorted(scores.items())))
    with caplog.at_level("WARNING", logger="spkpeft.cm"):
        row = evaluate_set(exp, out / "la_eval")
    assert row["tdcf_2021_coefficients"] == "official"
    bona, spoof = np.array([2.0, 0.5]), np.array([-1.0])
    assert row["min_tdcf_2021"] == min_tdcf_2021_from(bona, spoof, Tdcf2021Coefficients(0.05, 0.8905, 0.25))
    assert "differ from those of" in caplog.text and "la_eval.scores" in caplog.text  # the synthetic ASV scores
    (out / "asv" / "la_eval.c012").unlink()
    row = evaluate_set(exp, out / "la_eval")
    asv = read_asv_scores(out / "asv" / "la_eval.scores")
    rates = asv_error_rates(asv.target, asv.nontarget, asv.spoof)
    assert "tdcf_2021_coefficients" not in row and row["min_tdcf_2021"] == min_tdcf_2021(bona, spoof, rates)
