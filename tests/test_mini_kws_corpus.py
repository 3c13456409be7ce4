"""Synthetic spoken keywords in the Speech Commands v2 layout (spkpeft.data.{espeak,speech_commands,
synth_keywords}, local/make_mini_kws_corpus.{py,sh}): the release layout, preparation by the real
local/prepare_speechcommands (35- and 12-class tasks), byte-identical regeneration, speakers disjoint
across sets by the release's hashing rule, refusal of another corpus's directory."""

from __future__ import annotations

import ctypes
import importlib.util
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import REPO, run
from spkpeft.data import espeak
from spkpeft.data.espeak import EspeakVoice, speak
from spkpeft.data.speech_commands import COMMANDS, FILE, NOISE_DIR, WORDS, which_set
from spkpeft.data.synth_keywords import (ACCENTS, NOISE_FILES, VARIANTS, KwsCorpusSpec, plan_speakers,
                                         write_kws_corpus)
from spkpeft.errors import SpkpeftError
from spkpeft.io.datadir import c_sort_key, read_data_dir

sys.path.insert(0, str(REPO / "local"))
import prepare_speechcommands as sc  # noqa: E402

SCRIPT = REPO / "local" / "make_mini_kws_corpus.py"
SHELL = REPO / "local" / "make_mini_kws_corpus.sh"
WORDS_SMALL = ("yes", "no", "stop", "bed", "cat")
SMALL = KwsCorpusSpec(words=WORDS_SMALL, n_train_spk=3, n_dev_spk=1, n_test_spk=1, reps=2, seed=5,
                      noise_seconds=10.0)
SMALL_OPTS = "--words yes no stop bed cat --n-train-spk 3 --n-dev-spk 1 --n-test-spk 1 --seed 5 --noise-seconds 10"
SET_OF = {"training": "train", "validation": "dev", "testing": "test"}


def make_sh(root: Path, opts: str):
    return run(["bash", str(SHELL), "--mini-opts", opts, str(root)])


def load_script():
    spec = importlib.util.spec_from_file_location("make_mini_kws_corpus", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.startswith(".")}


def list_lines(root: Path, name: str) -> list[str]:
    return (root / name).read_text().splitlines()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small corpus, made by local/make_mini_kws_corpus.sh (5 words x 5 speakers x 2 repetitions)."""
    root = tmp_path_factory.mktemp("kws") / "sc"
    res = make_sh(root, SMALL_OPTS)
    assert res.returncode == 0, res.stderr
    assert "wrote 50 clips" in res.stdout + res.stderr
    return root


def test_release_layout(corpus: Path) -> None:
    assert sorted(p.name for p in corpus.iterdir()) == sorted(
        [".mini_kws_corpus_options", NOISE_DIR, "testing_list.txt", "validation_list.txt", *WORDS_SMALL])
    assert sorted(p.name for p in (corpus / NOISE_DIR).iterdir()) == sorted(
        ["README.md", *(f"{n}.wav" for n in NOISE_FILES)])
    for name in NOISE_FILES:
        info = sf.info(str(corpus / NOISE_DIR / f"{name}.wav"))
        assert (info.samplerate, info.channels, info.frames, info.subtype) == (16000, 1, 160000, "PCM_16")
    clips = {f"{w}/{p.name}" for w in WORDS_SMALL for p in (corpus / w).iterdir()}
    assert len(clips) == 50 and all(FILE.match(c.split("/")[1]) for c in clips)
    for rel in sorted(clips)[::7]:
        info = sf.info(str(corpus / rel))
        assert (info.samplerate, info.channels, info.frames, info.subtype) == (16000, 1, 16000, "PCM_16")
        x, _ = sf.read(str(corpus / rel))
        assert 0.01 < np.max(np.abs(x)) <= 0.95 + 1e-4
    speakers = {c.split("/")[1].split("_nohash_")[0] for c in clips}
    assert len(speakers) == 5 and all(len({c for c in clips if s in c}) == 10 for s in speakers)
    for name, set_name in (("validation_list.txt", "dev"), ("testing_list.txt", "test")):
        lines = list_lines(corpus, name)
        assert lines == sorted(lines, key=c_sort_key) and set(lines) <= clips
        assert {line.split("/")[1].split("_")[0] for line in lines} == {
            s for s in speakers if SET_OF[which_set(s)] == set_name}
        assert len(lines) == 10


def test_speakers_disjoint_and_assigned_by_the_release_hashing_rule(corpus: Path) -> None:
    speakers = plan_speakers(SMALL)
    by_set = {s: {sp.hash for sp in speakers if sp.set_name == s} for s in ("train", "dev", "test")}
    assert [len(by_set[s]) for s in ("train", "dev", "test")] == [3, 1, 1]
    assert not (by_set["train"] & by_set["dev"] or by_set["train"] & by_set["test"] or by_set["dev"] & by_set["test"])
    assert all(SET_OF[which_set(sp.hash)] == sp.set_name for sp in speakers)
    dev = {line.split("/")[1].split("_")[0] for line in list_lines(corpus, "validation_list.txt")}
    assert dev == by_set["dev"]
    # more speakers keep the first ones (candidates in order), and the rule splits about 80/10/10
    more = plan_speakers(KwsCorpusSpec(n_train_spk=5, n_dev_spk=2, n_test_spk=2, seed=5))
    assert {sp.hash for sp in speakers} <= {sp.hash for sp in more}
    counts = Counter(which_set(f"{i:08x}_nohash_0.wav") for i in range(4000))
    assert 0.07 < counts["validation"] / 4000 < 0.13 and 0.07 < counts["testing"] / 4000 < 0.13
    assert which_set("yes/0a1b2c3d_nohash_4.wav") == which_set("0a1b2c3d")


def test_prepare_speechcommands_accepts_it(corpus: Path, tmp_path: Path) -> None:
    res = run(["bash", str(REPO / "local" / "prepare_speechcommands.sh"), "--task", "12", str(corpus),
               str(tmp_path / "wav12"), str(tmp_path / "data12")])
    assert res.returncode == 0, res.stderr
    train = read_data_dir(tmp_path / "data12" / "train")
    labels = Counter(train.utt2label.values())
    # 3 train speakers x 3 commands x 2 = 18; _unknown_ ceil(10 % of 18) = 2 of 12; _silence_ ceil(10 % of 18) = 2
    assert labels == {"yes": 6, "no": 6, "stop": 6, "_unknown_": 2, "_silence_": 2}
    test = read_data_dir(tmp_path / "data12" / "test")
    assert Counter(test.utt2label.values()) == {"yes": 2, "no": 2, "stop": 2, "_unknown_": 1, "_silence_": 1}
    summary = sc.prepare(corpus, tmp_path / "wav35", tmp_path / "data35", task="35")
    assert "train 30 utts / 5 classes, dev 10 utts / 5 classes, test 10 utts / 5 classes" in summary
    for set_name in ("train", "dev", "test"):
        d = read_data_dir(tmp_path / "data35" / set_name)
        assert all(d.utt2label[u] == u.split("/")[0] and d.utt2spk[u] == u.split("/")[1][:8] for u in d.wav)
    assert not set(read_data_dir(tmp_path / "data35" / "train").utt2spk.values()) & set(
        read_data_dir(tmp_path / "data35" / "test").utt2spk.values())


def test_regeneration_is_byte_identical_and_seed_dependent(corpus: Path, tmp_path: Path) -> None:
    write_kws_corpus(tmp_path / "again", SMALL)  # in this process, after other eSpeak calls
    expected = files(corpus)
    assert files(tmp_path / "again") == expected
    res = make_sh(corpus, SMALL_OPTS)
    assert res.returncode == 0 and "up to date" in res.stderr, res.stderr
    other = KwsCorpusSpec(words=("yes",), n_train_spk=1, n_dev_spk=1, n_test_spk=1, reps=1, seed=6, noise_seconds=10.0)
    write_kws_corpus(tmp_path / "other", other)
    got = files(tmp_path / "other")
    assert not set(got) & {k for k in expected if k.startswith("yes/")}
    assert got[f"{NOISE_DIR}/white_noise.wav"] != expected[f"{NOISE_DIR}/white_noise.wav"]


def test_espeak_is_a_function_of_its_arguments() -> None:
    voice = EspeakVoice("en-us+f3", rate=150, pitch=60)
    a, sr = speak("go", voice, 3)
    speak("left right", EspeakVoice("en-gb-scotland+klatt2", pitch=80), 9)
    b, _ = speak("go", voice, 3)
    assert sr == 22050 and a.dtype == np.float32 and 0.05 < np.max(np.abs(a)) < 1.0
    assert np.array_equal(a, b)
    assert not np.array_equal(a, speak("go", voice, 4)[0])  # breath noise follows the seed
    with pytest.raises(SpkpeftError, match="no voice variant 'nosuch'"):
        speak("go", EspeakVoice("en+nosuch"), 0)
    with pytest.raises(SpkpeftError, match="no voice 'xx-nowhere'"):
        speak("go", EspeakVoice("xx-nowhere"), 0)
    with pytest.raises(SpkpeftError, match="rate"):
        EspeakVoice("en", rate=20)


def test_espeak_refuses_to_go_on_when_the_library_stays_loaded() -> None:
    """Another handle on the library would keep its static state alive between words."""
    held = ctypes.CDLL(espeak._installation()[0])
    try:
        with pytest.raises(SpkpeftError, match="stayed loaded after dlclose"):
            speak("go", EspeakVoice("en"), 1)
    finally:
        espeak._libc().dlclose(held._handle)
    assert speak("go", EspeakVoice("en"), 1)[0].size > 1000


def test_every_accent_and_variant_exists() -> None:
    import espeakng_loader

    variants = Path(espeakng_loader.get_data_path()) / "voices" / "!v"
    assert all((variants / v).is_file() for v in VARIANTS)
    for accent in ACCENTS:
        assert speak("on", EspeakVoice(accent), 1)[0].size > 1000


def test_refuses_directory_of_another_corpus(tmp_path: Path) -> None:
    stray = tmp_path / "yes" / "0123abcd_nohash_0.wav"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"")
    (tmp_path / "validation_list.txt").write_text("yes/0123abcd_nohash_0.wav\n")
    with pytest.raises(SpkpeftError, match="another corpus"):
        load_script().main(["--out", str(tmp_path), "--words", "yes", "--n-train-spk", "1", "--n-dev-spk", "1",
                            "--n-test-spk", "1"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["validation_list.txt", "yes"]
    assert [p.name for p in (tmp_path / "yes").iterdir()] == [stray.name]
    other = tmp_path / "precious"
    other.mkdir()
    (other / "keep.txt").write_text("mine\n")
    res = make_sh(other, SMALL_OPTS)
    assert res.returncode == 1 and "refusing" in res.stderr, res.stderr
    assert sorted(p.name for p in other.iterdir()) == ["keep.txt"]


def test_interrupted_run_leaves_no_lists(tmp_path: Path) -> None:
    spec = KwsCorpusSpec(words=("up",), n_train_spk=1, n_dev_spk=1, n_test_spk=1, reps=1, noise_seconds=10.0)
    write_kws_corpus(tmp_path, spec)
    assert (tmp_path / "testing_list.txt").is_file()

    def stop(done: int, total: int) -> None:
        assert total == 3
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_kws_corpus(tmp_path, spec, progress=stop)
    assert not (tmp_path / "validation_list.txt").exists() and not (tmp_path / "testing_list.txt").exists()


@pytest.mark.parametrize("args", [
    ["--words", "yes", "unicorn"], ["--words", "yes", "yes"], ["--n-test-spk", "0"], ["--reps", "0"],
    ["--seed", "-1"], ["--channel-severity", "0"], ["--noise-seconds", "5"], ["--n-dev-spk", "x"],
])
def test_bad_options_are_usage_errors(args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        load_script().main(["--out", str(tmp_path), *args])
    assert exc.value.code == 2 and "error" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_default_words_are_the_commands_and_known_fillers() -> None:
    spec = KwsCorpusSpec()
    assert spec.words[:10] == COMMANDS and set(spec.words) <= set(WORDS) and len(spec.words) > 10
    with pytest.raises(SpkpeftError, match="Speech Commands v2 words"):
        KwsCorpusSpec(words=("yes", "maybe"))
