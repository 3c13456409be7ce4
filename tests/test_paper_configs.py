"""The *_paper.yaml configs (docs/paper_protocols.md): each trains on a tiny upstream, and its
stage 4 follows the reference's protocol: the countermeasures score the first 64,600 samples
(shorter utterances tiled) with the bona fide logit, from the checkpoint the reference tests;
PETL-AST tests the last epoch with its trained LayerNorms and zeroed positions; SpectralFT
trains with SGD stepped per epoch and tests the last epoch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import REPO, prepared_cm_corpus
from spkpeft.data.crops import first_samples
from spkpeft.data.synth_sounds import ClsCorpusSpec, write_cls_corpus
from spkpeft.engine.checkpoint import load_checkpoint
from spkpeft.engine.optim import read_epoch_metric
from spkpeft.engine.trainer import Trainer
from spkpeft.io.datadir import write_data_dir
from spkpeft.tasks.base import get_task
from spkpeft.tasks.config import load_config
from spkpeft.tasks.experiment import load_trained_model, prepare_experiment

pytestmark = pytest.mark.usefixtures("isolated_model_cache")
CONF = REPO / "conf"
SAMPLES = 64600
#: the tests' crop: the rule is the same for any N, and a shorter one keeps them fast
PROBE_SAMPLES = 12000


@pytest.fixture(scope="module")
def cm_corpus(tmp_path_factory):
    """A small ASVspoof-2019-LA-layout corpus prepared by the real stage-1 script."""
    return prepared_cm_corpus(tmp_path_factory.mktemp("cm"), n_train=12, n_dev=4, n_eval=2, n_train_spk=2,
                              n_dev_spk=2, n_eval_spk=1, bonafide_frac=0.5, min_dur=0.5, max_dur=0.8)


def probe_dir(root: Path, n: int) -> tuple[Path, dict[str, np.ndarray]]:
    """A data directory built to show the crop of ``n`` samples: ``long`` and ``tail`` share their
    first ``n`` samples and differ after them; ``tiled`` is ``short`` repeated to ``n`` samples."""
    rng = np.random.default_rng(7)
    long = (0.1 * rng.standard_normal(n + n // 2)).astype(np.float32)
    tail = long.copy()
    tail[n:] = 0.5 * rng.standard_normal(n // 2)
    short = (0.1 * rng.standard_normal(n // 3)).astype(np.float32)
    wavs = {"long": long, "short": short, "tail": tail, "tiled": first_samples(short, n)}
    paths = {}
    for utt, wav in wavs.items():
        paths[utt] = str(root / f"{utt}.wav")
        sf.write(paths[utt], wav, 16000, subtype="FLOAT")
    labels = {"long": "bonafide", "short": "spoof", "tail": "bonafide", "tiled": "spoof"}
    write_data_dir(root / "probe", paths, {u: u for u in paths}, labels)
    return root / "probe", wavs


@pytest.mark.parametrize("name, checkpoint", [("attm_paper", "avg.pt"), ("ssl_aasist_paper", "best.pt")])
def test_cm_paper_config_scores_first_samples_with_the_bonafide_logit(name, checkpoint, cm_corpus, tmp_path):
    config = tmp_path / f"{name}.yaml"
    assert load_config(CONF / "cm" / f"{name}.yaml").extract.crop_samples == SAMPLES
    phases = ", freeze_upstream_epochs: 1" if name == "attm_paper" else ""
    config.write_text(f"base: {CONF / 'cm' / name}.yaml\n"
                      "upstream: {name: 'random:tiny_wavlm'}\n"
                      "data: {crop_seconds: 0.5, batch_size: 4, num_workers: 0}\n"
                      f"train: {{epochs: 2{phases}, save_every_steps: 0, log_every_steps: 0}}\n"
                      f"extract: {{crop_samples: {PROBE_SAMPLES}}}\n")
    exp = tmp_path / "exp"
    cfg = prepare_experiment(config, exp)
    Trainer(cfg, get_task(cfg), cm_corpus / "train", exp, dev_dir=cm_corpus / "dev").run()
    losses = read_epoch_metric(exp / "train_epochs.csv", "val_loss")
    if name == "attm_paper":  # the mean of the (up to 5) epochs of lowest development loss
        assert load_checkpoint(exp / "checkpoints" / "avg.pt")["epochs"] == ["epoch_001.pt", "epoch_002.pt"]
        last = load_checkpoint(exp / "checkpoints" / "last.pt")
        assert all(s["step"] == last["step"] / 2 for s in last["optimizer"]["state"].values())  # fresh in phase 2
    else:  # the epoch of lowest development loss
        assert load_checkpoint(exp / "checkpoints" / "best.pt")["epoch"] == min(losses, key=lambda r: r[1])[0]

    model, cfg, source = load_trained_model(exp, None, torch.device("cpu"))
    assert source["checkpoint"].endswith(checkpoint)
    probe, wavs = probe_dir(tmp_path, PROBE_SAMPLES)
    get_task(cfg).infer(model, cfg, exp, probe, torch.device("cpu"), source)
    scores = dict(line.split() for line in (exp / "cm_scores" / "probe" / "scores.txt").read_text().splitlines())
    scores = {u: float(s) for u, s in scores.items()}
    assert scores["long"] == scores["tail"]  # nothing after the first N samples is seen
    assert abs(scores["short"] - scores["tiled"]) < 1e-5  # a short utterance is tiled
    with torch.no_grad():
        logits = model(torch.from_numpy(wavs["long"][:PROBE_SAMPLES])[None], torch.tensor([PROBE_SAMPLES]))
    assert abs(scores["long"] - float(logits[0, 1])) < 1e-4  # the bona fide logit, not the difference
    assert abs(float(logits[0, 1] - logits[0, 0]) - scores["long"]) > 1e-3


def test_early_stopping_ends_training_when_the_rule_says_and_stays_stopped(cm_corpus, tmp_path):
    from spkpeft.engine.optim import stop_early

    cfg = load_config(CONF / "cm" / "mini.yaml", {
        "head.channels": 16, "head.embed_dim": 16, "data.crop_seconds": 0.5, "data.batch_size": 4,
        "data.num_workers": 0, "task.select_by": "loss", "train.epochs": 6, "train.early_stop_patience": 1,
        "train.save_every_steps": 0, "train.log_every_steps": 0, "train.lr_head": 0.05})
    Trainer(cfg, get_task(cfg), cm_corpus / "train", tmp_path, dev_dir=cm_corpus / "dev").run()
    history = read_epoch_metric(tmp_path / "train_epochs.csv", "val_loss")
    stops = [k for k in range(1, 7) if stop_early(history[:k], 1, 1, "min")]
    assert stops and len(history) == stops[0] < 6  # the first epoch after which the rule holds
    Trainer(cfg, get_task(cfg), cm_corpus / "train", tmp_path, dev_dir=cm_corpus / "dev").run()  # resumed
    assert read_epoch_metric(tmp_path / "train_epochs.csv", "val_loss") == history


@pytest.fixture(scope="module")
def cls_corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("cls")
    write_cls_corpus(root, ClsCorpusSpec(classes=("flute", "rain"), n_train=2, n_dev=1, n_test=1, seconds=0.3))
    for name in ("train", "dev", "test"):
        wav = dict(line.split(maxsplit=1) for line in (root / name / "wav.scp").read_text().splitlines())
        labels = dict(line.split() for line in (root / name / "utt2label").read_text().splitlines())
        write_data_dir(root / "data" / name, wav, {u: u for u in wav}, labels)
    return root / "data"


AST_PAPER = sorted(p.stem for p in (CONF / "cls").glob("ast_*_paper.yaml"))
#: LayerNorms each PETL-AST method trains besides its own parameters (src/AST*.py)
NORMS = {"linear": {"layernorm"}, "lora": {"layernorm"}, "prompt": {"layernorm"}, "prefix": {"layernorm"},
         "adapter_pfeiffer": {"layernorm", "layernorm_after"}, "conformer_pfeiffer": {"layernorm", "layernorm_after"},
         "adapter_houlsby": {"layernorm", "layernorm_after", "layernorm_before"},
         "conformer_houlsby": {"layernorm", "layernorm_after", "layernorm_before"}}


@pytest.mark.parametrize("name", AST_PAPER)
def test_petl_ast_paper_config_trains_an_epoch_and_tests_the_last_one(name, cls_corpus, tmp_path):
    method = name[len("ast_"):-len("_paper")]
    config = tmp_path / f"{name}.yaml"
    config.write_text(f"base: {CONF / 'cls' / name}.yaml\n"
                      "upstream: {name: 'random:tiny_ast', max_length: 100}\n"
                      "data: {crop_seconds: 0.3, batch_size: 2, num_workers: 0}\n"
                      "train: {epochs: 1, save_every_steps: 0, log_every_steps: 0}\n"
                      "extract: {chunk_seconds: 1.0}\n")
    exp = tmp_path / "exp"
    cfg = prepare_experiment(config, exp)
    trainer = Trainer(cfg, get_task(cfg), cls_corpus / "train", exp, dev_dir=cls_corpus / "dev")
    upstream = trainer.trainee.model.upstream
    assert torch.all(upstream.model.embeddings.position_embeddings == 0)  # max_length 100 != 128: reset
    norm_weights = {n.split(".")[-2] for n, p in upstream.named_parameters()
                    if p.requires_grad and "norm" in n and n.endswith(".weight") and n.startswith("model.")}
    if method in NORMS:
        assert norm_weights == NORMS[method]
    if method == "lora":
        assert all(torch.all(m.lora_A == 0) for m in upstream.modules() if hasattr(m, "lora_A"))
    if method.startswith("adapter_"):
        assert all(torch.all(p == 0) for n, p in upstream.named_parameters() if ".ffn_parallel." in n)
    trainer.run()
    model, cfg, source = load_trained_model(exp, None, torch.device("cpu"))
    assert source["checkpoint"].endswith("last.pt")  # best_params is a live view: the last epoch is tested
    assert get_task(cfg).infer(model, cfg, exp, cls_corpus / "test", torch.device("cpu"), source) == 2


def test_spectral_lora_paper_config_trains_with_sgd_per_epoch_and_tests_the_last_epoch(tmp_path):
    utts = {}
    for spk in range(4):
        for i in range(2):
            path = tmp_path / f"s{spk}_{i}.wav"
            rng = np.random.default_rng(10 * spk + i)
            sf.write(str(path), (0.1 * rng.standard_normal(8000)).astype(np.float32), 16000)
            utts[f"s{spk}/v/{i}"] = str(path)
    write_data_dir(tmp_path / "train", utts, {u: u.split("/")[0] for u in utts})
    config = tmp_path / "spectral.yaml"
    config.write_text(f"base: {CONF / 'sv' / 'spectral_lora_paper'}.yaml\n"
                      "upstream: {name: 'random:tiny_wavlm'}\n"
                      "peft: {top_r: 16, rank: 2}\n"
                      "head: {channels: 16, attention_channels: 8, se_channels: 8, embed_dim: 8}\n"
                      "task: {val_speakers: 1, val_max_seconds: 0.5}\n"
                      "data: {crop_seconds: 0.3, batch_size: 2, num_workers: 0}\n"
                      "train: {epochs: 2, save_every_steps: 0, log_every_steps: 0}\n")
    exp = tmp_path / "exp"
    cfg = prepare_experiment(config, exp)
    trainer = Trainer(cfg, get_task(cfg), tmp_path / "train", exp)
    assert isinstance(trainer.optimizer, torch.optim.SGD) and trainer.optimizer.param_groups[0]["momentum"] == 0.9
    trainer.run()
    rows = (exp / "train_epochs.csv").read_text().splitlines()
    lr_head = [float(r.split(",")[rows[0].split(",").index("lr_head")]) for r in rows[1:]]
    ratio = cfg.train.final_lr_ratio  # 0.97 ** 30: x0.97 per epoch over the paper's 30 epochs, here over 2
    assert np.allclose(lr_head, [1e-3 * ratio ** 0.5, 1e-3 * ratio], rtol=0, atol=1e-6)  # csv: 6 decimals
    _, _, source = load_trained_model(exp, None, torch.device("cpu"))
    assert source["checkpoint"].endswith("last.pt")
