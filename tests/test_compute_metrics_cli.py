"""Trials / score file reading and the ``compute_metrics`` command-line tool."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from spkpeft.errors import SpkpeftError
from spkpeft.eval.metrics import compute_metrics
from spkpeft.io.trials import align_scores, load_scored_trials, read_scores, read_trials, write_scores

REPO = Path(__file__).resolve().parents[1]

TRIALS = "a b target\na c nontarget\nb c target\nd e nontarget\n"
SCORES = "d e 0.1\na c 0.4\nb c 0.4\na b 0.8\n"  # any order; EER 25 %, see test_metrics


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "spkpeft.bin.compute_metrics", *args],
                          cwd=REPO, capture_output=True, text=True, timeout=60)


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    return write(tmp_path / "trials", TRIALS), write(tmp_path / "scores", SCORES)


# ---------------------------------------------------------------- reading


def test_read_and_align(files) -> None:
    trials_path, scores_path = files
    utt1, utt2, labels = read_trials(trials_path)
    assert (utt1, utt2) == (["a", "a", "b", "d"], ["b", "c", "c", "e"])
    assert labels.dtype == np.bool_ and labels.tolist() == [True, False, True, False]
    scores = read_scores(scores_path)
    assert list(scores) == [("d", "e"), ("a", "c"), ("b", "c"), ("a", "b")]
    aligned = align_scores((utt1, utt2, labels), scores, trials_path, scores_path)
    assert aligned.tolist() == [0.8, 0.4, 0.4, 0.1]
    s, y = load_scored_trials(trials_path, scores_path)
    assert compute_metrics(s, y)["eer_pct"] == 25.0


@pytest.mark.parametrize("text, line, match", [
    ("a b target\na c\n", 2, "expected 3 fields"),
    ("a b target\n\na c target\n", 2, "found 0"),
    ("a b target\na c target extra\n", 2, "found 4"),
    ("a b target\na c 1\n", 2, "'target' or 'nontarget'"),
    ("a b target\na c Target\n", 2, "'target' or 'nontarget'"),
    ("a b target\nb a target\na b nontarget\n", 3, "duplicate pair 'a b' \\(first on line 1\\)"),
])
def test_read_trials_errors(tmp_path: Path, text: str, line: int, match: str) -> None:
    path = write(tmp_path / "trials", text)
    with pytest.raises(SpkpeftError, match=match) as err:
        read_trials(path)
    assert str(err.value).startswith(f"{path}:{line}: ")


@pytest.mark.parametrize("text", ["", "\n\n"])
def test_read_trials_empty(tmp_path: Path, text: str) -> None:
    path = write(tmp_path / "trials", text)
    with pytest.raises(SpkpeftError, match="empty|found 0"):
        read_trials(path)


def test_read_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpkpeftError, match="cannot read trials file"):
        read_trials(tmp_path / "nope")


@pytest.mark.parametrize("text, line, match", [
    ("a b 0.5\na c 0.x\n", 2, "not a number"),
    ("a b 0.5\na c nan\n", 2, "not finite"),
    ("a b 0.5\na c -inf\n", 2, "not finite"),
    ("a b 0.5\na c\n", 2, "expected 3 fields"),
    ("a b 0.5\na b 0.5\n", 2, "duplicate pair"),
])
def test_read_scores_errors(tmp_path: Path, text: str, line: int, match: str) -> None:
    path = write(tmp_path / "scores", text)
    with pytest.raises(SpkpeftError, match=match) as err:
        read_scores(path)
    assert str(err.value).startswith(f"{path}:{line}: ")


def test_read_scores_crlf_and_exponent(tmp_path: Path) -> None:
    path = write(tmp_path / "scores", "a b 1e-3\r\nc d -2.5E+1\r\n")
    assert read_scores(path) == {("a", "b"): 0.001, ("c", "d"): -25.0}


def test_align_errors(files, tmp_path: Path) -> None:
    trials_path, _ = files
    trials = read_trials(trials_path)
    extra = write(tmp_path / "extra", SCORES + "x y 0.3\n")
    with pytest.raises(SpkpeftError, match="pair 'x y' is not in the trials") as err:
        align_scores(trials, read_scores(extra), trials_path, extra)
    assert str(err.value).startswith(f"{extra}:5: ")
    missing = write(tmp_path / "missing", "a b 0.8\nd e 0.1\n")
    with pytest.raises(SpkpeftError, match="trial 'a c' has no score") as err:
        align_scores(trials, read_scores(missing), trials_path, missing)
    assert str(err.value).startswith(f"{trials_path}:2: ")


def test_write_scores_sorted_and_lossless(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    utt1 = ["b", "a_x", "a", "B", "a", "é"]
    utt2 = ["1", "2", "3", "4", "2", "5"]
    scores = rng.standard_normal(6)
    scores[1] = scores[2] + 1e-15  # distinct at the 16th digit
    path = tmp_path / "out" / "scores"
    write_scores(path, utt1, utt2, scores)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [line.split()[:2] for line in lines] == sorted([u, v] for u, v in zip(utt1, utt2))
    assert [line.split()[0] for line in lines] == ["B", "a", "a", "a_x", "b", "é"]  # C-locale order
    back = read_scores(path)
    assert all(back[(u, v)] == s for u, v, s in zip(utt1, utt2, scores.tolist()))
    assert not list(path.parent.glob("*.tmp*"))


def test_write_scores_float32_keeps_ties_and_order(tmp_path: Path) -> None:
    point3 = np.float32(0.3)
    scores = np.array([0.1, 0.1, np.nextafter(point3, np.float32(1)), point3], dtype=np.float32)
    path = tmp_path / "scores"
    write_scores(path, ["a", "b", "c", "d"], ["x", "x", "x", "x"], scores)
    back = np.array([read_scores(path)[(u, "x")] for u in "abcd"])
    assert back[0] == back[1] and back[2] > back[3]
    assert back.astype(np.float32).tolist() == scores.tolist()


@pytest.mark.parametrize("utt1, utt2, scores, match", [
    (["a"], ["b", "c"], [0.1], "equal lengths"),
    (["a"], ["b"], [float("nan")], "non-finite"),
    (["a b"], ["c"], [0.1], "whitespace"),
    ([""], ["c"], [0.1], "empty"),
    (["a", "a"], ["c", "c"], [0.1, 0.2], "duplicate"),
])
def test_write_scores_errors(tmp_path: Path, utt1, utt2, scores, match: str) -> None:
    with pytest.raises(SpkpeftError, match=match):
        write_scores(tmp_path / "scores", utt1, utt2, scores)
    assert not (tmp_path / "scores").exists()


# ---------------------------------------------------------------- command line


def test_cli_json(files) -> None:
    trials_path, scores_path = files
    proc = run_cli("--trials", str(trials_path), "--scores", str(scores_path), "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert list(result) == ["eer_pct", "mindcf_p0.01", "mindcf_p0.05", "n_trials", "n_target"]
    assert result == {"eer_pct": 25.0, "mindcf_p0.01": 0.5, "mindcf_p0.05": 0.5, "n_trials": 4, "n_target": 2}


def test_cli_extra_p_target_and_text(files) -> None:
    trials_path, scores_path = files
    common = ["--trials", str(trials_path), "--scores", str(scores_path), "--p-target", "0.5", "0.01"]
    result = json.loads(run_cli(*common, "--json").stdout)
    assert set(result) == {"eer_pct", "mindcf_p0.01", "mindcf_p0.05", "mindcf_p0.5", "n_trials", "n_target"}
    proc = run_cli(*common, "--c-miss", "10")
    assert proc.returncode == 0, proc.stderr
    assert "EER: 25.0000 %" in proc.stdout
    assert "minDCF (p_target=0.5, c_miss=10, c_fa=1): 0.5000" in proc.stdout
    assert "4 (2 target, 2 nontarget)" in proc.stdout


def assert_one_line_error(proc: subprocess.CompletedProcess, where: str) -> None:
    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and f"{where}: " in lines[0], proc.stderr


def test_cli_unknown_pair(files, tmp_path: Path) -> None:
    trials_path, _ = files
    scores = write(tmp_path / "s2", SCORES.replace("b c 0.4", "b z 0.4") + "b c 0.4\n")
    proc = run_cli("--trials", str(trials_path), "--scores", str(scores), "--json")
    assert_one_line_error(proc, f"{scores}:3")
    assert "'b z'" in proc.stderr


def test_cli_missing_score(files, tmp_path: Path) -> None:
    trials_path, _ = files
    scores = write(tmp_path / "s2", "a b 0.8\nd e 0.1\na c 0.4\n")
    proc = run_cli("--trials", str(trials_path), "--scores", str(scores))
    assert_one_line_error(proc, f"{trials_path}:3")
    assert "'b c' has no score" in proc.stderr


def test_cli_nan_and_malformed(files, tmp_path: Path) -> None:
    trials_path, _ = files
    nan = write(tmp_path / "nan", "a b 0.8\nd e NaN\n")
    assert_one_line_error(run_cli("--trials", str(trials_path), "--scores", str(nan)), f"{nan}:2")
    bad = write(tmp_path / "bad", "a b 0.8\nd e\n")
    assert_one_line_error(run_cli("--trials", str(trials_path), "--scores", str(bad)), f"{bad}:2")
    bad_trials = write(tmp_path / "bad_trials", "a b target\na c maybe\n")
    assert_one_line_error(run_cli("--trials", str(bad_trials), "--scores", str(nan)), f"{bad_trials}:2")


def test_cli_usage_error() -> None:
    assert run_cli("--trials", "x").returncode == 2
