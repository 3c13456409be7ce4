"""ESC-50 preparation on synthetic trees in the release layout: folds, 44.1 -> 16 kHz conversion
(length, a tone's frequency), resuming, the one-line errors, and run.sh stages 1-5 of one fold."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import REPO, run, run_sh
from spkpeft.errors import SpkpeftError
from spkpeft.io.datadir import read_data_dir

sys.path.insert(0, str(REPO / "local"))
import prepare_esc50  # noqa: E402

HEADER = "filename,fold,target,category,esc10,src_file,take"
CLASSES = (("dog", 0, 440.0), ("rooster", 1, 1500.0))
SR = 44100


def tone(freq: float, seconds: float, sr: int = SR) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    return 0.5 * np.sin(2 * np.pi * freq * t)


def make_esc50(root: Path, per_fold: int = 1, seconds: float = 0.3) -> list[str]:
    """A release tree: every fold holds ``per_fold`` clips of each class (a tone per class); returns csv rows."""
    rows = []
    for fold in range(1, 6):
        for category, target, freq in CLASSES:
            for i in range(per_fold):
                clip = 100000 + 100 * fold + 10 * target + i
                name = f"{fold}-{clip}-A-{target}.wav"
                (root / "audio").mkdir(parents=True, exist_ok=True)
                sf.write(str(root / "audio" / name), tone(freq * (1 + 0.05 * i), seconds), SR)
                rows.append(f"{name},{fold},{target},{category},{target == 0},{clip},A")
    write_meta(root, rows[::-1])  # unsorted on purpose
    return rows


def write_meta(root: Path, rows: list[str]) -> Path:
    path = root / "meta" / "esc50.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + "\n" + "".join(r + "\n" for r in rows))
    return path


def test_folds_labels_and_petl_ast_dev_fold(tmp_path):
    root = tmp_path / "ESC-50-master"
    make_esc50(root)
    out = tmp_path / "data"
    summary = prepare_esc50.prepare(tmp_path, tmp_path / "wav", out, nj=2)
    assert "10 clips, 2 classes" in summary and "converted 10, 0 already done" in summary
    assert sorted(p.name for p in out.iterdir()) == [f"fold{k}" for k in range(1, 6)]
    dev_of = {1: 5, 2: 1, 3: 2, 4: 3, 5: 4}  # PETL-AST: validate on the fold before the test fold
    for k in range(1, 6):
        sets = {name: read_data_dir(out / f"fold{k}" / name) for name in ("train", "dev", "test")}
        folds = {name: sorted({int(u.split("-")[0]) for u in d.wav}) for name, d in sets.items()}
        assert folds["test"] == [k] and folds["dev"] == [dev_of[k]]
        assert folds["train"] == sorted(set(range(1, 6)) - {k, dev_of[k]})
        assert sets["test"].utt2label == {f"{k}-{100000 + 100 * k}-A-0": "dog", f"{k}-{100000 + 100 * k + 10}-A-1": "rooster"}
        assert all(Path(p).parent == (tmp_path / "wav").resolve() for p in sets["train"].wav.values())
    prepare_esc50.prepare(root, tmp_path / "wav", out, dev_fold="none")
    assert sorted(p.name for p in (out / "fold3").iterdir()) == ["test", "train"]
    assert sorted({int(u.split("-")[0]) for u in read_data_dir(out / "fold3" / "train").wav}) == [1, 2, 4, 5]


def test_conversion_keeps_length_and_tone_frequency(tmp_path):
    make_esc50(tmp_path, seconds=0.3)
    sf.write(str(tmp_path / "audio" / "1-100100-A-0.wav"), tone(1000.0, 5.0), SR)  # a full 5-s clip
    prepare_esc50.prepare(tmp_path, tmp_path / "wav", tmp_path / "data")
    y, sr = sf.read(str(tmp_path / "wav" / "1-100100-A-0.wav"))
    assert sr == 16000 and y.shape == (80000,)  # 220,500 samples * 160 / 441
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    assert abs(np.argmax(spectrum) * 16000 / len(y) - 1000.0) < 1.0
    mid = y[8000:-8000]
    assert abs(np.sqrt(np.mean(mid ** 2)) - 0.5 / np.sqrt(2)) < 0.01  # amplitude kept
    assert sf.info(str(tmp_path / "wav" / "2-100210-A-1.wav")).frames == -(-int(0.3 * SR) * 160 // 441)


def test_resume_converts_only_what_is_missing_with_the_same_bytes(tmp_path):
    make_esc50(tmp_path)
    wav = tmp_path / "wav"
    prepare_esc50.prepare(tmp_path, wav, tmp_path / "data")
    done = wav / "1-100100-A-0.wav"
    stamp = done.stat().st_mtime_ns
    (wav / "2-100200-A-0.wav").unlink()                                  # never finished
    (wav / "3-100300-A-0.wav").write_bytes(done.read_bytes()[:100])      # truncated by hand
    (wav / ".4-100400-A-0.wav.tmp12345").write_bytes(b"partial")         # a killed writer's temp
    summary = prepare_esc50.prepare(tmp_path, wav, tmp_path / "data", nj=2)
    assert "converted 2, 8 already done" in summary
    assert done.stat().st_mtime_ns == stamp
    assert not (wav / ".4-100400-A-0.wav.tmp12345").exists()
    fresh = tmp_path / "fresh"  # one job at a time, uninterrupted: the same bytes
    prepare_esc50.prepare(tmp_path, fresh, tmp_path / "data", nj=1)
    assert sorted(p.name for p in wav.iterdir()) == sorted(p.name for p in fresh.iterdir())
    assert all((wav / p.name).read_bytes() == p.read_bytes() for p in fresh.iterdir())


BAD_ROWS = [  # (row, message, appended: else it replaces the first row)
    ("1-100100-A-0.wav,1,0,dog,True,100100", "expected 7 fields", False),
    ("1_100100_A_0.wav,1,0,dog,True,100100,A", "is not {FOLD}-{CLIP_ID}-{TAKE}-{TARGET}.wav", False),
    ("1-100100-A-0.wav,2,0,dog,True,100100,A", "fold '2' disagrees with the file name", False),
    ("1-100100-A-0.wav,1,1,dog,True,100100,A", "target '1' disagrees", False),
    ("1-100100-A-0.wav,1,0,dog,True,999,A", "src_file '999' disagrees", False),
    ("1-100100-A-0.wav,1,0,dog,True,100100,B", "take 'B' disagrees", False),
    ("1-100100-A-0.wav,7,0,dog,True,100100,A", "fold must be 1 to 5", False),
    ("1-100100-A-0.wav,1,0,dog,yes,100100,A", "esc10 must be True or False", False),
    ("1-100199-A-0.wav,1,0,dog,True,100199,A", "'1-100199-A-0.wav' not found", False),
    ("1-100190-A-0.wav,1,0,cat,True,100190,A", "target 0 is 'cat' here but 'dog' earlier", True),
    ("1-100100-A-0.wav,1,0,dog,True,100100,A", "'1-100100-A-0.wav' is listed twice", True),
]


@pytest.mark.parametrize("row, message, appended", BAD_ROWS)
def test_malformed_csv_line_is_named(tmp_path, row, message, appended):
    rows = sorted(make_esc50(tmp_path))
    sf.write(str(tmp_path / "audio" / "1-100190-A-0.wav"), tone(440.0, 0.1), SR)
    path = write_meta(tmp_path, rows + [row] if appended else [row] + rows[1:])
    line = len(rows) + 2 if appended else 2
    with pytest.raises(SpkpeftError) as err:
        prepare_esc50.prepare(tmp_path, tmp_path / "wav", tmp_path / "data")
    assert f"{path}:{line}: " in str(err.value) and message in str(err.value), str(err.value)
    assert not (tmp_path / "data").exists()


def test_cli_one_line_errors(tmp_path):
    rows = make_esc50(tmp_path)
    path = tmp_path / "meta" / "esc50.csv"
    path.write_text("filename,fold,target,category\n" + "".join(r + "\n" for r in rows))
    res = run([sys.executable, str(REPO / "local" / "prepare_esc50.py"), str(tmp_path), str(tmp_path / "w"),
               str(tmp_path / "d")])
    assert res.returncode == 1 and res.stderr.strip().splitlines() == [
        f"prepare_esc50: error: {path}:1: expected the header '{HEADER}', got 'filename,fold,target,category'"]
    write_meta(tmp_path, [r for r in rows if not r.startswith("4-")])
    with pytest.raises(SpkpeftError, match="no clip of fold 4"):
        prepare_esc50.prepare(tmp_path, tmp_path / "w", tmp_path / "d")
    write_meta(tmp_path, rows)
    sf.write(str(tmp_path / "audio" / "5-100500-A-0.wav"), np.zeros((100, 2)), SR)
    with pytest.raises(SpkpeftError, match=r"5-100500-A-0\.wav: expected mono audio, found 2 channels"):
        prepare_esc50.prepare(tmp_path, tmp_path / "w", tmp_path / "d")
    assert not (tmp_path / "d").exists()


def test_run_sh_stages_1_2_and_fold_options(recipe, tmp_path):
    make_esc50(tmp_path / "esc50", per_fold=2)
    base = ["--corpus", "esc50", "--data-root", str(tmp_path / "esc50"), "--config", "conf/cls/frozen.yaml"]
    for extra, message in ((["--config", "conf/sv/mini.yaml", "--fold", "1"],  # refused before stage 1
                            "conf/sv/mini.yaml is a 'sv' config (task.type), and corpus esc50 serves cls"),
                           (["--fold", "6"], "--fold takes 1 to 5"),
                           (["--fold", "1", "--corpus", "mini_cls"], "--fold goes with --corpus esc50")):
        res = run_sh(recipe, *base, *extra)
        assert res.returncode == 1 and message in res.stderr, res.stderr
        assert "Stage 1" not in res.stderr
    exp = tmp_path / "exp"
    res = run_sh(recipe, *base, "--fold", "2", "--wav-dir", str(tmp_path / "wav16k"), "--exp", str(exp),
                 "--stop-stage", "2", "--nj", "2")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "data/esc50/fold2/train: 12 utterances, 2 classes: OK" in res.stderr
    assert sorted(p.name for p in (recipe / "data" / "esc50" / "fold5").iterdir()) == ["dev", "test", "train"]
    assert len(list((tmp_path / "wav16k").glob("*.wav"))) == 20
    assert (exp / "log" / "stage2_validate.log").is_file()
