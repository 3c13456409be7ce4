"""Using a trained model: the Python API (spkpeft.load), the inference CLI, exported packages
(full, adapter-only, ONNX) against stages 4-5 of the same experiments (sv, cm, cls)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import kaldiio
import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import REPO, write_tone
from spkpeft.bin._cli import run_main
from spkpeft.data.synth import CorpusSpec, write_corpus
from spkpeft.data.synth_sounds import ClsCorpusSpec, write_cls_corpus
from spkpeft.data.synth_spoof import CmCorpusSpec, write_cm_corpus
from spkpeft.engine.trainer import Trainer
from spkpeft.errors import SpkpeftError
from spkpeft.io.audio import resample
from spkpeft.io.datadir import read_data_dir, write_data_dir
from spkpeft.tasks.base import get_task
from spkpeft.tasks.experiment import load_trained_model, prepare_experiment
from spkpeft.upstream.s3prl import random_arch

import spkpeft

pytestmark = pytest.mark.usefixtures("isolated_model_cache")

SMALL = """
head: {channels: 32, res2_scale: 2, se_channels: 8, attention_channels: 8}
data: {crop_seconds: 0.5, batch_size: 8, num_workers: 0}
train: {epochs: 1, save_every_steps: 0, log_every_steps: 0}
"""


def cli(module, argv, capsys) -> tuple[int, str, str]:
    """Run a CLI's ``main`` in this process through ``run_main``: (exit code, stdout, stderr)."""
    code = 0
    try:
        run_main(module.main, [str(a) for a in argv])
    except SystemExit as done:
        code = done.code or 0
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def train(config: str, extra: str, data, exp, dev=None):
    """Train ``conf/<config>`` (+ SMALL + extra) for one epoch in ``exp``, as bin/train does."""
    yaml_file = exp.parent / f"{exp.name}.yaml"
    yaml_file.write_text(f"base: {REPO / 'conf' / config}\n" + SMALL + extra)
    cfg = prepare_experiment(yaml_file, exp)
    Trainer(cfg, get_task(cfg), data / "train", exp, dev_dir=dev).run()


def stage4(exp, *data_dirs):
    model, cfg, source = load_trained_model(exp, None, torch.device("cpu"))
    for data_dir in data_dirs:
        get_task(cfg).infer(model, cfg, exp, data_dir, torch.device("cpu"), source)


def wav_paths(data_dir) -> tuple[list[str], list[str]]:
    wav = read_data_dir(data_dir).wav
    return list(wav), list(wav.values())


# ---------------------------------------------------------------- speaker verification


@pytest.fixture(scope="module")
def sv(tmp_path_factory):
    """A LoRA sv experiment on 2 blocks of random:tiny_wavlm after stages 3-5 (1 epoch, 4 training speakers)."""
    root = tmp_path_factory.mktemp("sv")
    write_corpus(root / "raw", CorpusSpec(n_train_spk=4, n_test_spk=2, n_sessions=2, n_utts=2, min_dur=0.8, max_dur=1.2))
    prep = subprocess.run([sys.executable, str(REPO / "local" / "prepare_voxceleb1.py"), str(root / "raw"),
                           str(root / "data")], capture_output=True, text=True)
    assert prep.returncode == 0, prep.stderr
    data, exp = root / "data", root / "exp"
    train("sv/lora.yaml", "upstream: {name: 'random:tiny_wavlm', num_layers: 2}\ntask: {val_speakers: 0, val_utts_per_speaker: 0}\n"
          "peft: {rank: 4}\n", data, exp)
    stage4(exp, data / "test", data / "train")
    from spkpeft.bin import score

    assert score.main(["--embeddings", str(exp / "embeddings/test/xvector.scp"), "--trials", str(data / "trials/vox1_o"),
                       "--mean", str(exp / "embeddings/train/xvector.scp"), "--score-dir", str(exp / "scores"),
                       "--results", str(exp / "results.json")]) == 0
    return data, exp


def stage5_scores(exp) -> dict[tuple[str, str], float]:
    lines = (exp / "scores" / "vox1_o.score").read_text().split()
    return {(a, b): float(s) for a, b, s in zip(lines[::3], lines[1::3], lines[2::3])}


def test_import_spkpeft_stays_cheap():
    code = "import sys, spkpeft; assert callable(spkpeft.load); assert 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0


def test_embed_and_score_equal_stages_4_and_5(sv):
    data, exp = sv
    model = spkpeft.load(exp)
    assert model.task == "sv" and model.mean is not None and model.calibration is None
    utts, paths = wav_paths(data / "test")
    stage4_emb = dict(kaldiio.load_scp(str(exp / "embeddings/test/xvector.scp")))
    listed = model.embed(paths)  # wav.scp order: stage 4's batches, its exact numbers
    assert listed.shape == (len(utts), 192)
    for utt, vec in zip(utts, listed):
        np.testing.assert_array_equal(vec, stage4_emb[utt])
    alone = np.stack([model.embed(p) for p in paths[:3]])  # batch-invariant: alone == in a list
    np.testing.assert_allclose(alone, listed[:3], atol=1e-5)
    np.testing.assert_allclose(model.embed(torch.from_numpy(sf.read(paths[0], dtype="float32")[0])), listed[0], atol=1e-5)
    short = 0.1 * np.random.default_rng(0).standard_normal(120).astype(np.float32)  # under one CNN receptive field
    np.testing.assert_allclose(model.embed(short), model.embed([short, paths[0]])[0], atol=1e-5)

    scores = stage5_scores(exp)
    pairs = list(scores)
    values, calibrated = model.score_embeddings(np.stack([stage4_emb[a] for a, _ in pairs]),
                                                np.stack([stage4_emb[b] for _, b in pairs]))
    assert not calibrated
    np.testing.assert_array_equal(values, [scores[p] for p in pairs])  # stage 5's arithmetic exactly
    wav = read_data_dir(data / "test").wav
    (a, b) = pairs[0]
    result = model.score(wav[a], wav[b])
    assert not result.calibrated and result.value == pytest.approx(scores[(a, b)], abs=1e-5)
    with pytest.raises(SpkpeftError, match=r"embeddings/train/source.json: the training embeddings come from another "
                                           r"checkpoint than .*last.pt; run stage 4"):
        spkpeft.load(exp, checkpoint="last")  # stage 4 ran with best.pt: its mean is not last.pt's


def test_cli_embeds_a_wav_scp_to_ark_and_scores_a_trials_file(sv, tmp_path, capsys):
    from spkpeft.bin import infer

    data, exp = sv
    code, _, err = cli(infer, ["--model", exp, "embed", "--wav-scp", data / "test/wav.scp", "--out", tmp_path / "emb"], capsys)
    assert code == 0, err
    got = dict(kaldiio.load_scp(str(tmp_path / "emb.scp")))
    expected = dict(kaldiio.load_scp(str(exp / "embeddings/test/xvector.scp")))
    assert list(got) == list(read_data_dir(data / "test").wav)
    assert all(np.array_equal(got[u], expected[u]) for u in got)

    code, _, err = cli(infer, ["--model", exp, "score", "--trials", data / "trials/vox1_o", "--wav-scp",
                               data / "test/wav.scp", "--out", tmp_path / "vox1_o.score"], capsys)
    assert code == 0, err
    assert "raw cosine" in err
    assert (tmp_path / "vox1_o.score").read_text() == (exp / "scores/vox1_o.score").read_text()

    (tmp_path / "trials").write_text("id10005/Kz-m8fNL5t5/00001 nobody/x/1\n")
    code, out, err = cli(infer, ["--model", exp, "score", "--trials", tmp_path / "trials", "--wav-scp",
                                 data / "test/wav.scp"], capsys)
    assert code == 1 and out == ""
    assert err.strip().splitlines()[-1] == (f"infer: error: {tmp_path / 'trials'}:1: utterance 'nobody/x/1' is not in "
                                            f"{data / 'test/wav.scp'}")
    code, out, err = cli(infer, ["--model", exp, "verify", *wav_paths(data / "test")[1][:2]], capsys)
    assert code == 1 and out == ""
    assert err.strip().splitlines()[-1] == f"infer: error: {exp / 'calibration.json'}: missing; a decision needs a " \
                                           "calibrated model (python -m spkpeft.bin.calibrate) or an explicit threshold"


def test_calibration_turns_scores_into_llrs_and_decisions(sv, tmp_path, capsys):
    from spkpeft.bin import export, infer

    data, exp = sv
    wav = read_data_dir(data / "test").wav
    (a, b), stage5 = next(iter(stage5_scores(exp).items()))
    plain = spkpeft.load(exp)
    raw = plain.score(wav[a], wav[b]).value
    assert raw == pytest.approx(stage5, abs=1e-5)
    with pytest.raises(SpkpeftError, match="calibration.json: missing"):
        plain.verify(wav[a], wav[b])
    decision = plain.verify(wav[a], wav[b], threshold=raw)
    assert decision.accept and not decision.calibrated and decision.threshold == raw
    assert not plain.verify(wav[a], wav[b], threshold=raw + 1e-3).accept

    from spkpeft.eval.calibration import Calibration, write_calibration

    # llr = 12 raw + offset, with the offset putting this trial 0.5 below the Bayes threshold of p_target 0.01
    threshold_llr = Calibration(1.0, 0.0, p_target=0.01).threshold_llr
    calibration = Calibration(12.0, threshold_llr - 0.5 - 12.0 * raw, p_target=0.01).to_json()
    write_calibration(exp / "calibration.json", Calibration.from_json(calibration))
    try:
        model = spkpeft.load(exp)
        score = model.score(wav[a], wav[b])
        assert score.calibrated and score.value == pytest.approx(threshold_llr - 0.5, abs=1e-4)
        decision = model.verify(wav[a], wav[b])
        assert not decision.accept and decision.threshold == calibration["threshold_llr"]
        code, out, err = cli(infer, ["--model", exp, "verify", wav[a], wav[b]], capsys)
        assert code == 0 and "calibrated log-likelihood ratios" in err and out.split()[-1] == "reject"
        assert cli(export, ["--exp", exp, "--out", tmp_path / "pkg", "--adapter-only"], capsys)[0] == 0
        packaged = spkpeft.load(tmp_path / "pkg")
        assert packaged.calibration is not None and packaged.score(wav[a], wav[b]) == score
    finally:
        (exp / "calibration.json").unlink()
    (tmp_path / "bad.json").write_text(json.dumps({**calibration, "norm": "snorm"}))
    from spkpeft.inference.decision import read_calibration

    with pytest.raises(SpkpeftError, match="bad.json: calibrated on 'snorm' scores"):
        read_calibration(tmp_path / "bad.json")


def test_export_full_and_adapter_only_reload_identically(sv, tmp_path, capsys):
    from spkpeft.bin import export

    data, exp = sv
    _, paths = wav_paths(data / "test")
    reference = spkpeft.load(exp).embed(paths)
    sizes = {}
    for kind, flags in (("full", []), ("adapter-only", ["--adapter-only"])):
        code, out, err = cli(export, ["--exp", exp, "--out", tmp_path / kind, *flags], capsys)
        assert code == 0, err
        assert out.startswith(f"{kind} package {tmp_path / kind}: ")
        sizes[kind] = int(out.split(": ")[1].split()[0])
        info = json.loads((tmp_path / kind / "package.json").read_text())
        assert sizes[kind] == sum(f["bytes"] for f in info["files"].values())
        loaded = spkpeft.load(tmp_path / kind)
        assert loaded.loaded.kind == kind
        np.testing.assert_array_equal(loaded.mean, spkpeft.load(exp).mean)
        np.testing.assert_array_equal(loaded.embed(paths), reference)
    assert sizes["adapter-only"] * 10 < sizes["full"]
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no temporary directory left

    (tmp_path / "full" / "model.pt").write_bytes((tmp_path / "full" / "model.pt").read_bytes()[:-10])
    with pytest.raises(SpkpeftError, match="full/model.pt: missing, incomplete or altered"):
        spkpeft.load(tmp_path / "full")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    code, _, err = cli(export, ["--exp", exp, "--out", tmp_path / "other"], capsys)
    assert code == 1 and "other: exists and is not a spkpeft package" in err


def test_adapter_only_package_refuses_an_upstream_with_other_weights(sv, tmp_path, capsys, monkeypatch):
    from spkpeft.bin import export

    _, exp = sv
    assert cli(export, ["--exp", exp, "--out", tmp_path / "pkg", "--adapter-only"], capsys)[0] == 0
    original = random_arch.make_checkpoint

    def other_weights(name, seed=random_arch.DEFAULT_SEED):
        ckpt = original(name, seed)
        weights = ckpt["model"]
        key = next(k for k in weights if k.endswith("weight"))
        weights[key] = weights[key] + 1e-3
        return ckpt

    monkeypatch.setenv("SPKPEFT_CACHE", str(tmp_path / "cache"))  # random:tiny_wavlm rebuilt, with other weights
    monkeypatch.setattr(random_arch, "make_checkpoint", other_weights)
    with pytest.raises(SpkpeftError, match=r"pkg/package.json: upstream 'random:tiny_wavlm' has checksum \w+\.\.\., "
                                           r"the package was trained on \w+\.\.\."):
        spkpeft.load(tmp_path / "pkg")


def test_onnx_export_matches_pytorch(sv, tmp_path, capsys):
    import onnxruntime

    from spkpeft.bin import export

    data, exp = sv
    code, out, err = cli(export, ["--exp", exp, "--out", tmp_path / "pkg", "--onnx"], capsys)
    assert code == 0, err
    worst = float(out.split("difference ")[1].split()[0])
    assert worst < 1e-4
    info = json.loads((tmp_path / "pkg" / "package.json").read_text())
    assert info["onnx"]["max_abs_diff"] < 1e-4 and "model.onnx" in info["files"]
    session = onnxruntime.InferenceSession(str(tmp_path / "pkg" / "model.onnx"), providers=["CPUExecutionProvider"])
    _, paths = wav_paths(data / "test")
    wav = sf.read(paths[0], dtype="float32")[0]
    got = session.run(None, {"wavs": wav[None], "wav_lens": np.array([wav.size])})[0][0]
    np.testing.assert_allclose(got, spkpeft.load(exp).embed(paths[0]), atol=1e-4)
    code, _, err = cli(export, ["--exp", exp, "--out", tmp_path / "x", "--onnx", "--adapter-only"], capsys)
    assert code == 1 and "--onnx exports the whole merged model" in err


@pytest.mark.parametrize("upstream", ["tiny_wav2vec2", "tiny_hubert"])
def test_onnx_of_the_other_tiny_upstreams_matches_pytorch_and_the_check_can_fail(upstream, tmp_path):
    from spkpeft.inference.onnx_export import check_onnx, export_onnx
    from spkpeft.nn.model import build_model
    from spkpeft.tasks.config import load_config

    cfg = load_config(REPO / "conf" / "sv" / "lora.yaml", {"upstream.name": f"random:{upstream}", "upstream.num_layers": 1,
                                                           "head.type": "pooled", "peft.rank": 2})
    model = build_model(cfg).eval()
    model.merge(unload=True)
    assert export_onnx(model, tmp_path / "m.onnx") == "torchscript"
    assert check_onnx(model, tmp_path / "m.onnx") < 1e-4
    with torch.no_grad():
        next(model.aggregation.parameters())[0] += 1.0  # another layer weighting than the exported model's
    with pytest.raises(SpkpeftError, match=r"m.onnx: ONNX and PyTorch outputs differ by up to"):
        check_onnx(model, tmp_path / "m.onnx")


def test_stereo_is_refused_and_other_rates_are_resampled(sv, tmp_path, capsys):
    from spkpeft.bin import infer

    _, exp = sv
    model = spkpeft.load(exp)
    stereo = write_tone(tmp_path / "stereo.wav", channels=2)
    code, out, err = cli(infer, ["--model", exp, "embed", stereo], capsys)
    assert code == 1 and out == "" and err.strip().splitlines()[-1] == f"infer: error: {stereo}: expected mono audio, found 2 channels"
    with pytest.raises(SpkpeftError, match=r"expected mono audio \(1-D samples\), got shape \(2, 8000\); stereo is refused"):
        model.embed(np.zeros((2, 8000), dtype=np.float32))
    tone8k = write_tone(tmp_path / "8k.wav", seconds=0.7, sr=8000)
    samples = sf.read(tone8k, dtype="float32")[0]
    from_file = model.embed(tone8k)
    np.testing.assert_array_equal(from_file, model.embed(resample(samples, 8000)))
    np.testing.assert_array_equal(from_file, model.embed(samples, sample_rate=8000))
    assert resample(samples, 8000).shape == (11200,)


# ---------------------------------------------------------------- countermeasures and classification


@pytest.fixture(scope="module")
def cm(tmp_path_factory):
    """The cm mini config (fbank front end) after one epoch and stage 4 on its eval set."""
    root = tmp_path_factory.mktemp("cm")
    write_cm_corpus(root / "raw", CmCorpusSpec(n_train=16, n_dev=8, n_eval=8, n_train_spk=2, n_dev_spk=2,
                                                n_eval_spk=2, bonafide_frac=0.5, min_dur=0.5, max_dur=0.8))
    proc = subprocess.run([sys.executable, str(REPO / "local" / "prepare_asvspoof2019_la.py"), str(root / "raw"),
                           str(root / "data")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    exp = root / "exp"
    train("cm/mini.yaml", "", root / "data", exp, dev=root / "data" / "dev")
    stage4(exp, root / "data" / "eval")
    return root / "data", exp


def test_cm_score_equals_stage4_and_survives_export(cm, tmp_path, capsys):
    from spkpeft.bin import export, infer

    data, exp = cm
    utts, paths = wav_paths(data / "eval")
    stage4_lines = (exp / "cm_scores/eval/scores.txt").read_text()
    stage4_scores = np.array([float(line.split()[1]) for line in stage4_lines.splitlines()])
    model = spkpeft.load(exp)
    np.testing.assert_allclose(model.cm_score(paths), stage4_scores, atol=5e-7)  # scores.txt has 6 decimals
    assert isinstance(model.cm_score(paths[0]), float)
    with pytest.raises(SpkpeftError, match="embed needs a 'sv' model, this one is 'cm'"):
        model.embed(paths[0])
    code, _, err = cli(infer, ["--model", exp, "cm-score", "--wav-scp", data / "eval/wav.scp", "--out", tmp_path / "s.txt"], capsys)
    assert code == 0, err
    assert (tmp_path / "s.txt").read_text() == stage4_lines
    for flags in ([], ["--adapter-only"]):
        assert cli(export, ["--exp", exp, "--out", tmp_path / "pkg", *flags], capsys)[0] == 0
        np.testing.assert_array_equal(spkpeft.load(tmp_path / "pkg").cm_score(paths), model.cm_score(paths))


def cls_data(root):
    """Data directories of a 3-class mini cls corpus (4 / 2 / 2 clips per class) under ``root/data``."""
    write_cls_corpus(root / "raw", ClsCorpusSpec(classes=("flute", "rain", "knock"), n_train=4, n_dev=2, n_test=2,
                                                 seconds=0.5))
    for name in ("train", "dev", "test"):
        wav = dict(line.split(maxsplit=1) for line in (root / "raw" / name / "wav.scp").read_text().splitlines())
        labels = dict(line.split() for line in (root / "raw" / name / "utt2label").read_text().splitlines())
        write_data_dir(root / "data" / name, wav, {u: u for u in wav}, labels)
    return root / "data"


@pytest.fixture(scope="module")
def cls(tmp_path_factory):
    """The cls mini config (full fine-tuning of random:tiny_wavlm) after one epoch and stage 4."""
    root = tmp_path_factory.mktemp("cls")
    data, exp = cls_data(root), root / "exp"
    train("cls/mini.yaml", "head: {type: pooled, pooling: asp, attention_channels: 8}\n", data, exp, dev=data / "dev")
    stage4(exp, data / "test")
    return data, exp


def test_classify_equals_stage4_posteriors(cls, tmp_path, capsys):
    from spkpeft.bin import export, infer

    data, exp = cls
    utts, paths = wav_paths(data / "test")
    stage4_post = dict(kaldiio.load_scp(str(exp / "posteriors/test/posteriors.scp")))
    model = spkpeft.load(exp)
    found = model.classify(paths)
    assert model.classes == ["flute", "knock", "rain"]
    for utt, result in zip(utts, found):
        np.testing.assert_array_equal(list(result.posteriors.values()), stage4_post[utt])
        assert result.label == model.classes[int(np.argmax(stage4_post[utt]))]
    code, out, err = cli(infer, ["--model", exp, "classify", "--wav-scp", data / "test/wav.scp",
                                 "--posteriors", tmp_path / "post"], capsys)
    assert code == 0, err
    assert out.splitlines() == [f"{u} {r.label}" for u, r in zip(utts, found)]
    assert all(np.array_equal(v, stage4_post[u]) for u, v in kaldiio.load_scp(str(tmp_path / "post.scp")).items())
    assert cli(export, ["--exp", exp, "--out", tmp_path / "pkg"], capsys)[0] == 0
    again = spkpeft.load(tmp_path / "pkg").classify(paths)
    assert [r.posteriors for r in again] == [r.posteriors for r in found]


def test_ast_lora_exports_full_and_adapter_only_packages_that_classify_as_stage4(tmp_path, capsys, monkeypatch):
    """A full package of an AST holds the model directory's config.json and weights (upstream/)."""
    from spkpeft.bin import export

    data, exp = cls_data(tmp_path), tmp_path / "exp"
    train("cls/ast_lora.yaml", "upstream: {name: 'random:tiny_ast', max_length: 50}\npeft: {rank: 4}\n"
          "head: {type: pooled, pooling: asp, attention_channels: 8}\nextract: {chunk_seconds: 0.5}\n", data, exp, dev=data / "dev")
    stage4(exp, data / "test")
    utts, paths = wav_paths(data / "test")
    stage4_post = dict(kaldiio.load_scp(str(exp / "posteriors/test/posteriors.scp")))
    for kind, flags in (("full", []), ("adapter-only", ["--adapter-only"])):
        code, _, err = cli(export, ["--exp", exp, "--out", tmp_path / kind, *flags], capsys)
        assert code == 0, err
        found = spkpeft.load(tmp_path / kind).classify(paths)
        for utt, result in zip(utts, found):
            np.testing.assert_array_equal(list(result.posteriors.values()), stage4_post[utt])
    monkeypatch.setenv("SPKPEFT_CACHE", str(tmp_path / "empty-cache"))
    spkpeft.load(tmp_path / "full")
    assert not (tmp_path / "empty-cache").exists()  # the full package loads its own upstream/, not random:tiny_ast
    info = json.loads((tmp_path / "full" / "package.json").read_text())
    assert info["upstream"]["file"] == "upstream" and info["upstream"]["format"] == "hf-dir"
    assert {"upstream/config.json", "upstream/model.safetensors"} <= set(info["files"])
    assert not (tmp_path / "full" / "upstream").is_symlink()
    weights = tmp_path / "full" / "upstream" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8])
    with pytest.raises(SpkpeftError, match="upstream/model.safetensors: missing, incomplete or altered"):
        spkpeft.load(tmp_path / "full")


def test_whisper_lora_experiment_cli_and_packages_classify_as_stage4(tmp_path, capsys, monkeypatch):
    """spkpeft.load, the inference CLI and the full (+ ONNX) and adapter-only packages of a
    Whisper LoRA experiment give stage 4's posteriors bit for bit; the adapter-only package
    names the upstream by source and checksum, the full one holds the encoder's directory."""
    from spkpeft.bin import export, infer
    from spkpeft.upstream.base import base_checksum
    from spkpeft.upstream.whisper import load_whisper

    data, exp = cls_data(tmp_path), tmp_path / "exp"
    train("cls/whisper_lora.yaml", "upstream: {name: 'random:tiny_whisper'}\npeft: {rank: 4}\n"
          "head: {type: pooled, pooling: asp, attention_channels: 8}\n", data, exp, dev=data / "dev")
    stage4(exp, data / "test")
    utts, paths = wav_paths(data / "test")
    stage4_post = dict(kaldiio.load_scp(str(exp / "posteriors/test/posteriors.scp")))
    for result, utt in zip(spkpeft.load(exp).classify(paths), utts):
        np.testing.assert_array_equal(list(result.posteriors.values()), stage4_post[utt])
    code, _, err = cli(infer, ["--model", exp, "classify", "--wav-scp", data / "test/wav.scp",
                               "--posteriors", tmp_path / "post"], capsys)
    assert code == 0, err
    assert all(np.array_equal(v, stage4_post[u]) for u, v in kaldiio.load_scp(str(tmp_path / "post.scp")).items())
    for kind, flags in (("full", ["--onnx"]), ("adapter-only", ["--adapter-only"])):
        code, out, err = cli(export, ["--exp", exp, "--out", tmp_path / kind, *flags], capsys)
        assert code == 0, err
        for utt, result in zip(utts, spkpeft.load(tmp_path / kind).classify(paths)):
            np.testing.assert_array_equal(list(result.posteriors.values()), stage4_post[utt])
    adapter = json.loads((tmp_path / "adapter-only" / "package.json").read_text())
    assert adapter["upstream"] == {"type": "whisper", "name": "random:tiny_whisper",
                                   "sha256": base_checksum(load_whisper("random:tiny_whisper"))}
    full = json.loads((tmp_path / "full" / "package.json").read_text())
    assert full["onnx"]["exporter"] == "torchscript" and full["onnx"]["max_abs_diff"] < 1e-4
    assert {"upstream/config.json", "upstream/model.safetensors", "model.onnx"} <= set(full["files"])
    monkeypatch.setenv("SPKPEFT_CACHE", str(tmp_path / "empty-cache"))
    spkpeft.load(tmp_path / "full")
    assert not (tmp_path / "empty-cache").exists()  # the full package loads its own upstream/


def test_ast_model_files_are_the_config_and_one_weights_file(tmp_path, monkeypatch):
    from spkpeft.upstream.ast.sources import model_files, random_model_dir

    model_dir = tmp_path / "my_ast"
    shutil.copytree(random_model_dir("tiny_ast"), model_dir)
    (model_dir / "README.md").write_text("notes")
    torch.save({}, model_dir / "pytorch_model.bin")  # safetensors comes first, as in transformers
    with model_files(str(model_dir)) as (fmt, path):
        assert fmt == "hf-dir"
        assert sorted(p.name for p in path.iterdir()) == ["config.json", "model.safetensors"]
        assert (path / "config.json").read_bytes() == (model_dir / "config.json").read_bytes()
    assert not path.exists()
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty-hub-cache"))
    with pytest.raises(SpkpeftError, match="AST 'MIT/ast-x' is not in the Hugging Face cache"):
        with model_files("MIT/ast-x"):
            pass
