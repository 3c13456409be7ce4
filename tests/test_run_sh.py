"""The recipe driver: option parsing, stage 1-2 on a small mini corpus, skipping, logs."""

from __future__ import annotations


import pytest

from conftest import run, run_sh
from spkpeft.io.datadir import read_data_dir

SMALL = "--n-train-spk 3 --n-test-spk 3 --n-sessions 2 --n-utts 2 --min-dur 1 --max-dur 1.5"


@pytest.mark.parametrize("args", [
    ["--no-such-option"], ["--stage"], ["--stage", "--stop-stage", "2"], ["--stage=3"], ["extra"],
    ["--corpus", "timit"], ["--corpus", "voxceleb1"], ["--stage", "x"],
])
def test_usage_errors_exit_1(recipe, args):
    res = run_sh(recipe, *args)
    assert res.returncode == 1, res.stderr
    assert "Usage:" in res.stderr


def test_help(recipe):
    res = run_sh(recipe, "--help")
    assert res.returncode == 0 and "--stop-stage" in res.stdout


def test_stage_1_2_prepare_validate_and_skip(recipe):
    exp = recipe / "exp" / "t"
    res = run_sh(recipe, "--stop-stage", "2", "--mini-opts", SMALL, "--exp", str(exp))
    assert res.returncode == 0, res.stderr
    data = recipe / "data" / "mini"
    train, test = read_data_dir(data / "train"), read_data_dir(data / "test")
    assert len(train.spk2utt) == 3 and len(test.spk2utt) == 3
    assert not set(train.spk2utt) & set(test.spk2utt)
    assert (data / "trials" / "vox1_o").is_file()
    assert "Stage 1" in res.stderr and "Stage 2" in res.stderr
    assert (exp / "log" / "stage1_prepare.log").is_file() and (exp / "log" / "stage2_validate.log").is_file()
    assert "--mini-opts" in (exp / "run.cmd").read_text()

    again = run_sh(recipe, "--stop-stage", "2", "--mini-opts", SMALL, "--exp", str(exp))
    assert again.returncode == 0, again.stderr
    assert "up to date" in again.stderr

    bigger = SMALL.replace("--n-test-spk 3", "--n-test-spk 4")
    redo = run_sh(recipe, "--stop-stage", "1", "--mini-opts", bigger, "--exp", str(exp))
    assert redo.returncode == 0, redo.stderr
    assert "regenerating" in redo.stderr
    assert len(read_data_dir(data / "test").spk2utt) == 4


def test_stage_2_names_missing_input(recipe, tmp_path):
    res = run_sh(recipe, "--stage", "2", "--stop-stage", "2", "--corpus", "voxceleb1",
                 "--data-root", str(tmp_path), "--exp", str(tmp_path / "exp"))
    assert res.returncode == 1
    assert "data/voxceleb1/test/wav.scp" in res.stderr


def test_refuses_to_overwrite_foreign_data_root(recipe, tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("keep me")
    res = run_sh(recipe, "--stop-stage", "1", "--data-root", str(foreign), "--exp", str(tmp_path / "exp"))
    assert res.returncode != 0
    assert (foreign / "precious.txt").read_text() == "keep me"


def test_paths_are_relative_to_the_callers_directory(recipe, tmp_path):
    res = run(["bash", str(recipe / "run.sh"), "--stage", "6", "--exp", "myexp"], cwd=tmp_path)
    assert res.returncode == 1
    assert f"{tmp_path}/myexp/results.json" in res.stderr
    assert (tmp_path / "myexp" / "run.cmd").is_file()
