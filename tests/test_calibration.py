"""Cllr, min Cllr (PAV), actual DCF, logistic-regression calibration, the stored calibration and bin/calibrate."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import yaml

from conftest import REPO
from spkpeft.bin._cli import run_main
from spkpeft.bin.calibrate import main as calibrate_main
from spkpeft.bin.score import main as score_main
from spkpeft.errors import SpkpeftError
from spkpeft.eval.calibration import Calibration, fit_calibration, load_calibration, write_calibration
from spkpeft.eval.metrics import (bayes_threshold, compute_act_dcf, compute_cllr, compute_min_cllr,
                                  compute_min_dcf, pav_llr)
from spkpeft.io.trials import read_trials
from spkpeft.tasks.config import config_to_dict, load_config


def gaussian_llr_trials(rng, n, p_tar=0.2, d=1.5):
    """Targets ~ N(d, 1), non-targets ~ N(0, 1): the true LLR of x is ``d x - d^2 / 2``."""
    labels = rng.random(n) < p_tar
    x = rng.normal(labels * d, 1.0)
    return x, labels, d * x - d * d / 2


def brute_force_min_cllr(scores, labels):
    """Min Cllr over all partitions of the distinct scores into consecutive blocks whose target
    fractions rise: the optimum of a proper scoring rule under a monotone constraint is such a
    block-mean assignment, so the smallest feasible Cllr is min Cllr."""
    values = np.unique(scores)
    prior = labels.mean()
    best = np.inf
    for cuts in itertools.product([False, True], repeat=values.size - 1):
        block_of_value = np.r_[0, np.cumsum(cuts)]
        block = block_of_value[np.searchsorted(values, scores)]
        q = np.array([labels[block == k].mean() for k in range(block.max() + 1)])
        if np.any(np.diff(q) < 0):
            continue
        with np.errstate(divide="ignore"):
            llr = np.log(q) - np.log1p(-q) - np.log(prior / (1 - prior))
        llr = llr[block]  # Cllr written out here (infinite LLRs allowed): 0.5 [mean_tar log2(1 + e^-llr) + ...]
        cllr = 0.5 * (np.logaddexp(0, -llr[labels]).mean() + np.logaddexp(0, llr[~labels]).mean()) / np.log(2)
        best = min(best, cllr)
    return best


def test_min_cllr_known_cases_and_brute_force():
    assert compute_min_cllr([1, 2, 3, 4], [0, 1, 0, 1]) == pytest.approx(0.5)  # PAV: 0 | .5 .5 | 1
    assert compute_min_cllr([1, 1, 1, 1], [0, 1, 0, 1]) == pytest.approx(1.0)  # ties pooled: no information
    assert compute_min_cllr([0.1, 0.2, 0.9], [0, 0, 1]) == 0.0                  # separable: +-inf LLRs cost 0
    llr = pav_llr([0.1, 0.2, 0.9], [0, 0, 1])
    assert np.isneginf(llr[:2]).all() and np.isposinf(llr[2])
    rng = np.random.default_rng(0)
    for _ in range(10):
        labels = rng.random(10) < 0.4
        labels[:2] = [True, False]
        scores = np.round(rng.normal(labels * 1.0, 1.0), 1)
        assert compute_min_cllr(scores, labels) == pytest.approx(brute_force_min_cllr(scores, labels), abs=1e-12)


def test_cllr_of_calibrated_and_miscalibrated_llrs():
    rng = np.random.default_rng(1)
    _, labels, llr = gaussian_llr_trials(rng, 20000)
    calibrated = compute_cllr(llr, labels)
    assert compute_cllr(np.zeros(labels.size), labels) == pytest.approx(1.0)
    assert calibrated < 1.0
    for wrong in (3 * llr, llr / 3, llr + 2, llr - 2):
        assert compute_cllr(wrong, labels) > calibrated + 0.02
    # calibration loss of true LLRs is small; min Cllr is invariant to monotone maps
    assert calibrated - compute_min_cllr(llr, labels) < 0.01
    assert compute_min_cllr(3 * llr + 2, labels) == pytest.approx(compute_min_cllr(llr, labels))


def test_actual_dcf():
    assert bayes_threshold(0.01) == pytest.approx(np.log(99))
    llr = np.array([5.0, 4.0, -1.0, 4.6, 0.0])
    labels = np.array([True, True, True, False, False])
    # threshold log 99 = 4.595: misses 4.0 and -1.0 (2/3), accepts non-target 4.6 (1/2)
    expected = (0.01 * 2 / 3 + 0.99 * 1 / 2) / 0.01
    assert compute_act_dcf(llr, labels, 0.01) == pytest.approx(expected)
    rng = np.random.default_rng(2)
    _, labels, llr = gaussian_llr_trials(rng, 20000, d=3.0)
    for p in (0.01, 0.05):
        act, low = compute_act_dcf(llr, labels, p), compute_min_dcf(llr, labels, p)
        assert low <= act < low + 0.05  # true LLRs decide near the best threshold
        assert compute_act_dcf(llr + 3, labels, p) > act + 0.1


def test_fitted_calibration_improves_cllr_on_held_out_trials():
    rng = np.random.default_rng(3)
    x, labels, _ = gaussian_llr_trials(rng, 5000)
    cal = fit_calibration(0.1 * x + 0.3, labels)  # a raw score: affine in the true LLR
    assert cal.scale == pytest.approx(15.0, rel=0.1) and cal.offset == pytest.approx(-1.5 * 3 - 1.125, abs=0.3)
    x2, labels2, llr2 = gaussian_llr_trials(rng, 5000)
    raw2 = 0.1 * x2 + 0.3
    after = compute_cllr(cal.llr(raw2), labels2)
    assert after < compute_cllr(raw2, labels2) - 0.1
    assert after == pytest.approx(compute_cllr(llr2, labels2), abs=0.01)
    assert cal.threshold_raw == pytest.approx((np.log(99) - cal.offset) / cal.scale)
    accept = raw2 >= cal.threshold_raw
    np.testing.assert_array_equal(accept, cal.llr(raw2) >= cal.threshold_llr)
    # prior weighting: the class proportions of the calibration list do not move the LLRs
    keep = labels | (rng.random(labels.size) < 0.25)
    other = fit_calibration(0.1 * x[keep] + 0.3, labels[keep])
    assert other.scale == pytest.approx(cal.scale, rel=0.15) and other.offset == pytest.approx(cal.offset, abs=0.5)


def test_stored_calibration_round_trip_and_bad_files(tmp_path):
    cal = Calibration(12.5, -3.0, "asnorm", 0.05, extra={"n_trials": 10})
    path = tmp_path / "calibration.json"
    write_calibration(path, cal)
    data = json.loads(path.read_text())
    assert data["method"] == "logistic_regression" and data["threshold_llr"] == pytest.approx(np.log(19))
    assert data["threshold_raw"] == pytest.approx((np.log(19) + 3.0) / 12.5) and data["n_trials"] == 10
    back = load_calibration(path)
    assert back == cal and back.to_json() == data
    np.testing.assert_allclose(back.llr([0.0, 1.0]), [-3.0, 9.5])
    assert load_calibration(tmp_path / "absent.json") is None
    assert Calibration(-1.0, 0.0).threshold_raw is None
    bad = tmp_path / "bad.json"
    for text, message in (("{", "not valid JSON"), ("[]", "JSON object"), ('{"method": "logistic_regression"}', "lacks key 'scale'"),
                          (json.dumps({**data, "norm": "znorm"}), "unknown norm"),
                          (json.dumps({**data, "scale": "x"}), "wrong type"),
                          (json.dumps({**data, "p_target": 1.5}), "p_target"),
                          (json.dumps({**data, "threshold_llr": 1.0}), "disagrees")):
        bad.write_text(text)
        with pytest.raises(SpkpeftError, match=message) as err:
            load_calibration(bad)
        assert str(bad) in str(err.value)


def test_score_refuses_a_bad_calibration_file(tmp_path, capsys):
    scp = tmp_path / "emb.scp"
    with kaldiio.WriteHelper(f"ark,scp:{tmp_path / 'emb.ark'},{scp}") as writer:
        for utt, vec in (("a", [1.0, 0.0]), ("b", [0.9, 0.1]), ("c", [0.0, 1.0])):
            writer(utt, np.array(vec, dtype=np.float32))
    trials = tmp_path / "trials"
    trials.write_text("a b target\na c nontarget\n")
    bad = tmp_path / "calibration.json"
    bad.write_text('{"method": "logistic_regression", "scale": 1.0}\n')
    argv = [str(a) for a in ("--embeddings", scp, "--trials", trials, "--score-dir", tmp_path / "s",
                             "--results", tmp_path / "results.json", "--calibration", bad)]
    with pytest.raises(SystemExit) as stop:
        run_main(score_main, argv)
    assert stop.value.code == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"score: error: {bad}: calibration lacks key 'offset'"
    assert not (tmp_path / "results.json").exists()


def write_experiment(root: Path, val_speakers: int = 4) -> tuple[Path, Path]:
    """A trained-looking experiment without training: config.yaml, a training data directory of
    10 speakers x 2 sessions x 3 utterances and their embeddings (a speaker direction + noise)."""
    rng = np.random.default_rng(7)
    data, exp = root / "data" / "train", root / "exp"
    data.mkdir(parents=True)
    (exp / "embeddings" / "train").mkdir(parents=True)
    cfg = load_config(REPO / "conf" / "sv" / "mini.yaml", {"task.val_speakers": val_speakers})
    (exp / "config.yaml").write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
    utts = [f"id{s:02d}/sess{k}/{u}" for s in range(10) for k in range(2) for u in range(3)]
    (data / "wav.scp").write_text("".join(f"{u} /nowhere/{u.replace('/', '_')}.wav\n" for u in utts))
    (data / "utt2spk").write_text("".join(f"{u} {u.split('/')[0]}\n" for u in utts))
    (data / "spk2utt").write_text("".join(f"id{s:02d} " + " ".join(u for u in utts if u.startswith(f"id{s:02d}/"))
                                          + "\n" for s in range(10)))
    centres = rng.normal(size=(10, 16))
    scp = exp / "embeddings" / "train" / "xvector.scp"
    with kaldiio.WriteHelper(f"ark,scp:{scp.with_suffix('.ark')},{scp}") as writer:
        for u in utts:
            writer(u, (centres[int(u[2:4])] + rng.normal(0, 1.2, 16)).astype(np.float32))
    return exp, data


def test_bin_calibrate_on_held_out_training_speakers(tmp_path):
    exp, data = write_experiment(tmp_path)
    assert calibrate_main(["--exp", str(exp), "--data", str(data), "--top-n", "3"]) == 0
    utt1, utt2, labels = read_trials(exp / "calibration" / "trials")
    lines = (exp / "calibration" / "trials").read_text().splitlines()
    assert lines == sorted(lines)
    speakers = {u.split("/")[0] for u in (*utt1, *utt2)}
    assert len(speakers) == 4  # task.val_speakers, nothing else
    assert all(a.split("/")[:2] != b.split("/")[:2] for a, b in zip(utt1, utt2))  # cross-session pairs only
    assert labels.sum() == 4 * 9 and (~labels).sum() == 6 * 6 * 6  # per speaker 3 x 3 cross-session targets
    main = json.loads((exp / "calibration.json").read_text())
    for norm in ("none", "snorm", "asnorm"):
        stored = json.loads((exp / "calibration" / f"{norm}.json").read_text())
        assert stored["norm"] == norm and stored["n_speakers"] == 4 and stored["n_trials"] == labels.size
        assert stored["scale"] > 0 and stored["cllr"] < stored["cllr_uncalibrated"] and stored["cllr"] < 1
        assert stored["min_cllr"] <= stored["cllr"]
        assert (exp / "calibration" / ("trials.score" if norm == "none" else f"trials.{norm}.score")).is_file()
    assert main == json.loads((exp / "calibration" / "none.json").read_text())
    assert load_calibration(exp / "calibration.json").threshold_raw == pytest.approx(main["threshold_raw"])


def test_bin_calibrate_without_held_out_speakers(tmp_path):
    exp, data = write_experiment(tmp_path, val_speakers=0)
    with pytest.raises(SpkpeftError, match=f"^{data}: task.val_speakers is 0"):
        calibrate_main(["--exp", str(exp), "--data", str(data)])
    assert not (exp / "calibration.json").exists() and not (exp / "calibration").exists()
    assert calibrate_main(["--exp", str(exp), "--data", str(data), "--skip-without-held-out"]) == 0  # stage 5's way
    assert not (exp / "calibration.json").exists() and not (exp / "calibration").exists()
