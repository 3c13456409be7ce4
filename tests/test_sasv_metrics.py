"""SASV metrics (SASV 2022 EERs, ASVspoof 5 min a-DCF, t-EER, min t-DCF), their readers and the
compute_sasv_metrics CLI.

Reference values of the official code
-------------------------------------
``OFFICIAL`` below was computed by the official implementations, run outside this repository on
the score sets of :func:`score_set` (this file's generator, imported by the script):

* ``sasv_eer``, ``sv_eer``, ``spf_eer``: ``get_all_EERs`` of ``metrics.py`` in
  ``sasv-challenge/SASVC2022_Baseline`` (commit 1545f2bb), scikit-learn 1.7.2, SciPy 1.16.3;
* ``min_adcf``, ``t_eer_pct``, ``min_tdcf_official_pmiss_spoof``: ``calculate_aDCF_tdcf_tEER``
  of ``evaluation-package/calculate_metrics.py`` in ``asvspoof-challenge/asvspoof5`` (commit
  fe23d305), called as ``evaluation_full.py`` calls it, with the trials' own ASV scores as the
  organisers' ASV (``asv_scores_org``); it returns ``(a-DCF, min t-DCF, t-EER %)``, the t-EER
  from ``compute_teer_accelerated``; its min t-DCF passes ``obtain_asv_error_rates(...)[2]``
  (``P(spoof < t)``) as the spoof false-alarm rate;
* ``min_tdcf``: the same package's ``compute_tDCF`` with ``obtain_asv_error_rates(...)[3]``
  (``P(spoof >= t)``), ASV threshold from its ``compute_eer`` of target against nontarget ASV
  scores, the costs of ``calculate_aDCF_tdcf_tEER`` (what ASVspoof 5's t-DCF defines);
* ``t_eer_pct_exhaustive``: ``compute_teer`` of the package (no coarse-to-fine search) on the
  curves of ``compute_Pmiss_Pfa_Pspoof_curves`` and ``compute_det_curve``.

Values are ``repr`` of the returned floats.  The official EERs solve the ROC crossing with
``brentq`` (``xtol = 2e-12``), so they are compared to 1e-11; everything else must be equal to
the last bit.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import python_module
from spkpeft.bin.compute_sasv_metrics import main
from spkpeft.errors import SpkpeftError
from spkpeft.eval.cm_metrics import asv_error_rates, min_tdcf_2021
from spkpeft.eval.sasv_metrics import (ADCF_ASVSPOOF5_COSTS, KeyedScores, adcf_curve, compute_sasv_metrics,
                                       keyed_scores, min_adcf, min_tdcf_asvspoof5, read_sasv_protocol,
                                       read_scores_of_trials, sasv_eers, spf_eer_per_attack, t_eer)

# ---------------------------------------------------------------- fixed score sets

MODULUS = 2147483647  # Park-Miller minimal standard generator


def park_miller(seed: int, n: int, levels: int) -> list[int]:
    """n integers in [0, levels) from x <- 48271 x mod (2^31 - 1): exact, the same everywhere."""
    x, out = seed, []
    for _ in range(n):
        x = (48271 * x) % MODULUS
        out.append(x % levels)
    return out


def uniform(seed: int, n: int, low: float, high: float, levels: int) -> list[float]:
    """n scores on a grid of ``levels`` values in [low, high) (few levels: many ties)."""
    return [low + (high - low) * v / levels for v in park_miller(seed, n, levels)]


def score_set(seed: int, n_tar: int, n_non: int, n_spf: int, levels: int):
    """``(keys, sasv, asv, cm)`` per trial: targets first, then nontargets, then spoofs."""
    keys = ["target"] * n_tar + ["nontarget"] * n_non + ["spoof"] * n_spf
    sasv = (uniform(seed, n_tar, 1.5, 5.5, levels) + uniform(seed + 1, n_non, 0.0, 4.0, levels)
            + uniform(seed + 2, n_spf, 1.0, 5.0, levels))
    asv = (uniform(seed + 3, n_tar, 1.0, 5.0, levels) + uniform(seed + 4, n_non, 0.0, 3.0, levels)
           + uniform(seed + 5, n_spf, 0.5, 4.5, levels))
    cm = uniform(seed + 6, n_tar + n_non, 0.5, 4.0, levels) + uniform(seed + 7, n_spf, 0.0, 2.5, levels)
    return keys, sasv, asv, cm


#: name -> (seed, targets, nontargets, spoofs, grid levels); "large" sets take the official
#: accelerated t-EER search (7001-point curves: every 2nd point, then a +-1600 window)
SETS = {"random_small": (11, 40, 60, 80, MODULUS), "tied_small": (23, 40, 60, 80, 6),
        "random_large": (37, 2000, 2500, 2500, MODULUS), "tied_large": (53, 2000, 2500, 2500, 40)}

OFFICIAL = {
    "random_small": {"sasv_eer": 0.3499999999999999, "sv_eer": 0.2999999999981573, "spf_eer": 0.36250000000090765,
                     "min_adcf": 0.7707913165266107, "t_eer_pct": 35.75000000000001,
                     "t_eer_pct_exhaustive": 35.75000000000001, "min_tdcf": 0.860329718361607,
                     "min_tdcf_official_pmiss_spoof": 0.9263454428548464},
    "tied_small": {"sasv_eer": 0.3500000000002896, "sv_eer": 0.30000000000000004, "spf_eer": 0.44999999999999996,
                   "min_adcf": 0.7838375350140057, "t_eer_pct": 40.46875, "t_eer_pct_exhaustive": 40.46875,
                   "min_tdcf": 0.7330045739380366, "min_tdcf_official_pmiss_spoof": 0.8461143883046934},
    "random_large": {"sasv_eer": 0.3752000000001384, "sv_eer": 0.30949999999999883, "spf_eer": 0.4416000000002008,
                     "min_adcf": 0.8355306722689076, "t_eer_pct": 34.294592, "t_eer_pct_exhaustive": 34.294592,
                     "min_tdcf": 0.8955254493071754, "min_tdcf_official_pmiss_spoof": 0.9119440924928731},
    "tied_large": {"sasv_eer": 0.3821323529411787, "sv_eer": 0.3207381370826011, "spf_eer": 0.4402641509433967,
                   "min_adcf": 0.833455462184874, "t_eer_pct": 35.049984, "t_eer_pct_exhaustive": 35.049984,
                   "min_tdcf": 0.8963175057093611, "min_tdcf_official_pmiss_spoof": 0.9176465976086007},
}


def keyed(name: str) -> tuple[KeyedScores, KeyedScores, KeyedScores]:
    keys, sasv, asv, cm = score_set(*SETS[name])
    return keyed_scores(sasv, keys), keyed_scores(asv, keys), keyed_scores(cm, keys)


# ---------------------------------------------------------------- parity with the official code


@pytest.mark.parametrize("name", ["random_small", "tied_small"])
def test_sasv2022_eers_and_adcf_equal_the_official_values(name) -> None:
    sasv, _, _ = keyed(name)
    ref = OFFICIAL[name]
    eers = sasv_eers(sasv)
    assert eers.sasv == pytest.approx(ref["sasv_eer"], abs=1e-11)
    assert eers.sv == pytest.approx(ref["sv_eer"], abs=1e-11)
    assert eers.spf == pytest.approx(ref["spf_eer"], abs=1e-11)
    assert min_adcf(sasv) == ref["min_adcf"]


@pytest.mark.parametrize("name", list(SETS))
def test_teer_and_tdcf_equal_the_official_values(name) -> None:
    sasv, asv, cm = keyed(name)
    ref = OFFICIAL[name]
    assert 100 * t_eer(asv, cm) == ref["t_eer_pct"]
    assert min_tdcf_asvspoof5(asv, cm) == ref["min_tdcf"]
    if name.endswith("large"):  # EERs and a-DCF of the large sets too (cheap)
        assert sasv_eers(sasv).sasv == pytest.approx(ref["sasv_eer"], abs=1e-11)
        assert min_adcf(sasv) == ref["min_adcf"]


def test_exhaustive_teer_equals_the_official_compute_teer() -> None:
    for name in ("random_small", "tied_small", "tied_large"):
        _, asv, cm = keyed(name)
        assert 100 * t_eer(asv, cm, accelerated=False) == OFFICIAL[name]["t_eer_pct_exhaustive"]


def test_official_tdcf_path_uses_pmiss_spoof_and_we_do_not() -> None:
    """The official evaluation_full path passes P(spoof < t) as the spoof false-alarm rate: with it,
    the 2021 t-DCF reproduces its value; ours (P(spoof >= t)) is the official compute_tDCF's."""
    for name in SETS:
        _, asv, cm = keyed(name)
        rates = asv_error_rates(asv.target, asv.nontarget, asv.spoof)
        bona = np.concatenate([cm.target, cm.nontarget])
        swapped = rates._replace(pfa_spoof_asv=rates.pmiss_spoof_asv)
        assert min_tdcf_2021(bona, cm.spoof, swapped) == OFFICIAL[name]["min_tdcf_official_pmiss_spoof"]
        assert min_tdcf_asvspoof5(asv, cm) != OFFICIAL[name]["min_tdcf_official_pmiss_spoof"]


# ---------------------------------------------------------------- brute force and known cases


def official_positions_min_adcf(tar, non, spf, c=ADCF_ASVSPOOF5_COSTS) -> float:
    """a_dcf.py's loop: stable order of [target, nontarget, spoof], every position a point."""
    scores = np.concatenate([tar, non, spf])
    labels = np.concatenate([np.ones(len(tar)), np.zeros(len(non)), np.full(len(spf), 2)])[
        np.argsort(scores, kind="mergesort")]
    fn, fp_non, fp_spf = 0, len(non), len(spf)
    best = c.c_miss * c.p_tar * 0 + c.c_fa_non * c.p_non * 1.0 + c.c_fa_spf * c.p_spf * 1.0
    for lab in labels:
        fn, fp_non, fp_spf = fn + (lab == 1), fp_non - (lab == 0), fp_spf - (lab == 2)
        best = min(best, c.c_miss * c.p_tar * (fn / len(tar)) + c.c_fa_non * c.p_non * (fp_non / len(non))
                   + c.c_fa_spf * c.p_spf * (fp_spf / len(spf)))
    return best / min(c.c_fa_non * c.p_non + c.c_fa_spf * c.p_spf, c.c_miss * c.p_tar)


@pytest.mark.parametrize("seed", range(8))
def test_min_adcf_equals_the_positionwise_minimum(seed) -> None:
    rng = np.random.default_rng(seed)
    tar, non, spf = (rng.integers(lo, lo + 5, int(rng.integers(1, 30))).astype(float) for lo in (2, 0, 1))
    assert min_adcf(KeyedScores(tar, non, spf)) == official_positions_min_adcf(tar, non, spf)


def test_known_cases() -> None:
    perfect = KeyedScores(np.array([3.0, 4.0]), np.array([0.0, 1.0]), np.array([1.0, 2.0]))
    assert sasv_eers(perfect) == (0.0, 0.0, 0.0)
    assert min_adcf(perfect) == 0.0
    # all tied: accept-all costs 0.595 (normalised to 1), reject-all 0.9405 / 0.595
    tied = KeyedScores(np.zeros(2), np.zeros(3), np.zeros(4))
    assert sasv_eers(tied) == (0.5, 0.5, 0.5)
    cost, thresholds = adcf_curve(tied)
    assert cost.tolist() == pytest.approx([1.0, 0.9405 / 0.595]) and thresholds.tolist() == [0.0, np.inf]
    # SV perfect, spoofs indistinguishable from targets
    spoofed = KeyedScores(np.array([2.0, 3.0]), np.array([0.0]), np.array([2.0, 3.0]))
    assert sasv_eers(spoofed).sv == 0.0 and sasv_eers(spoofed).spf == 0.5


def test_spf_eer_per_attack_and_metrics_dict() -> None:
    scores = [3.0, 2.0, 0.0, 2.5, 1.0, 4.0]
    keys = ["target", "target", "nontarget", "spoof", "spoof", "spoof"]
    attacks = ["bonafide", "bonafide", "bonafide", "A01", "A02", "A02"]
    per = spf_eer_per_attack(scores, keys, attacks)
    assert list(per) == ["A01", "A02"] and per["A01"] == 0.5 and per["A02"] == 0.5
    out = compute_sasv_metrics(keyed_scores(scores, keys), per_attack=per)
    assert out["per_attack_spf_eer_pct"] == {"A01": 50.0, "A02": 50.0}
    assert {"sasv_eer_pct", "sv_eer_pct", "spf_eer_pct", "min_adcf"} <= set(out) and "t_eer_pct" not in out
    with pytest.raises(SpkpeftError, match="both the ASV and the CM"):
        compute_sasv_metrics(keyed_scores(scores, keys), asv=keyed_scores(scores, keys))


def test_input_errors() -> None:
    with pytest.raises(SpkpeftError, match="no spoof trials"):
        keyed_scores([1.0, 2.0], ["target", "nontarget"])
    with pytest.raises(SpkpeftError, match="got 'bonafide' at index 1"):
        keyed_scores([1.0, 2.0], ["target", "bonafide"])
    with pytest.raises(SpkpeftError, match="non-finite"):
        keyed_scores([1.0, np.nan, 0.0], ["target", "nontarget", "spoof"])
    one = KeyedScores(np.ones(2), np.ones(1), np.ones(1))
    with pytest.raises(SpkpeftError, match="t-EER needs both per trial"):
        t_eer(one, KeyedScores(np.ones(1), np.ones(1), np.ones(1)))


# ---------------------------------------------------------------- readers and the CLI

PROTOCOL_2019 = ["LA_0001 LA_E_1 bonafide target", "LA_0001 LA_E_2 bonafide nontarget",
                 "LA_0001 LA_E_3 A07 spoof", "LA_0002 LA_E_2 bonafide target", "LA_0002 LA_E_1 bonafide nontarget",
                 "LA_0002 LA_E_4 A08 spoof"]


def write(path: Path, lines) -> Path:
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


@pytest.mark.parametrize("lines, message", [
    (["S U bonafide target", "S V bonafide maybe"], r":2: key must be target, nontarget or spoof, found 'maybe'"),
    (["S U A01 target"], r":1: a target trial must have source 'bonafide', found 'A01'"),
    (["S U bonafide spoof"], r":1: a spoof trial needs an attack id, found 'bonafide'"),
    (["S U bonafide target", "S U bonafide nontarget"], r":2: duplicate trial 'S U' \(first on line 1\)"),
    (["S U bonafide target", "S V F bonafide nontarget"], r":2: expected 4 \(as on line 1\) fields"),
    (["S U bonafide target", "", "S V A01 spoof"], r":2: expected 4 \(as on line 1\) fields"),
    (["S U bonafide target", "S W A01 spoof"], r": no 'nontarget' trials"),
])
def test_protocol_errors_name_the_line(tmp_path, lines, message) -> None:
    with pytest.raises(SpkpeftError, match=message):
        read_sasv_protocol(write(tmp_path / "p.txt", lines))


def test_protocol_layouts(tmp_path) -> None:
    p19 = read_sasv_protocol(write(tmp_path / "a.txt", PROTOCOL_2019))
    p5 = read_sasv_protocol(write(tmp_path / "b.tsv", [" ".join(f.split()[:2] + ["F"] + f.split()[2:])
                                                        for f in PROTOCOL_2019]))
    assert p19 == p5
    assert p19.keys[:3] == ["target", "nontarget", "spoof"] and p19.sources[2] == "A07"


def test_score_files_align_with_the_protocol(tmp_path) -> None:
    protocol_path = write(tmp_path / "p.txt", PROTOCOL_2019)
    protocol = read_sasv_protocol(protocol_path)
    trial = write(tmp_path / "s.txt", [f"{line.split()[0]} {line.split()[1]} {i}" for i, line
                                       in enumerate(reversed(PROTOCOL_2019))])
    assert read_scores_of_trials(trial, protocol, protocol_path, "SASV score").tolist() == [5, 4, 3, 2, 1, 0]
    utt = write(tmp_path / "cm.txt", ["LA_E_1 0.5", "LA_E_2 -1", "LA_E_3 2", "LA_E_4 3", "LA_E_9 7"])
    assert read_scores_of_trials(utt, protocol, protocol_path, "CM score").tolist() == [0.5, -1, 2, -1, 0.5, 3]
    with pytest.raises(SpkpeftError, match=r"p.txt:2: trial 'LA_0001 LA_E_2' has no SASV score in"):
        read_scores_of_trials(write(tmp_path / "t.txt", ["LA_0001 LA_E_1 1"]), protocol, protocol_path, "SASV score")
    with pytest.raises(SpkpeftError, match=r"x.txt:1: trial 'LA_0009 LA_E_1' is not in the protocol"):
        read_scores_of_trials(write(tmp_path / "x.txt", ["LA_0009 LA_E_1 1"]), protocol, protocol_path, "SASV score")
    with pytest.raises(SpkpeftError, match=r"d.txt:2: duplicate utterance 'LA_E_1'"):
        read_scores_of_trials(write(tmp_path / "d.txt", ["LA_E_1 1", "LA_E_1 2"]), protocol, protocol_path, "CM score")
    with pytest.raises(SpkpeftError, match=r"n.txt:1: .*nan"):
        read_scores_of_trials(write(tmp_path / "n.txt", ["LA_E_1 nan"]), protocol, protocol_path, "CM score")


def test_cli_json_text_and_errors(tmp_path, capsys) -> None:
    keys, sasv, asv, cm = score_set(*SETS["tied_small"])
    lines = [f"S{i % 7} U{i} {'bonafide' if k != 'spoof' else 'A0' + str(i % 3 + 1)} {k}" for i, k in enumerate(keys)]
    protocol = write(tmp_path / "p.txt", lines)
    scores = write(tmp_path / "s.txt", [f"S{i % 7} U{i} {v!r}" for i, v in enumerate(sasv)])
    asv_file = write(tmp_path / "a.txt", [f"S{i % 7} U{i} {v!r}" for i, v in enumerate(asv)])
    cm_file = write(tmp_path / "c.txt", [f"U{i} {v!r}" for i, v in enumerate(cm)])
    assert main(["--scores", str(scores), "--protocol", str(protocol), "--cm-scores", str(cm_file),
                 "--asv-scores", str(asv_file), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    ref = OFFICIAL["tied_small"]
    assert out["sasv_eer_pct"] == pytest.approx(100 * ref["sasv_eer"], abs=1e-9)
    assert out["min_adcf"] == ref["min_adcf"] and out["t_eer_pct"] == ref["t_eer_pct"]
    assert out["min_tdcf"] == ref["min_tdcf"] and set(out["per_attack_spf_eer_pct"]) == {"A01", "A02", "A03"}
    assert main(["--scores", str(scores), "--protocol", str(protocol)]) == 0
    text = capsys.readouterr().out
    assert "SASV-EER: 35.0000 %" in text and "t-EER" not in text
    with pytest.raises(SystemExit) as usage:
        main(["--scores", str(scores), "--protocol", str(protocol), "--cm-scores", str(cm_file)])
    assert usage.value.code == 2 and "go together" in capsys.readouterr().err
    bad = python_module("spkpeft.bin.compute_sasv_metrics", "--scores", write(tmp_path / "b.txt", ["S0 U0 x"]),
                        "--protocol", protocol)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "b.txt:1:" in bad.stderr


# ---------------------------------------------------------------- speaker bootstrap


def test_bootstrap_weights_of_one_give_the_point_estimates_and_intervals_cover_them() -> None:
    from spkpeft.eval.bootstrap import cluster_index
    from spkpeft.eval.sasv_metrics import _class_blocks, bootstrap_sasv, sasv_from_weights

    for name in ("random_small", "tied_small"):
        keys, sasv, _, _ = score_set(*SETS[name])
        speakers = [f"S{i % 9}" for i in range(len(keys))]
        cluster, n = cluster_index(speakers)
        once = sasv_from_weights(_class_blocks(np.array(sasv), np.array(keys, dtype=object), cluster, n), np.ones((1, n)))
        point = sasv_eers(keyed_scores(sasv, keys))
        assert once["sasv_eer_pct"][0] == pytest.approx(100 * point.sasv, abs=1e-9)
        assert once["sv_eer_pct"][0] == pytest.approx(100 * point.sv, abs=1e-9)
        assert once["spf_eer_pct"][0] == pytest.approx(100 * point.spf, abs=1e-9)
        assert once["min_adcf"][0] == pytest.approx(min_adcf(keyed_scores(sasv, keys)), abs=1e-12)
        ci = bootstrap_sasv(sasv, keys, speakers, draws=200, seed=3)
        assert set(ci) == {"sasv_eer_pct_ci95", "sv_eer_pct_ci95", "spf_eer_pct_ci95", "min_adcf_ci95"}
        assert ci["sasv_eer_pct_ci95"][0] <= 100 * point.sasv <= ci["sasv_eer_pct_ci95"][1]
        assert bootstrap_sasv(sasv, keys, speakers, draws=200, seed=3) == ci   # seeded
    with pytest.raises(SpkpeftError, match="equal lengths"):
        bootstrap_sasv([1.0, 0.0, 2.0], ["target", "nontarget", "spoof"], ["a", "b"])
