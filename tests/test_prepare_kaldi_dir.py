"""Bring your own corpus: importing Kaldi data directories and a trials file (Kaldi or VoxCeleb format)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from conftest import REPO, python_module, run, run_sh, write_tone
from spkpeft.io.datadir import read_data_dir

TEST_U2S = {"spkB-u2": "spkB", "spkA-u1": "spkA", "spkB-u1": "spkB", "spkA-u2": "spkA"}  # unsorted on purpose
TRAIN_U2S = {"trC-1": "spkC", "trD-1": "spkD", "trC-2": "spkC"}
KALDI_TRIALS = "spkA-u1 spkB-u1 nontarget\nspkA-u1 spkA-u2 target\nspkB-u1 spkB-u2 target\n"
VOX_TRIALS = "0 spkA-u1.wav spkB-u1.wav\n1 spkA-u1.wav spkA-u2.wav\n1 spkB-u1 spkB-u2\n"
EXPECTED = ["spkA-u1 spkA-u2 target", "spkA-u1 spkB-u1 nontarget", "spkB-u1 spkB-u2 target"]


def make_kaldi_dir(path: Path, u2s: dict[str, str], audio: Path, relative_to: Path | None = None) -> Path:
    """An unsorted Kaldi data directory (paths with spaces; relative when ``relative_to`` is given)."""
    path.mkdir(parents=True)
    wav_lines = []
    for utt in u2s:
        wav = write_tone(audio / f"{utt} x.wav", seconds=0.05)
        wav_lines.append(f"{utt} {wav.relative_to(relative_to) if relative_to else wav}\n")
    (path / "wav.scp").write_text("".join(wav_lines))
    (path / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in u2s.items()))
    (path / "spk2utt").write_text("stale spk2utt contents\n")  # ignored: derived again
    return path


def prepare(*args, cwd: Path = REPO):
    return run([sys.executable, str(REPO / "local" / "prepare_kaldi_dir.py"), *map(str, args)], cwd=cwd)


def assert_fails(res, *fragments):
    assert res.returncode == 1, res.stdout + res.stderr
    err = res.stderr.strip()
    assert len(err.splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err, err


@pytest.mark.parametrize("trials_text", [KALDI_TRIALS, VOX_TRIALS], ids=["kaldi", "voxceleb"])
def test_import_sorts_derives_and_converts(tmp_path, trials_text):
    src = make_kaldi_dir(tmp_path / "my data", TEST_U2S, tmp_path / "audio")
    train = make_kaldi_dir(tmp_path / "train", TRAIN_U2S, tmp_path / "audio")
    (tmp_path / "my_trials.txt").write_text(trials_text)
    out = tmp_path / "data" / "kaldi"
    res = prepare(src, tmp_path / "my_trials.txt", out, "--train-dir", train)
    assert res.returncode == 0, res.stderr

    test = read_data_dir(out / "test")  # checks LC_ALL=C order and spk2utt
    assert list(test.wav) == sorted(TEST_U2S) and dict(test.utt2spk) == dict(sorted(TEST_U2S.items()))
    assert test.wav["spkA-u1"] == str(tmp_path / "audio" / "spkA-u1 x.wav")
    assert dict(test.spk2utt) == {"spkA": ["spkA-u1", "spkA-u2"], "spkB": ["spkB-u1", "spkB-u2"]}
    assert sorted(read_data_dir(out / "train").spk2utt) == ["spkC", "spkD"]
    assert (out / "trials" / "my_trials").read_text().splitlines() == EXPECTED
    res = python_module("spkpeft.bin.validate_data_dir", out)
    assert res.returncode == 0, res.stderr


def test_shell_wrapper_relative_paths_name_and_enroll(tmp_path):
    audio = tmp_path / "audio"
    make_kaldi_dir(tmp_path / "src", TEST_U2S, audio)
    make_kaldi_dir(tmp_path / "enr", {"e-1": "enrA", "e-2": "enrA"}, audio)
    (tmp_path / "t").write_text("enrA spkA-u1 target\nenrA spkB-u1 nontarget\ne-1 spkB-u2 nontarget\n")
    res = run(["bash", str(REPO / "local" / "prepare_kaldi_dir.sh"), "--name", "mine", "--enroll-dir", "enr",
               "src", "t", "out"], cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    out = tmp_path / "out"
    assert dict(read_data_dir(out / "enroll").spk2utt) == {"enrA": ["e-1", "e-2"]}
    assert (out / "trials" / "mine").read_text().splitlines() == [
        "e-1 spkB-u2 nontarget", "enrA spkA-u1 target", "enrA spkB-u1 nontarget"]
    assert python_module("spkpeft.bin.validate_data_dir", out).returncode == 0


def test_relative_audio_paths_are_taken_from_the_current_directory(tmp_path):
    src = make_kaldi_dir(tmp_path / "src", TEST_U2S, tmp_path / "audio", relative_to=tmp_path)
    assert (src / "wav.scp").read_text().startswith("spkB-u2 audio/spkB-u2 x.wav")
    (tmp_path / "t").write_text(KALDI_TRIALS)
    res = prepare("src", "t", "out", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert read_data_dir(tmp_path / "out" / "test").wav["spkA-u2"] == str(tmp_path / "audio" / "spkA-u2 x.wav")


def damage(src: Path, name: str, fn) -> None:
    lines = (src / name).read_text().splitlines()
    (src / name).write_text("".join(line + "\n" for line in fn(lines)))


@pytest.mark.parametrize("name, fn, fragments", [
    ("wav.scp", lambda ls: [*ls, ls[1]], ("wav.scp:5", "duplicate id 'spkA-u1' (first on line 2)")),
    ("wav.scp", lambda ls: [ls[0], "spkA-u1 sox in.flac -t wav - |", *ls[2:]], ("wav.scp:2", "pipe")),
    ("wav.scp", lambda ls: [*ls[:2], "spkB-u1 /no/such.wav", ls[3]], ("wav.scp:3", "'/no/such.wav' does not exist")),
    ("wav.scp", lambda ls: [*ls[:3], "spkA-u2"], ("wav.scp:4", "expected '<utt> <path>'")),
    ("utt2spk", lambda ls: ls[:2] + ls[3:], ("wav.scp:3", "'spkB-u1' is missing from utt2spk")),
    ("utt2spk", lambda ls: [*ls, "ghost spkA"], ("utt2spk:5", "'ghost' is missing from wav.scp")),
    ("utt2spk", lambda ls: [ls[0] + " extra", *ls[1:]], ("utt2spk:1", "expected '<utt> <spk>'")),
])
def test_bad_data_dir_names_file_and_line(tmp_path, name, fn, fragments):
    src = make_kaldi_dir(tmp_path / "src", TEST_U2S, tmp_path / "audio")
    damage(src, name, fn)
    (tmp_path / "t").write_text(KALDI_TRIALS)
    out = tmp_path / "out"
    assert_fails(prepare(src, tmp_path / "t", out), *fragments)
    assert not out.exists()


def test_segments_and_shared_utterances_are_refused(tmp_path):
    src = make_kaldi_dir(tmp_path / "src", TEST_U2S, tmp_path / "audio")
    (tmp_path / "t").write_text(KALDI_TRIALS)
    (src / "segments").write_text("seg rec 0 1\n")
    assert_fails(prepare(src, tmp_path / "t", tmp_path / "out"), "segments", "not supported")
    (src / "segments").unlink()
    train = make_kaldi_dir(tmp_path / "train", {"spkA-u1": "spkA"}, tmp_path / "a2")
    assert_fails(prepare(src, tmp_path / "t", tmp_path / "out", "--train-dir", train),
                 "'spkA-u1' is also in", "unique across directories")


@pytest.mark.parametrize("text, fragments", [
    ("spkA-u1 spkA-u2 target\nspkA-u1 spkB-u9 nontarget\n", ("t:2", "'spkB-u9' is not an utterance")),
    ("spkA-u1 spkA-u2 target\nspkA-u1 spkB-u1 maybe\n", ("t:2", "expected 'utt1 utt2 target|nontarget'")),
    ("spkA-u1 spkA-u2 target\n0 spkA-u1 spkB-u1\n", ("t:2", "expected 'utt1 utt2 target|nontarget'")),
    ("1 spkA-u1 spkA-u2\n1 spkB-u1 spkB-u2\n", ("t:", "needs both target and nontarget")),
    ("1 spkA-u1 spkA-u2\n0 spkA-u1 spkB-u1\n0 spkA-u1 spkA-u2\n", ("t:3", "listed with both labels")),
    ("spkA-u1 spkA-u2\n", ("t:1", "expected 'utt1 utt2 target|nontarget' or '1|0 utt1 utt2'")),
])
def test_bad_trials_name_file_and_line(tmp_path, text, fragments):
    src = make_kaldi_dir(tmp_path / "src", TEST_U2S, tmp_path / "audio")
    (tmp_path / "t").write_text(text)
    assert_fails(prepare(src, tmp_path / "t", tmp_path / "out"), *fragments)


def test_run_sh_kaldi_corpus_stages_1_2(recipe, tmp_path):
    make_kaldi_dir(tmp_path / "src", TEST_U2S, tmp_path / "audio")
    make_kaldi_dir(tmp_path / "tr", TRAIN_U2S, tmp_path / "audio")
    (tmp_path / "vox.txt").write_text(VOX_TRIALS)
    res = run(["bash", str(recipe / "run.sh"), "--corpus", "kaldi", "--data-root", "src", "--kaldi-trials", "vox.txt",
               "--kaldi-train", "tr", "--stop-stage", "2", "--exp", "exp"], cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    data = recipe / "data" / "kaldi"
    assert (data / "trials" / "vox").read_text().splitlines() == EXPECTED
    assert sorted(read_data_dir(data / "train").spk2utt) == ["spkC", "spkD"]
    assert "vox: 3 trials: OK" in res.stderr
    missing = run_sh(recipe, "--corpus", "kaldi", "--data-root", str(tmp_path / "src"))
    assert missing.returncode == 1 and "--kaldi-trials" in missing.stderr and "Usage:" in missing.stderr
