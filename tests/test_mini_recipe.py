"""The mini recipe learns: a shortened run on the default mini corpus beats the untrained MFCC baseline."""

from __future__ import annotations

import json

import yaml

from conftest import REPO, run_sh
from mfcc_baseline import score_veri_test
from spkpeft.eval.metrics import compute_cllr, compute_eer
from spkpeft.io.trials import load_scored_trials

SHORT_EPOCHS = 10


def test_shortened_mini_recipe_beats_the_mfcc_baseline(recipe, default_mini_corpus, tmp_path):
    labels, scores = score_veri_test(default_mini_corpus / "veri_test.txt", default_mini_corpus / "wav")
    baseline_pct = 100.0 * compute_eer(scores, labels)

    config = tmp_path / "short.yaml"
    config.write_text(yaml.safe_dump({"base": str(REPO / "conf" / "mini.yaml"),
                                      "train": {"epochs": SHORT_EPOCHS}}))
    exp = tmp_path / "exp"
    res = run_sh(recipe, "--corpus", "voxceleb1", "--data-root", str(default_mini_corpus),
                 "--vox1-lists", "vox1_o", "--config", str(config), "--exp", str(exp),
                 timeout=2400)  # about 5 min alone on 2 cores; far slower when the machine is shared
    assert res.returncode == 0, res.stderr[-3000:]
    rows = {r["norm"]: r for r in json.loads((exp / "results.json").read_text()) if r["trials"] == "vox1_o"}
    eer_pct = rows["none"]["eer_pct"]
    print(f"mini recipe ({SHORT_EPOCHS} epochs): EER {eer_pct:.2f}% vs MFCC baseline {baseline_pct:.2f}%")
    assert baseline_pct > 10.0
    assert eer_pct < 0.8 * baseline_pct, (eer_pct, baseline_pct)
    assert rows["none"]["n_trials"] == len(labels)
    assert {"config", "upstream", "trainable_params", "total_params", "train_seconds",
            "peak_memory_mb"} <= set(rows["none"])
    assert (exp / "plots" / "det_vox1_o.png").is_file()

    # error bars and calibration (held-out training speakers; the test trials are never used to fit it)
    none = rows["none"]
    lo, hi = none["eer_ci95"]
    assert lo <= eer_pct <= hi and none["ci_draws"] == 1000
    assert none["mindcf_p0.01_ci95"][0] <= none["mindcf_p0.01"] <= none["mindcf_p0.01_ci95"][1]
    stored = json.loads((exp / "calibration.json").read_text())
    assert stored["norm"] == "none" and stored["n_speakers"] == 8 and stored["scale"] > 0
    assert stored["cllr"] < stored["cllr_uncalibrated"]
    scores, labels_o = load_scored_trials(recipe / "data" / "voxceleb1" / "trials" / "vox1_o",
                                          exp / "scores" / "vox1_o.score")
    raw_cllr = compute_cllr(scores, labels_o)  # the cosines taken as LLRs
    print(f"test trials: Cllr {raw_cllr:.3f} raw -> {none['cllr']:.3f} calibrated (min {none['min_cllr']:.3f}); "
          f"actDCF@0.01 {none['actdcf_p0.01']:.3f} (min {none['mindcf_p0.01']:.3f})")
    for row in rows.values():  # every norm has its own calibration
        assert row["min_cllr"] <= row["cllr"] < 1.0
        assert row["actdcf_p0.01"] >= row["mindcf_p0.01"] - 1e-12
    assert none["cllr"] < raw_cllr
    assert none["threshold_raw"] == stored["threshold_raw"]


AST_SMALL_CORPUS = "--n-train-spk 6 --n-test-spk 3 --n-sessions 2 --n-utts 2 --min-dur 2 --max-dur 3"


def test_sv_mini_recipe_on_random_tiny_ast_completes(recipe, tmp_path):
    """conf/sv/ast_mini.yaml (the AST frame sequence into the ECAPA head) runs stages 1-6 on a
    small corpus: one epoch, then extraction in 2 s chunks, scoring and the report."""
    config = tmp_path / "ast_short.yaml"
    config.write_text(yaml.safe_dump({"base": str(REPO / "conf" / "sv" / "ast_mini.yaml"),
                                      "task": {"val_speakers": 2}, "data": {"batch_size": 4},
                                      "train": {"epochs": 1}}))
    exp = tmp_path / "exp"
    res = run_sh(recipe, "--data-root", str(tmp_path / "corpus"), "--mini-opts", AST_SMALL_CORPUS,
                 "--config", str(config), "--exp", str(exp), "--bootstrap", "0", "--nj", "1", timeout=1200)
    assert res.returncode == 0, res.stderr[-3000:]
    rows = json.loads((exp / "results.json").read_text())
    assert rows and {r["upstream"] for r in rows} == {"random:tiny_ast"}
    assert all(0.0 <= r["eer_pct"] <= 100.0 and r["n_trials"] > 0 for r in rows)
