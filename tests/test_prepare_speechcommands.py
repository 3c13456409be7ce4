"""Speech Commands v2 preparation on synthetic trees in the release layout: the 35-word and the
12-class task (``_unknown_``, ``_silence_`` from disjoint parts of the background noise), the
background noise as a MUSAN-style augmentation source, the one-line errors, the stage-1 dispatch."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import REPO, run, run_sh
from spkpeft.data.augment import AugmentConfig, Augmenter
from spkpeft.errors import SpkpeftError
from spkpeft.io.datadir import read_data_dir

sys.path.insert(0, str(REPO / "local"))
import prepare_speechcommands as sc  # noqa: E402

SR = 16000
# word -> number of speakers (one utterance each); yes/no/up/stop are commands, the rest unknown
TREE = {"yes": 10, "no": 10, "up": 10, "stop": 10, "bed": 10, "bird": 10, "visual": 10, "marvin": 10}
NOISE_SECONDS = {"white_noise": 20.0, "running_tap": 30.0}


def make_sc(root: Path, tree: dict[str, int] = TREE) -> dict[str, list[str]]:
    """A release tree (0.1-s utterances): per word speaker 0 in validation, 1 in testing, the rest train."""
    rng = np.random.default_rng(0)
    lists: dict[str, list[str]] = {"dev": [], "test": [], "train": []}
    for word, n in tree.items():
        for i, h in enumerate(f"{i:08x}" for i in range(n)):
            rel = f"{word}/{h}_nohash_0.wav"
            (root / word).mkdir(parents=True, exist_ok=True)
            sf.write(str(root / rel), 0.1 * rng.standard_normal(SR // 10), SR)
            lists["dev" if i == 0 else "test" if i == 1 else "train"].append(rel)
    (root / "validation_list.txt").write_text("".join(r + "\n" for r in lists["dev"]))
    (root / "testing_list.txt").write_text("".join(r + "\n" for r in lists["test"]))
    noise = root / "_background_noise_"
    noise.mkdir(parents=True, exist_ok=True)
    for name, seconds in NOISE_SECONDS.items():  # a ramp: the value tells where a crop came from
        sf.write(str(noise / f"{name}.wav"), np.linspace(0.0, 0.9, int(seconds * SR)), SR, subtype="FLOAT")
    (noise / "README.md").write_text("background noise\n")
    (root / "LICENSE").write_text("CC BY 4.0\n")
    return lists


def test_35_word_task_splits_and_labels(tmp_path):
    lists = make_sc(tmp_path / "speech_commands_v0.02")
    out = tmp_path / "data"
    summary = sc.prepare(tmp_path, tmp_path / "wav", out, task="35")
    assert "train 64 utts / 8 classes, dev 8 utts / 8 classes, test 8 utts / 8 classes" in summary
    assert sorted(p.name for p in out.iterdir()) == ["dev", "test", "train"]
    for name in ("train", "dev", "test"):
        d = read_data_dir(out / name)
        assert sorted(d.wav) == sorted(r[:-4] for r in lists[name])
        assert all(d.utt2label[u] == u.split("/")[0] for u in d.wav)
        assert all(d.utt2spk[u] == u.split("/")[1].split("_")[0] for u in d.wav)
    assert not any("_background_noise_" in p for p in read_data_dir(out / "train").wav.values())


def test_12_class_task_unknown_and_silence(tmp_path):
    make_sc(tmp_path / "sc")
    out, wav = tmp_path / "data", tmp_path / "wav"
    sc.prepare(tmp_path / "sc", wav, out, task="12", silence_pct=25, unknown_pct=50, seed=3)
    train = read_data_dir(out / "train")
    counts = {label: list(train.utt2label.values()).count(label) for label in set(train.utt2label.values())}
    # train: 4 commands x 8 = 32; unknown ceil(50 % of 32) = 16 of 32; silence ceil(25 % of 32) = 8
    assert counts == {"yes": 8, "no": 8, "up": 8, "stop": 8, "_unknown_": 16, "_silence_": 8}
    dev = read_data_dir(out / "dev")
    assert sorted(set(dev.utt2label.values())) == ["_silence_", "_unknown_", "no", "stop", "up", "yes"]
    assert list(dev.utt2label.values()).count("_unknown_") == 2 and list(dev.utt2label.values()).count("_silence_") == 1
    unknown_words = {u.split("/")[0] for u, label in train.utt2label.items() if label == "_unknown_"}
    assert unknown_words <= {"bed", "bird", "visual", "marvin"}
    # silence clips: 1 s each, under WAV_OUT/silence/<set>/
    for name in ("train", "dev", "test"):
        d = read_data_dir(out / name)
        silence = [u for u, label in d.utt2label.items() if label == "_silence_"]
        assert silence and all(u.startswith(f"_silence_/{name}_") for u in silence)
        for utt in silence:
            assert Path(d.wav[utt]).parent == wav.resolve() / "silence" / name and sf.info(d.wav[utt]).frames == SR
    again = tmp_path / "again"
    sc.prepare(tmp_path / "sc", wav, again, task="12", silence_pct=25, unknown_pct=50, seed=3)
    for name in ("train", "dev", "test"):
        assert (again / name / "utt2label").read_text() == (out / name / "utt2label").read_text()


def test_silence_crops_stay_in_their_share(tmp_path):
    """Train crops lie in the first 80 % of a noise file, dev in the next 10 %, test in the last 10 %;
    the plan depends on the seed only."""
    noise = {name: np.zeros(int(seconds * SR)) for name, seconds in NOISE_SECONDS.items()}
    for name, (lo, hi) in sc.NOISE_SPLIT.items():
        plan = sc.silence_plan(noise, name, 200, seed=5, release=tmp_path)
        assert plan == sc.silence_plan(noise, name, 200, seed=5, release=tmp_path)
        assert {key for key, _, _ in plan} == set(NOISE_SECONDS)
        for key, start, gain in plan:
            n = len(noise[key])
            assert int(lo * n) <= start and start + SR <= int(hi * n) and 0.0 <= gain <= 1.0
    x, _ = sf.read(str(make_silence(tmp_path)))
    assert len(x) == SR


def make_silence(tmp_path: Path) -> Path:
    """One written clip of a constant noise file: its samples are the gain times the constant."""
    noise = {"white_noise": np.full(20 * SR, 0.5)}
    clips = sc.silence_clips(noise, "test", 1, 0, tmp_path, tmp_path / "wav")
    (_, _, gain), = sc.silence_plan(noise, "test", 1, 0, tmp_path)
    path = Path(clips["_silence_/test_00000"])
    assert np.allclose(sf.read(str(path))[0], 0.5 * gain, atol=1e-4)
    return path


def test_background_noise_feeds_the_augmenter(tmp_path):
    make_sc(tmp_path / "sc")
    sc.prepare(tmp_path / "sc", tmp_path / "wav", tmp_path / "data")
    background = tmp_path / "wav" / "background"
    files = sorted(p.name for p in (background / "noise").iterdir())
    assert files == ["running_tap.wav", "white_noise.wav"]
    assert sf.info(str(background / "noise" / "white_noise.wav")).frames == int(0.8 * 20 * SR)
    augmenter = Augmenter(AugmentConfig(musan_dir=str(background), prob=1.0, noise_snr=[0.0, 0.0]))
    assert augmenter.kinds == ["noise"]
    x = np.zeros(SR, dtype=np.float32) + 0.1
    y = augmenter(x, np.random.default_rng(0))
    assert y.shape == x.shape and not np.allclose(y, x)


def test_noise_overlay_points_at_the_default_wav_dir(tmp_path):
    from spkpeft.tasks.experiment import prepare_experiment

    cfg = prepare_experiment(REPO / "conf" / "cls" / "frozen.yaml", tmp_path / "exp", write=False,
                             overlays=[REPO / "conf" / "overlays" / "speechcommands_noise.yaml"])
    assert cfg.data.augment.musan_dir == "data/raw/speechcommands/background" and cfg.data.augment.prob == 0.8
    assert "wav_dir:=data/raw/speechcommands}" in (REPO / "egs" / "speechcommands" / "run.sh").read_text()


@pytest.mark.parametrize("case, where, message", [
    ("bad_name", "yes/notahash_0.wav", "file name is not <hash>_nohash_<n>.wav"),
    ("unknown_word", "/hello", "not one of the 35 Speech Commands v2 words"),
    ("list_line", "validation_list.txt:3", "expected <word>/<hash>_nohash_<n>.wav, got 'yes/oops.wav'"),
    ("list_missing", "testing_list.txt:2", "'no/ffffffff_nohash_0.wav' not found"),
    ("list_twice", "validation_list.txt:9", "is listed twice"),
    ("both_lists", "testing_list.txt:1", "is also in validation_list.txt"),
    ("no_noise", "_background_noise_", "directory does not exist"),
    ("short_noise", "white_noise.wav", "too short"),
])
def test_malformed_input_is_named(tmp_path, case, where, message):
    root = tmp_path / "sc"
    lists = make_sc(root)
    if case == "bad_name":
        sf.write(str(root / "yes" / "notahash_0.wav"), np.zeros(100), SR)
    elif case == "unknown_word":
        (root / "hello").mkdir()
    elif case in ("list_line", "list_missing", "list_twice", "both_lists"):
        name = "testing_list.txt" if case in ("list_missing", "both_lists") else "validation_list.txt"
        rows = lists["test" if name.startswith("testing") else "dev"]
        if case == "list_line":
            rows = rows[:2] + ["yes/oops.wav"] + rows[2:]
        elif case == "list_missing":
            rows = rows[:1] + ["no/ffffffff_nohash_0.wav"] + rows[1:]
        elif case == "list_twice":
            rows = rows + [rows[0]]
        else:
            rows = [lists["dev"][0]] + rows
        (root / name).write_text("".join(r + "\n" for r in rows))
    elif case == "no_noise":
        for p in (root / "_background_noise_").iterdir():
            p.unlink()
        (root / "_background_noise_").rmdir()
    else:
        sf.write(str(root / "_background_noise_" / "white_noise.wav"), np.zeros(SR), SR)
    with pytest.raises(SpkpeftError) as err:
        sc.prepare(root, tmp_path / "wav", tmp_path / "data", task="12")
    assert where in str(err.value) and message in str(err.value), str(err.value)
    assert not (tmp_path / "data").exists()


def test_cli_recipe_stage_1_and_options(recipe, tmp_path):
    make_sc(tmp_path / "sc")
    (tmp_path / "sc" / "testing_list.txt").write_text("yes/x.wav\n")
    res = run([sys.executable, str(REPO / "local" / "prepare_speechcommands.py"), str(tmp_path / "sc"),
               str(tmp_path / "w"), str(tmp_path / "d")])
    assert res.returncode == 1 and res.stderr.strip().splitlines() == [
        f"prepare_speechcommands: error: {tmp_path / 'sc' / 'testing_list.txt'}:1: "
        "expected <word>/<hash>_nohash_<n>.wav, got 'yes/x.wav'"]
    make_sc(tmp_path / "sc")
    out = recipe / "data" / "speechcommands_12"
    prepare = ["bash", str(recipe / "run.sh"), "--corpus", "speechcommands", "--sc-task", "12", "--stop-stage", "1",
               "--wav-dir", str(tmp_path / "w"), "--data-root", str(tmp_path / "sc"), "--exp", str(tmp_path / "exp")]
    res = run(prepare, cwd=recipe)
    assert res.returncode == 0, res.stderr[-3000:]
    labels = (out / "train" / "utt2label").read_text().split()
    assert labels.count("_silence_") == math.ceil(0.1 * 32) and labels.count("_unknown_") == math.ceil(0.1 * 32)
    assert len(list((tmp_path / "w" / "silence" / "train").glob("*.wav"))) == math.ceil(0.1 * 32)
    res = run(prepare, cwd=recipe)
    assert res.returncode == 0 and "is up to date" in res.stderr
    assert (tmp_path / "exp" / "data_dir").read_text().strip() == "data/speechcommands_12"
    res = run_sh(recipe, "--corpus", "speechcommands", "--sc-task", "20", "--data-root", str(tmp_path / "sc"))
    assert res.returncode == 1 and "--sc-task takes 35 or 12" in res.stderr
