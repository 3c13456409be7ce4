"""The stage-2 validator: good directories pass, each kind of damage is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import python_module, write_tone
from spkpeft.io.datadir import write_data_dir


def make_corpus(root: Path, spaces: bool = False) -> Path:
    """data/<corpus> with train (2 spk) and test (2 spk) dirs and one trials list."""
    audio = root / ("audio dir" if spaces else "audio")
    corpus = root / "data"
    for part, spks in (("train", ["a", "b"]), ("test", ["c", "d"])):
        wav, u2s = {}, {}
        for spk in spks:
            for i in range(2):
                utt = f"{spk}-{i}"
                wav[utt] = str(write_tone(audio / f"{utt}.wav", seconds=0.05))
                u2s[utt] = spk
        write_data_dir(corpus / part, wav, u2s)
    (corpus / "trials").mkdir()
    (corpus / "trials" / "t").write_text("c-0 c-1 target\nc-0 d-0 nontarget\nd-0 d-1 target\n")
    return corpus


def validate(*paths, extra=()):
    return python_module("spkpeft.bin.validate_data_dir", *extra, *paths)


def assert_fails(res, *fragments):
    assert res.returncode == 1, res.stdout + res.stderr
    err = res.stderr.strip()
    assert len(err.splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err, err


@pytest.mark.parametrize("spaces", [False, True])
def test_good_corpus_passes(tmp_path, spaces):
    corpus = make_corpus(tmp_path, spaces=spaces)
    res = validate(corpus)
    assert res.returncode == 0, res.stderr
    assert "train: 4 utterances, 2 speakers: OK" in res.stdout
    assert "t: 3 trials: OK" in res.stdout


def edit(path: Path, fn):
    lines = path.read_text().splitlines()
    path.write_text("".join(line + "\n" for line in fn(lines)))


def test_unsorted_wav_scp(tmp_path):
    corpus = make_corpus(tmp_path)
    edit(corpus / "test" / "wav.scp", lambda ls: [ls[1], ls[0], *ls[2:]])
    assert_fails(validate(corpus), "test/wav.scp:2", "not sorted")


def test_duplicate_utterance(tmp_path):
    corpus = make_corpus(tmp_path)
    edit(corpus / "train" / "utt2spk", lambda ls: [ls[0], ls[0], *ls[1:]])
    assert_fails(validate(corpus), "train/utt2spk:2", "duplicate")


def test_spk2utt_disagrees(tmp_path):
    corpus = make_corpus(tmp_path)
    edit(corpus / "train" / "spk2utt", lambda ls: [ls[0].rsplit(" ", 1)[0], *ls[1:]])
    assert_fails(validate(corpus), "train/spk2utt:1", "disagree")


def test_utt_missing_from_utt2spk(tmp_path):
    corpus = make_corpus(tmp_path)
    edit(corpus / "train" / "utt2spk", lambda ls: ls[1:])
    assert_fails(validate(corpus), "train/wav.scp:1", "missing from utt2spk")


def test_missing_audio(tmp_path):
    corpus = make_corpus(tmp_path)
    (tmp_path / "audio" / "c-1.wav").unlink()
    assert_fails(validate(corpus), "test/wav.scp:2", "c-1", "does not exist")


@pytest.mark.parametrize("kind,fragment", [
    ("stereo", "2 channels"), ("8k", "found 8000 Hz"), ("empty", "no samples"), ("corrupt", "cannot read"),
])
def test_bad_audio(tmp_path, kind, fragment):
    corpus = make_corpus(tmp_path)
    path = tmp_path / "audio" / "d-0.wav"
    if kind == "stereo":
        write_tone(path, seconds=0.05, channels=2)
    elif kind == "8k":
        write_tone(path, seconds=0.05, sr=8000)
    elif kind == "empty":
        write_tone(path, seconds=0.0)
    else:
        path.write_bytes(b"RIFF\x00\x00garbage")
    assert_fails(validate(corpus), "test/wav.scp:3", fragment)
    assert validate(corpus, extra=["--no-audio"]).returncode == 0


def test_trial_with_unknown_utterance(tmp_path):
    corpus = make_corpus(tmp_path)
    edit(corpus / "trials" / "t", lambda ls: [*ls[:2], "d-0 zz target"])
    assert_fails(validate(corpus), "trials/t:3", "'zz'")


def test_trial_on_train_utterance_is_rejected(tmp_path):
    corpus = make_corpus(tmp_path)
    edit(corpus / "trials" / "t", lambda ls: ["a-0 c-0 nontarget", *ls])
    assert_fails(validate(corpus), "trials/t:1", "'a-0'")


def test_unsorted_trials(tmp_path):
    corpus = make_corpus(tmp_path)
    edit(corpus / "trials" / "t", lambda ls: [ls[2], ls[0], ls[1]])
    assert_fails(validate(corpus), "trials/t:2", "not sorted")


def test_single_data_dir_and_missing_dir(tmp_path):
    corpus = make_corpus(tmp_path)
    assert validate(corpus / "train").returncode == 0
    assert_fails(validate(tmp_path / "nope"), "nope")
