"""The spoofing-countermeasure task: labels, training with the dev EER, bona fide scores,
stage 5 (EER, t-DCF, per attack, per condition), the validator, and the XLS-R LoRA parameter count."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import REPO
from spkpeft.bin.summarize import summarize
from spkpeft.data.synth_spoof import CmCorpusSpec, write_cm_corpus
from spkpeft.engine.checkpoint import load_checkpoint
from spkpeft.engine.trainer import Trainer
from spkpeft.errors import SpkpeftError
from spkpeft.eval.cm_metrics import cm_eer
from spkpeft.io.audio import read_audio
from spkpeft.io.datadir import read_data_dir, write_data_dir
from spkpeft.tasks.base import get_task
from spkpeft.tasks.cm.evaluate import evaluate_cm
from spkpeft.tasks.cm.task import CMTask, bonafide_scores, cm_labels
from spkpeft.tasks.config import load_config
from spkpeft.tasks.experiment import load_trained_model, prepare_experiment

pytestmark = pytest.mark.usefixtures("isolated_model_cache")

SMALL = """
head: {attention_channels: 8}
data: {crop_seconds: 0.5, batch_size: 8, num_workers: 0}
train: {epochs: 2, save_every_steps: 0, log_every_steps: 0}
"""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A small ASVspoof-2019-LA-layout corpus prepared by the real stage-1 script."""
    root = tmp_path_factory.mktemp("mini_cm")
    write_cm_corpus(root / "raw", CmCorpusSpec(n_train=24, n_dev=12, n_eval=12, n_train_spk=3, n_dev_spk=2,
                                                n_eval_spk=2, bonafide_frac=0.4, min_dur=0.5, max_dur=0.8))
    out = root / "data"
    proc = subprocess.run([sys.executable, str(REPO / "local" / "prepare_asvspoof2019_la.py"), str(root / "raw"), str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return out


def test_labels_are_bonafide_or_spoof(corpus, tmp_path):
    data = read_data_dir(corpus / "train")
    labels = cm_labels(data)
    assert set(labels) == {0, 1} and labels.count(1) == sum(v == "bonafide" for v in data.utt2label.values())
    bad = dict(data.utt2label)
    bad[next(iter(bad))] = "genuine"
    write_data_dir(tmp_path / "bad", data.wav, data.utt2spk, bad)
    with pytest.raises(SpkpeftError, match=r"bad/utt2label:1: label 'genuine' .* must be bonafide or spoof"):
        cm_labels(read_data_dir(tmp_path / "bad"))


def test_bonafide_score_is_the_log_posterior_ratio():
    logits = np.array([[2.0, -1.0], [0.0, 3.0]])  # classes: spoof, bonafide
    log_post = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    np.testing.assert_allclose(bonafide_scores(logits), log_post[:, 1] - log_post[:, 0])


def train(corpus, exp):
    config = exp.parent / f"{exp.name}.yaml"
    config.write_text(f"base: {REPO / 'conf' / 'cm' / 'mini.yaml'}\n" + SMALL)
    cfg = prepare_experiment(config, exp)
    Trainer(cfg, get_task(cfg), corpus / "train", exp, dev_dir=corpus / "dev").run()
    return cfg


def test_train_score_and_evaluate(corpus, tmp_path):
    exp = tmp_path / "exp"
    train(corpus, exp)
    rows = (exp / "train_epochs.csv").read_text().splitlines()
    assert rows[0].split(",")[4:6] == ["val_loss", "val_eer_pct"]
    eers = [float(r.split(",")[5]) for r in rows[1:]]
    assert load_checkpoint(exp / "checkpoints" / "best.pt")["epoch"] == 1 + int(np.argmin(eers))

    model, cfg, source = load_trained_model(exp, "best", torch.device("cpu"))
    task = get_task(cfg)
    for name in ("dev", "eval"):
        assert task.infer(model, cfg, exp, corpus / name, torch.device("cpu"), source) == 12
    lines = (exp / "cm_scores" / "eval" / "scores.txt").read_text().splitlines()
    assert [line.split()[0] for line in lines] == list(read_data_dir(corpus / "eval").wav)

    results = evaluate_cm(exp, [corpus / "dev", corpus / "eval"], exp / "results.json", {"config": "mini"})
    assert [r["set"] for r in results] == ["dev", "eval"]
    row = results[1]
    assert row["task"] == "cm" and row["n_bonafide"] + row["n_spoof"] == 12 and row["config"] == "mini"
    assert 0.0 <= row["eer_pct"] <= 100.0 and 0.0 <= row["min_tdcf"] and 0.0 <= row["min_tdcf_2021"]
    attacks = sorted({a for a in read_data_dir(corpus / "eval").utt2attack.values() if a != "-"})
    assert sorted(row["per_attack"]) == attacks
    assert json.loads((exp / "results.json").read_text()) == results
    again = evaluate_cm(exp, [corpus / "eval"], exp / "results.json")  # another corpus later: rows add up
    assert [r["set"] for r in json.loads((exp / "results.json").read_text())] == ["dev", "eval"] and len(again) == 1
    assert (exp / "scores" / "eval" / "per_attack.tsv").read_text().startswith("attack\tn\teer_pct\n")

    (exp / "cm_scores" / "eval" / "scores.txt").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(SpkpeftError, match="scores do not cover .* no score for"):
        evaluate_cm(exp, [corpus / "eval"], exp / "results.json")


def test_validator_checks_labels_and_attacks(corpus, tmp_path):
    data = read_data_dir(corpus / "train")
    attacks = dict(data.utt2attack)
    spoof = next(u for u, label in data.utt2label.items() if label == "spoof")
    attacks[spoof] = "-"
    write_data_dir(tmp_path / "train", data.wav, data.utt2spk, dict(data.utt2label), attacks)
    proc = subprocess.run([sys.executable, "-m", "spkpeft.bin.validate_data_dir", "--task", "cm", "--no-audio",
                           str(tmp_path / "train")], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].endswith(
        f"train/utt2attack:{list(data.utt2label).index(spoof) + 1}: attack '-' of '{spoof}' does not fit its label 'spoof' ('-' for bona fide only)")


def with_conditions(corpus, out):
    """The eval set of ``corpus`` as ``out/la_eval`` with a utt2condition: bona fide and spoofs
    alternate between LA-C1 and LA-C2; the last bona fide alone is LA-C3 (no spoof: no EER)."""
    data = read_data_dir(corpus / "eval")
    conditions, turn = {}, {"bonafide": 0, "spoof": 0}
    for utt, label in data.utt2label.items():
        conditions[utt] = f"LA-C{1 + turn[label] % 2}"
        turn[label] += 1
    last_bona = [u for u, label in data.utt2label.items() if label == "bonafide"][-1]
    conditions[last_bona] = "LA-C3"
    write_data_dir(out / "la_eval", data.wav, data.utt2spk, dict(data.utt2label), dict(data.utt2attack), conditions)
    return out / "la_eval", conditions


def test_evaluate_per_condition(corpus, tmp_path):
    set_dir, conditions = with_conditions(corpus, tmp_path / "asvspoof2021")
    data = read_data_dir(set_dir)
    assert dict(data.utt2condition) == conditions
    rng = np.random.default_rng(0)
    scores = {u: float(rng.normal()) + (label == "bonafide") for u, label in data.utt2label.items()}
    exp = tmp_path / "exp"
    (exp / "cm_scores" / "la_eval").mkdir(parents=True)
    (exp / "cm_scores" / "la_eval" / "scores.txt").write_text("".join(f"{u} {v!r}\n" for u, v in scores.items()))
    (row,) = evaluate_cm(exp, [set_dir], exp / "results.json")
    expected = {}
    for c in ("LA-C1", "LA-C2"):
        bona = [scores[u] for u, cc in conditions.items() if cc == c and data.utt2label[u] == "bonafide"]
        spoof = [scores[u] for u, cc in conditions.items() if cc == c and data.utt2label[u] == "spoof"]
        expected[c] = 100 * cm_eer(bona, spoof)[0]
    assert row["per_condition"] == expected  # LA-C3 has no spoof
    n = {c: list(conditions.values()).count(c) for c in expected}
    assert (exp / "scores" / "la_eval" / "per_condition.tsv").read_text().splitlines() == [
        "condition\tn\teer_pct", *(f"{c}\t{n[c]}\t{e:.4f}" for c, e in expected.items())]
    assert json.loads((exp / "results.json").read_text())[0]["per_condition"] == expected

    (set_dir / "utt2condition").unlink()  # 2019 LA, In-the-Wild: no conditions
    (exp / "scores" / "la_eval" / "per_condition.tsv").unlink()
    (row,) = evaluate_cm(exp, [set_dir], exp / "results.json")
    assert "per_condition" not in row and not (exp / "scores" / "la_eval" / "per_condition.tsv").exists()


def test_validator_checks_utt2condition(corpus, tmp_path):
    set_dir, _ = with_conditions(corpus, tmp_path / "c")

    def validate():
        return subprocess.run([sys.executable, "-m", "spkpeft.bin.validate_data_dir", "--task", "cm", "--no-audio",
                               str(tmp_path / "c")], capture_output=True, text=True, cwd=REPO)

    proc = validate()
    assert proc.returncode == 0, proc.stderr
    lines = (set_dir / "utt2condition").read_text().splitlines()
    (set_dir / "utt2condition").write_text("\n".join(lines[:2] + [lines[2] + " extra"] + lines[3:]) + "\n")
    proc = validate()
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].endswith(f"la_eval/utt2condition:3: expected 2 fields, got 3: "
                                                         f"{lines[2] + ' extra'!r}")
    (set_dir / "utt2condition").write_text("\n".join(lines[1:]) + "\n")
    proc = validate()
    assert proc.returncode == 1
    assert proc.stderr.strip().endswith(
        f"la_eval/utt2condition: utterance '{lines[0].split()[0]}' of wav.scp is missing")


def test_lora_on_xlsr_trains_about_198x_fewer_upstream_parameters_than_full_fine_tuning():
    lora = summarize(str(REPO / "conf" / "cm" / "lora_xlsr.yaml"), "random:wav2vec2_large")
    full = summarize(str(REPO / "conf" / "cm" / "full_ft.yaml"), "random:wav2vec2_large")
    assert lora["trainable"]["peft"] == 24 * 2 * 16 * (1024 + 1024) == 1_572_864
    assert 195 < full["trainable"]["peft"] / lora["trainable"]["peft"] < 201


def test_cm_refuses_other_losses():
    cfg = load_config(REPO / "conf" / "cm" / "mini.yaml", {"loss": {"type": "aam"}})
    with pytest.raises(SpkpeftError, match="task cm expects: ce"):
        CMTask().build_loss(cfg, None, None)


def test_one_class_softmax_model_scores_the_cosine_to_the_bonafide_centre(corpus, tmp_path):
    exp = tmp_path / "exp"
    config = tmp_path / "oc.yaml"
    config.write_text(f"base: {REPO / 'conf' / 'cm' / 'mini.yaml'}\n" + SMALL + "loss: {type: ocsoftmax}\n")
    cfg = prepare_experiment(config, exp)
    Trainer(cfg, get_task(cfg), corpus / "train", exp, dev_dir=corpus / "dev").run()
    model, cfg, source = load_trained_model(exp, "best", torch.device("cpu"))
    assert model.output_dim == 1 and cfg.loss.m_target == 0.9
    get_task(cfg).infer(model, cfg, exp, corpus / "eval", torch.device("cpu"), source)
    scores = [float(line.split()[1]) for line in (exp / "cm_scores" / "eval" / "scores.txt").read_text().splitlines()]
    assert len(scores) == 12 and all(-1.0 <= s <= 1.0 for s in scores)
    first = next(iter(read_data_dir(corpus / "eval").wav.values()))
    wav = torch.from_numpy(np.asarray(read_audio(first), dtype=np.float32))
    with torch.no_grad():
        cos = model.eval()(wav[None], torch.tensor([wav.numel()]))
    assert cos.shape == (1, 1) and abs(float(cos) - scores[0]) < 1e-4
    assert evaluate_cm(exp, [corpus / "eval"], exp / "results.json")[0]["eer_pct"] >= 0.0


CM_CONFIGS = sorted(p.stem for p in (REPO / "conf" / "cm").glob("*.yaml") if p.stem != "base")


@pytest.mark.parametrize("name", CM_CONFIGS)
def test_every_cm_config_trains_and_scores(name, corpus, tmp_path):
    """Every method variant and back-end of conf/cm/ on a tiny upstream: one short epoch
    moves its trainable weights, and the model gives one finite bona fide score per utterance."""
    path = REPO / "conf" / "cm" / f"{name}.yaml"
    tiny = {"whisper": "random:tiny_whisper"}.get(load_config(path).upstream.type, "random:tiny_wavlm")
    fit = {"peft.top_r": 16} if "spectral_lora" in name and tiny == "random:tiny_whisper" else {}
    cfg = load_config(path, {
        **fit, "upstream.name": "fbank" if name == "mini" else tiny,
        "data.crop_seconds": 0.5, "data.batch_size": 8, "data.num_workers": 0,
        "train.epochs": 1, "train.freeze_upstream_epochs": 0, "train.save_every_steps": 0,
        "train.log_every_steps": 0})
    trainer = Trainer(cfg, get_task(cfg), corpus / "train", tmp_path, dev_dir=corpus / "dev")
    before = {k: v.clone() for k, v in trainer.trainee.model.trainable_state_dict().items()}
    trainer.run()
    after = trainer.trainee.model.trainable_state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    model = trainer.trainee.model.eval()
    with torch.no_grad():
        scores = bonafide_scores(model(torch.randn(3, 8000) * 0.1, torch.tensor([8000, 6000, 4000])).numpy())
    assert scores.shape == (3,) and np.isfinite(scores).all()
