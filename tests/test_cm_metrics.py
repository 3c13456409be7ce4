"""CM metrics (ASVspoof EER, t-DCF 2019/2021, per-attack EER), their readers and the compute_cm_metrics CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from spkpeft.errors import SpkpeftError
from spkpeft.eval.cm_metrics import (TDCF_2019_COSTS, TDCF_2021_COSTS, AsvErrorRates, Tdcf2019Costs,
                                     align_cm_scores, align_conditions, asv_error_rates, cm_eer,
                                     cm_eer_interpolated, compute_cm_metrics, min_tdcf_2019, min_tdcf_2021,
                                     per_attack_eer, per_condition_eer, read_asv_scores, read_cm_protocol,
                                     read_cm_scores, read_conditions)

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- brute force references


def brute_official_eer(bona, spoof):
    """Official compute_eer semantics, by a loop: order by (score, bona first), reject the k first."""
    items = sorted([(float(s), 0) for s in bona] + [(float(s), 1) for s in spoof])
    n_b, n_s = len(bona), len(spoof)
    best = None
    for k in range(len(items) + 1):
        rej_b = sum(1 for _, c in items[:k] if c == 0)
        rej_s = sum(1 for _, c in items[:k] if c == 1)
        frr, far = rej_b / n_b, (n_s - rej_s) / n_s
        thr = items[k - 1][0] if k else items[0][0] - 0.001
        if best is None or abs(frr - far) < best[0]:
            best = (abs(frr - far), float(np.mean((frr, far))), thr)
    return best[1], best[2]


def grouped_points(bona, spoof):
    """(P_miss, P_fa) for every threshold t in the distinct scores and +inf (accept iff score >= t)."""
    for t in sorted(set(map(float, bona)) | set(map(float, spoof))) + [np.inf]:
        yield t, sum(b < t for b in bona) / len(bona), sum(s >= t for s in spoof) / len(spoof)


def brute_interpolated_eer(bona, spoof):
    pts = [(pm, pf) for _, pm, pf in grouped_points(bona, spoof)]
    for (m0, f0), (m1, f1) in zip(pts, pts[1:]):
        d0, d1 = m0 - f0, m1 - f1
        if d0 < 0 <= d1:
            w = -d0 / (d1 - d0)
            return (1 - w) * m0 + w * m1
    raise AssertionError("no crossing")


def brute_asv_rates(tar, non, spoof):
    _, t = brute_official_eer(tar, non)
    return (sum(x >= t for x in non) / len(non), sum(x < t for x in tar) / len(tar),
            sum(x < t for x in spoof) / len(spoof), sum(x >= t for x in spoof) / len(spoof))


def brute_tdcf_2019(bona, spoof, pfa, pmiss, pmiss_spoof, c=TDCF_2019_COSTS):
    c1 = c.p_tar * (c.c_miss_cm - c.c_miss_asv * pmiss) - c.p_non * c.c_fa_asv * pfa
    c2 = c.c_fa_cm * c.p_spoof * (1 - pmiss_spoof)
    return min((c1 * pm + c2 * pf) / min(c1, c2) for _, pm, pf in grouped_points(bona, spoof))


def brute_tdcf_2021(bona, spoof, pfa, pmiss, pfa_spoof, c=TDCF_2021_COSTS):
    c0 = c.p_tar * c.c_miss * pmiss + c.p_non * c.c_fa * pfa
    c1 = c.p_tar * c.c_miss - c0
    c2 = c.p_spoof * c.c_fa_spoof * pfa_spoof
    return min((c0 + c1 * pm + c2 * pf) / (c0 + min(c1, c2)) for _, pm, pf in grouped_points(bona, spoof))


def official_positions_tdcf_2021(bona, spoof, pfa, pmiss, pfa_spoof, c=TDCF_2021_COSTS):
    """Minimum over the official position-wise DET curve (the points inside tie groups included)."""
    items = sorted([(float(s), 0) for s in bona] + [(float(s), 1) for s in spoof])
    c0 = c.p_tar * c.c_miss * pmiss + c.p_non * c.c_fa * pfa
    c1 = c.p_tar * c.c_miss - c0
    c2 = c.p_spoof * c.c_fa_spoof * pfa_spoof
    vals = []
    for k in range(len(items) + 1):
        pm = sum(1 for _, cl in items[:k] if cl == 0) / len(bona)
        pf = (len(spoof) - sum(1 for _, cl in items[:k] if cl == 1)) / len(spoof)
        vals.append((c0 + c1 * pm + c2 * pf) / (c0 + min(c1, c2)))
    return min(vals)


def draw(rng, kind, n_b, n_s):
    if kind == "random":
        return rng.normal(1.0, 1.0, n_b), rng.normal(-0.5, 1.0, n_s)
    return rng.integers(0, 6, n_b).astype(float), rng.integers(-2, 4, n_s).astype(float)  # many ties


CASES = [(kind, seed) for kind in ("random", "tied") for seed in range(12)]


# ---------------------------------------------------------------- EER


@pytest.mark.parametrize("kind, seed", CASES)
def test_eers_match_brute_force(kind, seed) -> None:
    rng = np.random.default_rng(seed)
    bona, spoof = draw(rng, kind, int(rng.integers(1, 40)), int(rng.integers(1, 40)))
    assert cm_eer(bona, spoof) == brute_official_eer(bona, spoof)
    assert cm_eer_interpolated(bona, spoof) == pytest.approx(brute_interpolated_eer(bona, spoof), abs=1e-12)


def test_eer_known_cases() -> None:
    # stable order 0.1(s) 0.4(b) 0.4(s) 0.8(b): |FRR-FAR| = 1, .5, 0, .5, 1 -> k = 2
    assert cm_eer([0.8, 0.4], [0.4, 0.1]) == (0.5, 0.4)
    assert cm_eer_interpolated([0.8, 0.4], [0.4, 0.1]) == 0.25
    assert cm_eer([1, 2, 3], [0, -1]) == (0.0, 0.0)      # perfect: reject both spoofs
    assert cm_eer([0], [1]) == (1.0, 0.0)                # reversed: FRR = FAR = 1 after rejecting the bona fide
    assert cm_eer([0, 0], [0, 0]) == (1.0, 0.0)          # all tied: official pessimistic tie order
    assert cm_eer_interpolated([0, 0], [0, 0]) == 0.5
    assert cm_eer_interpolated([1, 2, 3], [0]) == 0.0


def test_eer_errors() -> None:
    with pytest.raises(SpkpeftError, match="at least one spoof"):
        cm_eer([1.0], [])
    with pytest.raises(SpkpeftError, match="non-finite bona fide"):
        cm_eer([1.0, np.nan], [0.0])
    with pytest.raises(SpkpeftError, match="1-D"):
        cm_eer_interpolated([[1.0]], [0.0])


# ---------------------------------------------------------------- ASV rates and t-DCF


@pytest.mark.parametrize("kind, seed", CASES)
def test_asv_rates_and_tdcf_match_brute_force(kind, seed) -> None:
    rng = np.random.default_rng(100 + seed)
    tar, non = draw(rng, kind, int(rng.integers(2, 30)), int(rng.integers(2, 30)))
    spoof_asv = draw(rng, kind, int(rng.integers(2, 30)), 1)[0] - 0.5
    rates = asv_error_rates(tar, non, spoof_asv)
    assert tuple(rates[:4]) == brute_asv_rates(tar, non, spoof_asv)
    assert rates.threshold == cm_eer(tar, non)[1]
    assert rates.pfa_spoof_asv == pytest.approx(1 - rates.pmiss_spoof_asv)
    bona, spoof = draw(rng, kind, int(rng.integers(1, 40)), int(rng.integers(1, 40)))
    c = TDCF_2019_COSTS
    c1 = c.p_tar * (c.c_miss_cm - c.c_miss_asv * rates.pmiss_asv) - c.p_non * c.c_fa_asv * rates.pfa_asv
    c2 = c.c_fa_cm * c.p_spoof * (1 - rates.pmiss_spoof_asv)
    if min(c1, c2) > 0:
        assert min_tdcf_2019(bona, spoof, rates) == pytest.approx(brute_tdcf_2019(bona, spoof, *rates[:3]),
                                                                  rel=1e-12, abs=1e-15)
    else:  # the official code exits (negative weight) or divides by zero
        with pytest.raises(SpkpeftError, match="non-negative|undefined"):
            min_tdcf_2019(bona, spoof, rates)
    got = min_tdcf_2021(bona, spoof, rates)
    assert got == pytest.approx(brute_tdcf_2021(bona, spoof, rates.pfa_asv, rates.pmiss_asv, rates.pfa_spoof_asv),
                                rel=1e-12, abs=1e-15)
    # the minimum over the official (position-wise) curve is the same, ties included
    assert got == pytest.approx(official_positions_tdcf_2021(bona, spoof, rates.pfa_asv, rates.pmiss_asv,
                                                             rates.pfa_spoof_asv), rel=1e-12, abs=1e-15)
    assert 0.0 <= got <= 1.0 + 1e-12


def test_tdcf_known_cases() -> None:
    assert TDCF_2019_COSTS.p_tar == (1 - 0.05) * 0.99 and TDCF_2019_COSTS.c_fa_asv == 10
    assert TDCF_2021_COSTS.c_fa_spoof == 10 and TDCF_2021_COSTS.p_non == (1 - 0.05) * 0.01
    ideal = AsvErrorRates(pfa_asv=0.0, pmiss_asv=0.0, pmiss_spoof_asv=0.0, pfa_spoof_asv=1.0, threshold=0.0)
    # C1 = P_tar = 0.9405, C2 = 10 * 0.05 = 0.5 (2019); C0 = 0, same C1, C2 (2021)
    assert min_tdcf_2019([1.0], [0.0], ideal) == 0.0
    assert min_tdcf_2019([0.0, 2.0], [1.0], ideal) == pytest.approx(0.9405 * 0.5 / 0.5)  # t = 2: P_miss .5
    assert min_tdcf_2021([0.0, 2.0], [1.0], ideal) == pytest.approx((0 + 0.9405 * 0.5) / (0 + 0.5))
    # a useless CM: all tied -> min of accept all (1) and reject all (C1 / min(C1, C2) >= 1)
    assert min_tdcf_2019([0.0, 0.0], [0.0], ideal) == 1.0
    assert min_tdcf_2021([0.0, 0.0], [0.0], ideal) == 1.0


def test_tdcf_known_case_2019_by_hand() -> None:
    # bona [0, 2], spoof [1], ideal ASV: points (P_miss, P_fa) = (0,1) (.5,1) (.5,0) (1,0)
    ideal = AsvErrorRates(0.0, 0.0, 0.0, 1.0, 0.0)
    c1, c2 = 0.95 * 0.99, 0.5
    assert min_tdcf_2019([0.0, 2.0], [1.0], ideal) == pytest.approx(min(c2, c1 * 0.5 + c2, c1 * 0.5, c1) / c2)
    assert min_tdcf_2019([0.0, 2.0], [1.0], ideal) == pytest.approx(0.9405)


def test_tdcf_errors() -> None:
    bad_asv = AsvErrorRates(pfa_asv=1.0, pmiss_asv=1.0, pmiss_spoof_asv=0.0, pfa_spoof_asv=1.0, threshold=0.0)
    with pytest.raises(SpkpeftError, match="non-negative"):
        min_tdcf_2019([1.0], [0.0], bad_asv)
    with pytest.raises(SpkpeftError, match="undefined"):
        min_tdcf_2019([1.0], [0.0], AsvErrorRates(0.0, 0.0, 1.0, 0.0, 0.0))  # C2 = 0
    with pytest.raises(SpkpeftError, match="sum to 1"):
        min_tdcf_2019([1.0], [0.0], AsvErrorRates(0.0, 0.0, 0.0, 1.0, 0.0),
                      Tdcf2019Costs(0.5, 0.5, 0.5, 1, 10, 1, 10))
    with pytest.raises(SpkpeftError, match="pfa_spoof_asv"):
        min_tdcf_2021([1.0], [0.0], AsvErrorRates(0.0, 0.0, 0.0, None, 0.0))
    with pytest.raises(SpkpeftError, match="ASV spoof"):
        asv_error_rates([1.0], [0.0], [])


# ---------------------------------------------------------------- per attack


def test_per_attack_eer() -> None:
    scores = [2.0, 1.0, 1.5, -1.0, 0.5, 3.0]
    keys = ["bonafide", "bonafide", "spoof", "spoof", "spoof", "spoof"]
    attacks = ["-", "-", "A02", "A01", "A01", "A02"]
    got = per_attack_eer(scores, keys, attacks)
    assert list(got) == ["A01", "A02"]
    assert got["A01"] == cm_eer([2.0, 1.0], [-1.0, 0.5])[0] == 0.0
    assert got["A02"] == cm_eer([2.0, 1.0], [1.5, 3.0])[0]
    interp = per_attack_eer(scores, keys, attacks, interpolated=True)
    assert interp["A02"] == cm_eer_interpolated([2.0, 1.0], [1.5, 3.0])
    with pytest.raises(SpkpeftError, match="'bonafide' or 'spoof'"):
        per_attack_eer([1.0, 0.0], ["bonafide", "fake"], ["-", "A01"])
    with pytest.raises(SpkpeftError, match="equal lengths"):
        per_attack_eer([1.0], ["bonafide", "spoof"], ["-", "A01"])


@pytest.mark.parametrize("kind, seed", CASES)
def test_per_condition_eer_matches_brute_force(kind, seed) -> None:
    """Each condition: its bona fide against its spoofs (all attacks), as the 2021 eval-package."""
    rng = np.random.default_rng(200 + seed)
    n = int(rng.integers(4, 80))
    bona, spoof = draw(rng, kind, n, n)
    keys = rng.choice(["bonafide", "spoof"], n).tolist()
    scores = np.where(np.array(keys) == "bonafide", bona, spoof)
    conditions = rng.choice(["LA-C1", "LA-C2", "LA-C3", "LA-C7"], n).tolist()
    attacks = [("-" if k == "bonafide" else str(rng.choice(["A07", "A08"]))) for k in keys]
    expected = {}
    for c in sorted(set(conditions)):
        b = [x for x, k, cc in zip(scores, keys, conditions) if cc == c and k == "bonafide"]
        sp = [x for x, k, cc in zip(scores, keys, conditions) if cc == c and k == "spoof"]
        if b and sp:  # a condition without one of the classes has no EER
            expected[c] = brute_official_eer(b, sp)[0]
    got = per_condition_eer(scores, keys, conditions)
    assert got == expected and list(got) == sorted(expected)
    interp = per_condition_eer(scores, keys, conditions, interpolated=True)
    assert interp == pytest.approx({c: cm_eer_interpolated(
        [x for x, k, cc in zip(scores, keys, conditions) if cc == c and k == "bonafide"],
        [x for x, k, cc in zip(scores, keys, conditions) if cc == c and k == "spoof"]) for c in expected}, abs=1e-12)
    if "bonafide" in keys and "spoof" in keys:
        result = compute_cm_metrics(scores, keys, attacks, conditions=conditions)
        assert result["per_condition"] == {c: 100.0 * e for c, e in expected.items()}
        assert "per_condition" not in compute_cm_metrics(scores, keys, attacks)


def test_per_condition_eer_known_case_and_errors() -> None:
    scores = [2.0, 0.0, 1.0, 3.0, -1.0, 5.0]
    keys = ["bonafide", "bonafide", "spoof", "spoof", "spoof", "bonafide"]
    conditions = ["C1", "C2", "C1", "C2", "C2", "C3"]
    # C1: bona [2] vs spoof [1] -> 0; C2: bona [0] vs spoof [3, -1] -> official 0.5; C3 has no spoof
    assert per_condition_eer(scores, keys, conditions) == {"C1": 0.0, "C2": cm_eer([0.0], [3.0, -1.0])[0]}
    with pytest.raises(SpkpeftError, match="conditions of equal lengths"):
        per_condition_eer(scores, keys, conditions[:-1])
    with pytest.raises(SpkpeftError, match="'bonafide' or 'spoof'"):
        per_condition_eer([1.0], ["fake"], ["C1"])


# ---------------------------------------------------------------- readers

PROTOCOL = ("LA_0079 LA_T_1 - - bonafide\n"
            "LA_0079 LA_T_2 - A01 spoof\n"
            "LA_0080 LA_T_3 - - bonafide\n"
            "LA_0080 LA_T_4 - A02 spoof\n"
            "LA_0080 LA_T_5 - A01 spoof\n")
SCORES = "LA_T_5 -1.0\nLA_T_1 2.0\nLA_T_2 0.5\nLA_T_3 1.0\nLA_T_4 1.5\n"
ASV = ("bonafide target 3.0\nbonafide target 2.0\nbonafide nontarget -1.0\nbonafide nontarget 0.5\n"
       "A01 spoof 2.5\nA02 spoof -2.0\n")


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_readers(tmp_path) -> None:
    protocol = read_cm_protocol(write(tmp_path / "p", PROTOCOL))
    assert protocol.utts == [f"LA_T_{i}" for i in range(1, 6)]
    assert protocol.keys == ["bonafide", "spoof", "bonafide", "spoof", "spoof"]
    assert protocol.attacks == ["-", "A01", "-", "A02", "A01"]
    assert protocol.speakers[:3] == ["LA_0079", "LA_0079", "LA_0080"]
    scores = read_cm_scores(write(tmp_path / "s", SCORES))
    assert list(scores) == ["LA_T_5", "LA_T_1", "LA_T_2", "LA_T_3", "LA_T_4"]
    assert align_cm_scores(protocol, scores, "p", "s").tolist() == [2.0, 0.5, 1.0, 1.5, -1.0]
    asv = read_asv_scores(write(tmp_path / "a", ASV))
    assert asv.target.tolist() == [3.0, 2.0] and asv.nontarget.tolist() == [-1.0, 0.5]
    assert asv.spoof.tolist() == [2.5, -2.0]


@pytest.mark.parametrize("text, line, match", [
    ("LA_0079 LA_T_1 - - bonafide\nLA_0079 LA_T_2 - A01\n", 2, "expected 5 fields"),
    ("LA_0079 LA_T_1 - - bonafide\n\n", 2, "found 0"),
    ("LA_0079 LA_T_1 - - genuine\n", 1, "'bonafide' or 'spoof'"),
    ("LA_0079 LA_T_1 - A01 bonafide\n", 1, "attack '-'"),
    ("LA_0079 LA_T_1 - - spoof\n", 1, "needs an attack id"),
    ("LA_0079 LA_T_1 - - bonafide\nLA_0079 LA_T_1 - A01 spoof\n", 2, "duplicate utterance 'LA_T_1' \\(first on line 1\\)"),
])
def test_protocol_errors(tmp_path, text, line, match) -> None:
    path = write(tmp_path / "p", text)
    with pytest.raises(SpkpeftError, match=f"^{path}:{line}: .*{match}"):
        read_cm_protocol(path)


@pytest.mark.parametrize("text, line, match", [
    ("a 1.0\nb\n", 2, "expected 2 fields"),
    ("a 1.0\nb 1 2\n", 2, "found 3"),
    ("a x\n", 1, "not a number"),
    ("a 1.0\nb nan\n", 2, "not finite"),
    ("a 1.0\na 2.0\n", 2, "duplicate utterance 'a'"),
])
def test_cm_score_errors(tmp_path, text, line, match) -> None:
    path = write(tmp_path / "s", text)
    with pytest.raises(SpkpeftError, match=f"^{path}:{line}: .*{match}"):
        read_cm_scores(path)


@pytest.mark.parametrize("text, line, match", [
    ("A01 spoof 1.0\nA01 spoof\n", 2, "expected 3 fields"),
    ("bonafide genuine 1.0\n", 1, "'target', 'nontarget' or 'spoof'"),
    ("bonafide target inf\n", 1, "not finite"),
    ("bonafide target 1\nbonafide target abc\n", 2, "not a number"),
])
def test_asv_score_errors(tmp_path, text, line, match) -> None:
    path = write(tmp_path / "a", text)
    with pytest.raises(SpkpeftError, match=f"^{path}:{line}: .*{match}"):
        read_asv_scores(path)


CONDITIONS = "LA_T_1 LA-C1\nLA_T_2 LA-C1\nLA_T_3 LA-C2\nLA_T_4 LA-C2\nLA_T_5 LA-C2\n"


def test_conditions_reader_and_alignment(tmp_path) -> None:
    protocol = read_cm_protocol(write(tmp_path / "p", PROTOCOL))
    conditions = read_conditions(write(tmp_path / "c", "LA_T_5 LA-C2\n" + CONDITIONS.replace("LA_T_5 LA-C2\n", "")))
    assert align_conditions(protocol, conditions, "p", "c") == ["LA-C1", "LA-C1", "LA-C2", "LA-C2", "LA-C2"]
    with pytest.raises(SpkpeftError, match="^p:5: utterance 'LA_T_5' has no condition in c$"):
        align_conditions(protocol, {u: c for u, c in conditions.items() if u != "LA_T_5"}, "p", "c")
    with pytest.raises(SpkpeftError, match="^c:6: utterance 'LA_T_9' is not in the protocol p$"):
        align_conditions(protocol, {**conditions, "LA_T_9": "LA-C1"}, "p", "c")


@pytest.mark.parametrize("text, line, match", [
    ("a C1\nb\n", 2, "expected 2 fields 'UTT CONDITION', found 1"),
    ("a C1\nb C1 x\n", 2, "found 3"),
    ("a C1\na C2\n", 2, "duplicate utterance 'a'"),
])
def test_condition_file_errors(tmp_path, text, line, match) -> None:
    path = write(tmp_path / "c", text)
    with pytest.raises(SpkpeftError, match=f"^{path}:{line}: .*{match}"):
        read_conditions(path)


def test_whole_file_errors(tmp_path) -> None:
    with pytest.raises(SpkpeftError, match="no 'spoof' trials"):
        read_asv_scores(write(tmp_path / "a", "bonafide target 1\nbonafide nontarget 0\n"))
    with pytest.raises(SpkpeftError, match="empty"):
        read_cm_scores(write(tmp_path / "s", ""))
    with pytest.raises(SpkpeftError, match="cannot read"):
        read_cm_protocol(tmp_path / "missing")


# ---------------------------------------------------------------- CLI


def run_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "spkpeft.bin.compute_cm_metrics", *map(str, args)],
                          cwd=REPO, capture_output=True, text=True, timeout=60)


@pytest.fixture
def files(tmp_path):
    return write(tmp_path / "scores", SCORES), write(tmp_path / "protocol", PROTOCOL), write(tmp_path / "asv", ASV)


def test_cli_json(files) -> None:
    scores, protocol, asv = files
    proc = run_cli("--scores", scores, "--protocol", protocol, "--asv-scores", asv, "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert set(result) == {"n_bonafide", "n_spoof", "eer_pct", "min_tdcf", "min_tdcf_2021", "per_attack"}
    bona, spoof = [2.0, 1.0], [0.5, 1.5, -1.0]
    assert (result["n_bonafide"], result["n_spoof"]) == (2, 3)
    assert result["eer_pct"] == 100 * cm_eer(bona, spoof)[0]
    rates = asv_error_rates([3.0, 2.0], [-1.0, 0.5], [2.5, -2.0])
    assert result["min_tdcf"] == min_tdcf_2019(bona, spoof, rates)
    assert result["min_tdcf_2021"] == min_tdcf_2021(bona, spoof, rates)
    assert result["per_attack"] == {"A01": 0.0, "A02": 100 * cm_eer(bona, [1.5])[0]}


def test_cli_text_without_asv(files) -> None:
    scores, protocol, _ = files
    proc = run_cli("--scores", scores, "--protocol", protocol, "--json")
    assert proc.returncode == 0, proc.stderr
    assert "min_tdcf" not in json.loads(proc.stdout)
    proc = run_cli("--scores", scores, "--protocol", protocol)
    assert proc.returncode == 0 and "EER:" in proc.stdout and "EER A02:" in proc.stdout


def test_cli_mismatch_errors(files, tmp_path) -> None:
    scores, protocol, _ = files
    extra = write(tmp_path / "extra", SCORES + "LA_T_9 0.0\n")
    proc = run_cli("--scores", extra, "--protocol", protocol)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"compute_cm_metrics: error: {extra}:6: utterance 'LA_T_9' is not in the protocol {protocol}"
    missing = write(tmp_path / "missing", "".join(SCORES.splitlines(keepends=True)[1:]))  # drops LA_T_5
    proc = run_cli("--scores", missing, "--protocol", protocol)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"compute_cm_metrics: error: {protocol}:5: utterance 'LA_T_5' has no score in {missing}"
    bad = write(tmp_path / "bad", "a 1\nb\n")
    proc = run_cli("--scores", bad, "--protocol", protocol)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and f"{bad}:2:" in proc.stderr


def test_cli_conditions(files, tmp_path) -> None:
    scores, protocol, _ = files
    conditions = write(tmp_path / "utt2condition", CONDITIONS)
    proc = run_cli("--scores", scores, "--protocol", protocol, "--conditions", conditions, "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    # LA-C1: bona [2.0] vs spoof [0.5]; LA-C2: bona [1.0] vs spoof [1.5, -1.0]
    assert result["per_condition"] == {"LA-C1": 100 * cm_eer([2.0], [0.5])[0],
                                       "LA-C2": 100 * cm_eer([1.0], [1.5, -1.0])[0]}
    assert set(result) == {"n_bonafide", "n_spoof", "eer_pct", "per_attack", "per_condition"}
    proc = run_cli("--scores", scores, "--protocol", protocol, "--conditions", conditions)
    assert proc.returncode == 0, proc.stderr
    assert f"EER condition LA-C2: {result['per_condition']['LA-C2']:.4f} %" in proc.stdout.splitlines()
    short = write(tmp_path / "short", CONDITIONS.replace("LA_T_3 LA-C2\n", ""))
    proc = run_cli("--scores", scores, "--protocol", protocol, "--conditions", short)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (f"compute_cm_metrics: error: {protocol}:3: utterance 'LA_T_3' "
                                   f"has no condition in {short}")
    bad = write(tmp_path / "bad", "LA_T_1 LA-C1\nLA_T_2\n")
    proc = run_cli("--scores", scores, "--protocol", protocol, "--conditions", bad)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and f"{bad}:2:" in proc.stderr


def test_cli_protocol_without_spoof(tmp_path) -> None:
    protocol = write(tmp_path / "protocol", "LA_0079 LA_T_1 - - bonafide\n")
    scores = write(tmp_path / "scores", "LA_T_1 1.0\n")
    proc = run_cli("--scores", scores, "--protocol", protocol)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"compute_cm_metrics: error: {protocol}: no 'spoof' utterances " \
                                  "(the EER needs both bonafide and spoof)"
