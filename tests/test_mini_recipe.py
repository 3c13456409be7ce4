"""The mini recipe learns: a shortened run on the default mini corpus beats the untrained MFCC baseline."""

from __future__ import annotations

import json

import yaml

from conftest import REPO, run_sh
from mfcc_baseline import score_veri_test
from spkpeft.eval.metrics import compute_eer

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
