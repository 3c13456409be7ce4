"""The SASV recipes on synthetic trees in the release layouts (ASVspoof 2019 LA with its ASV protocols,
ASVspoof 5 with track 2), with tiny trained components: 2019 LA prepared, then through the recipe for
stage 3 (the components given to the shared pipeline by an overlay, under the recipe's experiment lock),
then stages 4-6 as the pipeline runs them, in this process (each recipe stage is a Python start, 3-15 s on
a loaded machine); ASVspoof 5 through the recipe for stages 1-2 and the stage-3 usage error; scores that do not
move with the batching or a resumed stage 4.  That a fusion beats both components is checked on
synthetic scores (test_sasv_fusion.py) and on the mini corpus by egs/mini_sasv (its README), not here."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from conftest import REPO, copy_recipe, run
from spkpeft.bin.evaluate import main as evaluate_main
from spkpeft.bin.extract import main as extract_main
from spkpeft.bin.report import main as report_main
from spkpeft.bin.train import load_trained
from spkpeft.data.synth import CorpusSpec, write_corpus
from spkpeft.data.synth_spoof import CmCorpusSpec, write_cm_corpus
from spkpeft.engine.trainer import Trainer
from spkpeft.tasks.base import get_task
from spkpeft.tasks.experiment import load_trained_model, prepare_experiment, read_experiment_config
from spkpeft.tasks.sasv.components import component_loader
from test_prepare_sasv import la2019, make_asvspoof5, make_la2019_sasv, write_lines

pytestmark = pytest.mark.usefixtures("isolated_model_cache")

TINY = """
upstream: {name: 'random:tiny_wavlm'}
data: {crop_seconds: 0.5, batch_size: 8, num_workers: 0}
train: {epochs: 1, save_every_steps: 0, log_every_steps: 0}
"""


def train(config: str, extra: str, data: Path, exp: Path, dev: Path | None = None) -> None:
    yaml_file = exp.parent / f"{exp.name}.yaml"
    yaml_file.write_text(f"base: {REPO / 'conf' / config}\n" + TINY + extra)
    cfg = prepare_experiment(yaml_file, exp)
    Trainer(cfg, get_task(cfg), data / "train", exp, dev_dir=dev).run()


@pytest.fixture(scope="module")
def components(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny sv and a tiny cm experiment on the same frozen random:tiny_wavlm (one epoch each)."""
    root = tmp_path_factory.mktemp("components")
    write_corpus(root / "sv_raw", CorpusSpec(n_train_spk=3, n_test_spk=2, n_sessions=2, n_utts=2, min_dur=0.6,
                                             max_dur=0.8))
    assert run([sys.executable, str(REPO / "local/prepare_voxceleb1.py"), str(root / "sv_raw"),
                str(root / "sv_data")]).returncode == 0
    train("sv/mini_frozen.yaml", "head: {channels: 16, res2_scale: 2, se_channels: 8, attention_channels: 8}\n"
          "task: {val_speakers: 0, val_utts_per_speaker: 0}\n", root / "sv_data", root / "sv_exp")
    model, cfg, source = load_trained_model(root / "sv_exp", None, torch.device("cpu"))
    get_task(cfg).infer(model, cfg, root / "sv_exp", root / "sv_data" / "train", torch.device("cpu"), source)
    write_cm_corpus(root / "cm_raw", CmCorpusSpec(n_train=12, n_dev=6, n_eval=6, n_train_spk=2, n_dev_spk=2,
                                                  n_eval_spk=2, bonafide_frac=0.5, min_dur=0.6, max_dur=0.8))
    assert run([sys.executable, str(REPO / "local/prepare_asvspoof2019_la.py"), str(root / "cm_raw"),
                str(root / "cm_data")]).returncode == 0
    train("cm/frozen.yaml", "", root / "cm_data", root / "cm_exp", dev=root / "cm_data" / "dev")
    return root / "sv_exp", root / "cm_exp"


def noisy_audio(root: Path) -> None:
    """Replace every FLAC under ``root`` by 0.6 s of its own noise (the layout tests' tones are too short)."""
    for k, path in enumerate(sorted(root.rglob("*.flac"))):
        sf.write(path, np.random.default_rng(k).normal(0, 0.1, 9600).astype(np.float32), 16000, format="FLAC")


def recipe_copy(tmp_path: Path) -> Path:
    (tmp_path / "recipe").mkdir()
    return copy_recipe(tmp_path / "recipe")


def small_config(path: Path) -> Path:
    path.write_text(yaml.safe_dump({"base": str(REPO / "conf/sasv/default.yaml"),
                                    "task": {"embedding_epochs": 2, "embedding_batch_size": 2}}))
    return path


def test_la2019_sasv_recipe_stage_3_then_stages_4_to_6(components, tmp_path, capsys) -> None:
    sv, cm = components
    la = make_la2019_sasv(tmp_path / "release")
    proto = la / "ASVspoof2019_LA_cm_protocols" / "ASVspoof2019.LA.cm.train.trn.txt"
    extra = ["LA_0079 LA_T_1500001 - - bonafide", "LA_0081 LA_T_1500002 - - bonafide", "LA_0081 LA_T_1500003 - A03 spoof"]
    write_lines(proto, proto.read_text().splitlines() + extra)
    for line in extra:
        sf.write(la / "ASVspoof2019_LA_train" / "flac" / f"{line.split()[1]}.flac", np.zeros(100), 16000)
    noisy_audio(la)
    recipe = recipe_copy(tmp_path)
    exp = tmp_path / "exp"
    corpus = recipe / "data" / "asvspoof2019_la"
    la2019.prepare(tmp_path / "release", corpus)   # stage 1 (the recipe's own stages 1-2: the ASVspoof 5 test)
    res = run(["bash", str(recipe / "egs/asvspoof2019_la/sasv/run.sh"), "--sv-exp", str(sv), "--cm-exp", str(cm),
               "--config", str(small_config(tmp_path / "s.yaml")), "--exp", str(exp), "--stage", "3",
               "--stop-stage", "3", "--nj", "1"], cwd=recipe, timeout=1200)
    assert res.returncode == 0, res.stderr[-3000:]
    assert not (exp / ".lock").exists()   # the recipe's lock, under which stage 3 ran, is released
    cfg = read_experiment_config(exp)   # the components, given to the shared pipeline by an overlay
    assert (cfg.task.sv, cfg.task.cm) == (str(sv), str(cm)) and cfg.task.dev_set == "dev"
    done = json.loads((exp / "train_done.json").read_text())
    assert done["shared_upstream"] is True and done["fusions"][-1] == "embedding"
    fitted = {p.name for p in (exp / "fusions").iterdir()}
    assert {"score_sum.json", "cascade.json", "embedding.json", "embedding.pt"} <= fitted
    cascade = json.loads((exp / "fusions" / "cascade.json").read_text())
    assert cascade["fitted_on"] == "dev" and "cm_threshold" in cascade["params"]
    assert not (exp / "outputs" / "eval").exists()   # stage 3 never touches an evaluation set

    # stages 4-6 as steps/pipeline.sh runs them
    assert extract_main(["--exp", str(exp), "--data", str(corpus)]) == 0
    assert evaluate_main(["--exp", str(exp), "--data", str(corpus), "--results", str(exp / "results.json"),
                          "--bootstrap", "20"]) == 0
    capsys.readouterr()
    assert report_main([str(exp / "results.json"), "--corpus-dir", str(corpus), "--plot-dir", str(exp / "plots")]) == 0
    report = capsys.readouterr().out
    rows = json.loads((exp / "results.json").read_text())
    systems = ["asv_only", "cm_only", "score_sum", "raw_sum", "product_rule", "logistic_regression", "cascade",
               "embedding"]
    assert [(r["set"], r["fusion"]) for r in rows] == [(s, f) for s in ("dev", "eval") for f in systems]
    for r in rows:
        assert {"sasv_eer_pct", "sv_eer_pct", "spf_eer_pct", "min_adcf", "t_eer_pct", "min_tdcf",
                "sasv_eer_pct_ci95", "min_adcf_ci95", "per_attack_spf_eer_pct"} <= set(r)
        assert r["n_target"] == 1 and r["n_nontarget"] == 1 and r["n_spoof"] == 2 and r["fitted_on"] == "dev"
    assert set(rows[-1]["per_attack_spf_eer_pct"]) == {"A07", "A11"}
    assert "### eval (1 target, 1 nontarget, 2 spoof trials; fusions fitted on dev" in report
    assert "min t-DCF (ASVspoof 5)" in report and "min t-DCF (2019)" not in report   # the task's titles
    assert (exp / "plots" / "eval_score_sum_det.png").read_bytes()[:4] == b"\x89PNG"
    lines = (exp / "sasv_scores" / "eval" / "cascade.txt").read_text().splitlines()
    assert [line.split()[:2] for line in lines] == [line.split()[:2] for line in
                                                    (corpus / "sasv" / "eval.trl").read_text().splitlines()]

    # the scores do not move when stage 4 resumes or batches differently
    before = {p.name: p.read_text() for p in (exp / "sasv_scores" / "eval").iterdir()}
    for part in (exp / "outputs" / "eval" / "parts").glob("part_00000.*"):   # as if stage 4 was stopped
        part.unlink()
    (exp / "outputs" / "eval" / "sasv.scp").unlink()
    assert extract_main(["--exp", str(exp), "--data", str(corpus)]) == 0
    assert {p.name: p.read_text() for p in (exp / "sasv_scores" / "eval").iterdir()} == before
    cfg.extract.batch_seconds = 0.7   # one utterance per batch
    shutil.rmtree(exp / "outputs" / "eval")
    get_task(cfg).score_trials(cfg, exp, corpus, component_loader(load_trained, "cpu"))
    for name, text in before.items():
        again = (exp / "sasv_scores" / "eval" / name).read_text().split()
        np.testing.assert_allclose(np.array(again[2::3], dtype=float), np.array(text.split()[2::3], dtype=float),
                                   rtol=1e-5, atol=1e-5, err_msg=name)


def test_asvspoof5_sasv_recipe_stages_1_2_then_stage_3_needs_components(tmp_path) -> None:
    """Without --sv-exp (and no SV corpus to train one), the recipe prepares and validates, then stops
    at stage 3 with a usage error (exit 1)."""
    protocols = make_asvspoof5(tmp_path / "release")
    noisy_audio(tmp_path / "release")
    recipe = recipe_copy(tmp_path)
    exp = tmp_path / "exp"
    res = run(["bash", str(recipe / "egs/asvspoof5/sasv/run.sh"), "--data-root", str(tmp_path / "release"),
               "--exp", str(exp), "--stop-stage", "3", "--nj", "1"], cwd=recipe, timeout=1200)
    assert res.returncode == 1 and "needs --sv-exp" in res.stderr, res.stderr[-3000:]
    assert "Stage 2: validating" in res.stderr + res.stdout
    prepared = recipe / "data" / "asvspoof5"
    assert sorted(p.name for p in prepared.iterdir() if not p.name.startswith(".")) == \
        ["dev", "eval", "protocols", "sasv", "train"]
    trials = (prepared / "sasv" / "dev.trl").read_text().splitlines()
    assert len(trials) == len((protocols / "ASVspoof5.dev.track_2.trial.tsv").read_text().splitlines())
    assert (exp / "log" / "stage2_validate.log").is_file()
    assert not (exp / "train_done.json").exists() and not (exp / ".lock").exists()
