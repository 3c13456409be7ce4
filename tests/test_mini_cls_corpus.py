"""Synthetic mini classification corpus (spkpeft.data.synth_sounds, local/make_mini_cls_corpus.{py,sh}) and its baseline."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from cls_baseline import load_features, mfcc_logreg_baseline
from conftest import REPO, run
from spkpeft.io.audio import read_audio
from spkpeft.io.datadir import c_sort_key, read_key_value
from spkpeft.errors import SpkpeftError
from spkpeft.data.synth_sounds import CLASSES, SETS, ClsCorpusSpec, synthesize_sound, write_cls_corpus

SCRIPT = REPO / "local" / "make_mini_cls_corpus.py"
SHELL = REPO / "local" / "make_mini_cls_corpus.sh"
UTT_RE = re.compile(r"^([a-z]+)-(train|dev|test)-(\d{4})$")
SMALL = ["--n-train", "3", "--n-dev", "1", "--n-test", "2", "--seconds", "0.5"]
SMALL_COUNTS = {"train": 3, "dev": 1, "test": 2}


def make(out: Path, *args: str) -> str:
    proc = run([sys.executable, str(SCRIPT), "--out", str(out), *args])
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def make_sh(root: Path, opts: str | None = None):
    cmd = ["bash", str(SHELL)] + (["--mini-opts", opts] if opts is not None else []) + [str(root)]
    return run(cmd)


def load_script():
    spec = importlib.util.spec_from_file_location("make_mini_cls_corpus", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def wav_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root / "wav").as_posix() for p in (root / "wav").rglob("*") if p.is_file())


def lists(root: Path) -> dict[str, str]:
    """The six list files, with the corpus root in wav.scp replaced by a placeholder."""
    return {f"{s}/{f}": (root / s / f).read_text().replace(str(root.resolve()), "ROOT")
            for s in SETS for f in ("wav.scp", "utt2label")}


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cls_small")
    out = make(root, *SMALL, "--seed", "7")
    assert out.count("\n") == 1 and "60 clips" in out and "10 classes" in out
    return root


@pytest.fixture(scope="module")
def default_cls_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default-size corpus (10 classes x 40 / 20 / 20 clips of 1 s, seed 0): about 7 s on one core."""
    root = tmp_path_factory.mktemp("cls_default")
    make(root)
    return root


# ----------------------------------------------------------------------------- layout


def test_small_layout(small_corpus: Path) -> None:
    assert sorted(p.name for p in small_corpus.iterdir()) == ["dev", "test", "train", "wav"]
    seen: set[str] = set()
    for set_name in SETS:
        assert sorted(p.name for p in (small_corpus / set_name).iterdir()) == ["utt2label", "wav.scp"]
        for name in ("wav.scp", "utt2label"):  # C-locale order, checked line by line
            keys = [line.split()[0] for line in (small_corpus / set_name / name).read_text().splitlines()]
            assert keys == sorted(keys, key=c_sort_key)
        wav = read_key_value(small_corpus / set_name / "wav.scp", rest_of_line=True)  # also checks sort order
        labels = read_key_value(small_corpus / set_name / "utt2label")
        assert list(wav) == list(labels)
        for utt, path in wav.items():
            m = UTT_RE.match(utt)
            assert m and m.group(2) == set_name and labels[utt] == m.group(1), utt
            assert Path(path).is_absolute() and Path(path) == small_corpus.resolve() / "wav" / set_name / f"{utt}.wav"
            info = sf.info(path)
            assert (info.samplerate, info.channels, info.subtype, info.frames) == (16000, 1, "PCM_16", 8000)
        counts = {c: list(labels.values()).count(c) for c in CLASSES}
        assert counts == {c: SMALL_COUNTS[set_name] for c in CLASSES}  # balanced, every class present
        assert not seen & set(wav)
        seen |= set(wav)
    assert wav_files(small_corpus) == sorted(f"{u.split('-')[1]}/{u}.wav" for u in seen)


def test_audio_is_sane(small_corpus: Path) -> None:
    for rel in wav_files(small_corpus)[::5]:
        x = read_audio(small_corpus / "wav" / rel)
        assert np.all(np.isfinite(x)) and 0 < np.max(np.abs(x)) <= 0.95 + 1e-4
        assert -40.0 < 20 * np.log10(np.sqrt(np.mean(x.astype(np.float64) ** 2))) < -15.0


def test_deterministic_and_seed_dependent(small_corpus: Path, tmp_path: Path) -> None:
    make(tmp_path / "again", *SMALL, "--seed", "7")
    make(tmp_path / "other", *SMALL, "--seed", "8")
    files = wav_files(small_corpus)
    assert wav_files(tmp_path / "again") == files == wav_files(tmp_path / "other")
    for rel in files:
        assert (small_corpus / "wav" / rel).read_bytes() == (tmp_path / "again" / "wav" / rel).read_bytes(), rel
    assert lists(tmp_path / "again") == lists(small_corpus) == lists(tmp_path / "other")
    for rel in files:
        x, y = read_audio(small_corpus / "wav" / rel), read_audio(tmp_path / "other" / "wav" / rel)
        assert not np.allclose(x, y), rel


def test_clip_does_not_depend_on_corpus_size_or_classes(small_corpus: Path, tmp_path: Path) -> None:
    make(tmp_path, "--classes", "bird", "knock", "--n-train", "1", "--n-dev", "1", "--n-test", "3",
         "--seconds", "0.5", "--seed", "7")
    files = wav_files(tmp_path)
    assert files == ["dev/bird-dev-0000.wav", "dev/knock-dev-0000.wav", *[f"test/{c}-test-{i:04d}.wav"
                     for c in ("bird", "knock") for i in range(3)], "train/bird-train-0000.wav",
                     "train/knock-train-0000.wav"]
    for rel in files:
        if (small_corpus / "wav" / rel).exists():
            assert (small_corpus / "wav" / rel).read_bytes() == (tmp_path / "wav" / rel).read_bytes(), rel
    assert set(read_key_value(tmp_path / "train" / "utt2label").values()) == {"bird", "knock"}


@pytest.mark.parametrize("args", [
    ["--classes", "bird", "unicorn"], ["--classes", "bird"], ["--classes", "bird", "bird"], ["--n-train", "0"],
    ["--n-test", "10000"], ["--seconds", "0"], ["--seed", "-1"], ["--n-dev", "x"],
])
def test_bad_options_are_usage_errors(args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        load_script().main(["--out", str(tmp_path), *args])
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err
    assert not (tmp_path / "wav").exists()


def test_refuses_directory_of_another_corpus(tmp_path: Path) -> None:
    stray = tmp_path / "wav" / "train" / "cat-train-0000.wav"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"")
    with pytest.raises(SpkpeftError, match="another corpus"):
        load_script().main(["--out", str(tmp_path), *SMALL])
    assert not (tmp_path / "train").exists() and stray.exists()


def test_interrupted_run_leaves_no_lists(tmp_path: Path) -> None:
    spec = ClsCorpusSpec(classes=("knock", "siren"), n_train=2, n_dev=1, n_test=1, seconds=0.3, seed=1)
    write_cls_corpus(tmp_path, spec)
    assert all((tmp_path / s / f).is_file() for s in SETS for f in ("wav.scp", "utt2label"))

    def stop(done: int, total: int) -> None:
        assert total == 8
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_cls_corpus(tmp_path, spec, progress=stop)
    assert not any((tmp_path / s / f).exists() for s in SETS for f in ("wav.scp", "utt2label"))
    assert not list((tmp_path / "wav").rglob("*.tmp"))


def test_sound_classes() -> None:
    for k, name in enumerate(CLASSES):
        a = synthesize_sound(name, np.random.default_rng([3, k]), 4000)
        b = synthesize_sound(name, np.random.default_rng([4, k]), 4000)
        assert a.shape == (4000,) and np.all(np.isfinite(a)) and np.sqrt(np.mean(a ** 2)) == pytest.approx(1.0)
        assert not np.allclose(a, b)  # within-class variation
        assert np.array_equal(a, synthesize_sound(name, np.random.default_rng([3, k]), 4000))
    with pytest.raises(SpkpeftError, match="unknown sound class"):
        synthesize_sound("unicorn", np.random.default_rng(0), 100)


# ----------------------------------------------------------------------------- local/make_mini_cls_corpus.sh


def test_sh_generates_skips_regenerates_and_refuses(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    opts = "--classes clock knock --n-train 2 --n-dev 1 --n-test 1 --seconds 0.3"
    res = make_sh(root, opts)
    assert res.returncode == 0, res.stderr
    assert (root / ".mini_cls_corpus_options").read_text().strip() == opts
    assert len(wav_files(root)) == 8 and len(read_key_value(root / "test" / "utt2label")) == 2
    stamp = (root / "wav" / "train" / "clock-train-0000.wav").stat().st_mtime_ns

    res = make_sh(root, opts)
    assert res.returncode == 0 and "up to date" in res.stderr, res.stderr
    assert (root / "wav" / "train" / "clock-train-0000.wav").stat().st_mtime_ns == stamp

    res = make_sh(root, opts.replace("--n-train 2", "--n-train 1"))
    assert res.returncode == 0 and "regenerating" in res.stderr, res.stderr
    assert len(wav_files(root)) == 6 and len(read_key_value(root / "train" / "utt2label")) == 2

    (root / "test" / "utt2label").unlink()  # an interrupted run: regenerated even with the same options
    (root / ".mini_cls_corpus_options").write_text("incomplete: " + opts.replace("--n-train 2", "--n-train 1"))
    res = make_sh(root, opts.replace("--n-train 2", "--n-train 1"))
    assert res.returncode == 0 and "regenerating" in res.stderr, res.stderr
    assert (root / "test" / "utt2label").is_file()

    other = tmp_path / "precious"
    other.mkdir()
    (other / "keep.txt").write_text("mine\n")
    res = make_sh(other, opts)
    assert res.returncode == 1 and "refusing" in res.stderr, res.stderr
    assert sorted(p.name for p in other.iterdir()) == ["keep.txt"]

    res = make_sh(tmp_path / "bad", "--classes unicorn")
    assert res.returncode != 0 and not (tmp_path / "bad" / "test").exists()


# ----------------------------------------------------------------------------- default corpus and baseline


def test_baseline_is_deterministic(small_corpus: Path) -> None:
    utts, x, y = load_features(small_corpus / "train")
    assert x.shape == (30, 40) and list(y) == [u.split("-")[0] for u in utts]
    a = mfcc_logreg_baseline(small_corpus / "train", small_corpus / "test")
    assert a == mfcc_logreg_baseline(small_corpus / "train", small_corpus / "test")
    assert 0.0 <= a <= 100.0


def test_default_corpus_mfcc_baseline_is_well_above_chance_but_far_from_perfect(default_cls_corpus: Path) -> None:
    """MFCC mean/std + logistic regression on the default corpus (seed 0, measured): 76.5 % on test,
    67.5 % on dev (chance 10 %; 91.8 % on the training clips); seed 1: 75.0 % / 60.5 %.  On 80
    held-out clips per class the accuracy is 66-73 %: the classes overlap (flute/siren,
    brass/engine, knock/clock/bird) but are learnable."""
    for set_name, n in (("train", 40), ("dev", 20), ("test", 20)):
        labels = list(read_key_value(default_cls_corpus / set_name / "utt2label").values())
        assert {c: labels.count(c) for c in CLASSES} == {c: n for c in CLASSES}
    assert sf.info(str(default_cls_corpus / "wav" / "test" / "bird-test-0000.wav")).frames == 16000
    test_acc = mfcc_logreg_baseline(default_cls_corpus / "train", default_cls_corpus / "test")
    dev_acc = mfcc_logreg_baseline(default_cls_corpus / "train", default_cls_corpus / "dev")
    print(f"MFCC + logistic regression on the default mini classification corpus: "
          f"test {test_acc:.1f} %, dev {dev_acc:.1f} %")
    assert 45.0 < test_acc < 90.0
    assert 40.0 < dev_acc < 90.0
