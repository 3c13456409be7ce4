"""The utterance-classification task: labels, validation split, model and loss, training,
posteriors; and that the task-agnostic trainer gives the same weights after a resume."""

from __future__ import annotations

import kaldiio
import numpy as np
import pytest
import torch

from conftest import REPO
from spkpeft.data.synth_sounds import ClsCorpusSpec, write_cls_corpus
from spkpeft.engine.checkpoint import load_checkpoint
from spkpeft.engine.trainer import Trainer
from spkpeft.errors import SpkpeftError
from spkpeft.io.datadir import read_data_dir, write_data_dir
from spkpeft.nn.losses import CrossEntropy, CrossEntropyConfig
from spkpeft.tasks.base import get_task
from spkpeft.tasks.base import stratified_split
from spkpeft.tasks.cls.task import ClsTask, read_classes
from spkpeft.tasks.config import load_config
from spkpeft.tasks.experiment import load_trained_model, prepare_experiment

pytestmark = pytest.mark.usefixtures("isolated_model_cache")

SMALL = """
head: {attention_channels: 8}
data: {crop_seconds: 0.5, batch_size: 8, num_workers: 0}
train: {epochs: EPOCHS, save_every_steps: 0, log_every_steps: 0}
"""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A 3-class, 6 clips-per-class training set with 3-clip dev and test sets, as Kaldi dirs."""
    root = tmp_path_factory.mktemp("mini_cls")
    write_cls_corpus(root, ClsCorpusSpec(classes=("flute", "rain", "knock"), n_train=6, n_dev=3, n_test=3, seconds=0.5))
    for name in ("train", "dev", "test"):
        data = root / name
        wav = dict(line.split(maxsplit=1) for line in (data / "wav.scp").read_text().splitlines())
        labels = dict(line.split() for line in (data / "utt2label").read_text().splitlines())
        write_data_dir(root / "data" / name, wav, {u: u for u in wav}, labels)
    return root / "data"


def test_stratified_split_holds_out_every_class():
    labels = [0] * 10 + [1] * 4 + [2] * 1
    train, held = stratified_split([f"u{i}" for i in range(15)], labels, 0.2, seed=3)
    held_labels = sorted(labels[i] for i in held)
    assert held_labels == [0, 0, 1]  # round(0.2 * 10) = 2, at least 1 of 4, none of a lone clip
    assert sorted(train + held) == list(range(15))
    assert stratified_split([f"u{i}" for i in range(15)], labels, 0.2, seed=3) == (train, held)


def test_training_data_from_labels_and_dev_dir(corpus, tmp_path):
    cfg = load_config(REPO / "conf" / "cls" / "mini.yaml")
    task = ClsTask()
    data = task.training_data(cfg, read_data_dir(corpus / "train"), 0, corpus / "dev")
    assert data.class_names == ["flute", "knock", "rain"] and data.num_classes == 3
    assert len(data.items) == 18 and data.class_counts == [6, 6, 6] and len(data.validation) == 9
    held = task.training_data(cfg, read_data_dir(corpus / "train"), 0)
    assert len(held.items) == 15 and len(held.validation) == 3  # round(0.1 * 6) -> 1 of each class
    bad = tmp_path / "dev"
    dev = read_data_dir(corpus / "dev")
    labels = dict(dev.utt2label)
    labels[next(iter(labels))] = "siren"
    write_data_dir(bad, dev.wav, dev.utt2spk, labels)
    with pytest.raises(SpkpeftError, match=r"dev/utt2label:1: class 'siren' .* does not occur in training"):
        task.training_data(cfg, read_data_dir(corpus / "train"), 0, bad)


def test_sv_and_cls_refuse_each_others_losses():
    sv = load_config(REPO / "conf" / "sv" / "mini.yaml", {"loss.type": "ce"})
    with pytest.raises(SpkpeftError, match="task sv expects one of: aam, am"):
        get_task(sv).build_loss(sv, None, None)
    cls = load_config(REPO / "conf" / "cls" / "mini.yaml", {"loss": {"type": "aam"}})
    with pytest.raises(SpkpeftError, match="task cls expects: ce"):
        get_task(cls).build_loss(cls, None, None)


def test_cross_entropy_with_smoothing_and_balanced_weights():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0], [0.5, 0.5, 3.0]])
    labels = torch.tensor([0, 2, 2])
    loss = CrossEntropy(CrossEntropyConfig(label_smoothing=0.1, class_weights="balanced"), 3, [4, 2, 2])
    weight = torch.tensor([8 / 12, 8 / 6, 8 / 6])
    expected = torch.nn.functional.cross_entropy(logits, labels, weight=weight, label_smoothing=0.1)
    value, accuracy = loss(logits, labels)
    torch.testing.assert_close(value, expected)
    assert float(accuracy) == pytest.approx(2 / 3)
    with pytest.raises(SpkpeftError, match="balanced needs the training count"):
        CrossEntropy(CrossEntropyConfig(class_weights="balanced"), 3, None)


class Crash(Exception):
    pass


class CrashingTrainer(Trainer):
    """Dies right after the end of epoch 1 (its checkpoint written), as a killed run would."""

    def end_epoch(self, stats):
        super().end_epoch(stats)
        if self.epoch == 1:
            raise Crash


def train(corpus, exp, epochs, trainer_class=Trainer):
    """Train the small cls mini config for ``epochs`` epochs in ``exp`` as ``bin/train`` does."""
    config = exp.parent / f"{exp.name}.yaml"
    config.write_text(f"base: {REPO / 'conf' / 'cls' / 'mini.yaml'}\n" + SMALL.replace("EPOCHS", str(epochs)))
    cfg = prepare_experiment(config, exp)
    trainer = trainer_class(cfg, get_task(cfg), corpus / "train", exp, dev_dir=corpus / "dev")
    trainer.run()
    return trainer


def test_training_writes_classes_picks_best_accuracy_and_resumes_exactly(corpus, tmp_path):
    train(corpus, tmp_path / "a", 2)
    assert read_classes(tmp_path / "a") == ["flute", "knock", "rain"]
    rows = (tmp_path / "a" / "train_epochs.csv").read_text().splitlines()
    assert rows[0].split(",")[4:6] == ["val_loss", "val_acc_pct"] and len(rows) == 3
    accs = [float(r.split(",")[5]) for r in rows[1:]]
    best = load_checkpoint(tmp_path / "a" / "checkpoints" / "best.pt")
    assert best["epoch"] == 1 + int(np.argmax(accs))
    with pytest.raises(Crash):
        train(corpus, tmp_path / "b", 2, CrashingTrainer)
    resumed = train(corpus, tmp_path / "b", 2)  # picks up last.pt after epoch 1
    assert resumed.epoch == 2
    a = load_checkpoint(tmp_path / "a" / "checkpoints" / "last.pt")["trainable"]
    b = load_checkpoint(tmp_path / "b" / "checkpoints" / "last.pt")["trainable"]
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_posteriors_are_distributions_and_batch_invariant(corpus, tmp_path):
    exp = tmp_path / "exp"
    train(corpus, exp, 1)
    model, cfg, source = load_trained_model(exp, "last", torch.device("cpu"))
    task = get_task(cfg)
    outputs = []
    for batch_seconds in (0.3, 100.0):
        cfg.extract.batch_seconds = batch_seconds
        out = tmp_path / f"post_{batch_seconds}"
        assert task.infer(model, cfg, out, corpus / "test", torch.device("cpu"), source) == 9
        outputs.append(dict(kaldiio.load_scp(str(out / "posteriors" / "test" / "posteriors.scp"))))
    first, second = outputs
    assert sorted(first) == sorted(read_data_dir(corpus / "test").wav)
    for utt, post in first.items():
        assert post.shape == (3,) and abs(float(post.sum()) - 1.0) < 1e-5
        np.testing.assert_allclose(second[utt], post, atol=1e-5)
