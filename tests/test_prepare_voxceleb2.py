"""VoxCeleb2 dev preparation: m4a -> 16 kHz wav conversion (parallel, resumable) and the training directory.

The default decoder is PyAV, in-process: real AAC files that the test encodes itself are
decoded with a PATH that holds no ffmpeg.  The parallelism, resuming and layout tests inject an
external converter (``--converter`` / ``$SPKPEFT_M4A_CONVERTER``): a tiny Python script that
reads a fake ".m4a" (really a 44.1/48 kHz stereo WAV), writes 16 kHz mono PCM and logs when
it ran.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from conftest import REPO, run, run_sh, write_tone
from spkpeft.io.datadir import read_data_dir
from test_prepare_voxceleb1 import LIST_FILES, make_tree as make_vox1_tree, write_list

FAKE_CONVERTER = '''\
import os, sys, time
start = time.time()
import numpy as np, soundfile as sf
from scipy.signal import resample_poly
src, dst = sys.argv[1], sys.argv[2]
if "BROKEN" in src:
    sys.exit("fake converter: cannot decode " + src)
x, sr = sf.read(src, always_2d=True)
y = resample_poly(x.mean(axis=1), 16000, sr)
time.sleep(float(os.environ.get("FAKE_CONV_SLEEP", "0")))
sf.write(dst, y, 16000, subtype="PCM_16")
with open(os.environ["FAKE_CONV_LOG"], "a") as log:
    log.write(f"{start} {time.time()} {src}\\n")
'''

SPKS = {"id00012": ["21Uxsk56VDQ", "2DLq_Kkc1r8"], "id00015": ["0fijmz4vTVU"]}


def make_vox2(root: Path, utts: int = 2) -> list[str]:
    """dev/aac/<spk>/<session>/<nnnnn>.m4a (WAV inside, 44.1 or 48 kHz stereo); returns the utterance ids."""
    ids = []
    for n, (spk, sessions) in enumerate(sorted(SPKS.items())):
        for session in sessions:
            for u in range(1, utts + 1):
                path = root / "dev" / "aac" / spk / session / f"{u:05d}.m4a"
                write_tone(path.with_suffix(".wav"), seconds=0.1, sr=(44100, 48000)[n % 2], channels=2)
                path.with_suffix(".wav").rename(path)
                ids.append(f"{spk}/{session}/{u:05d}")
    return ids


@pytest.fixture
def converter(tmp_path) -> tuple[str, Path]:
    script = tmp_path / "fake_converter.py"
    script.write_text(FAKE_CONVERTER)
    return f"{sys.executable} {script}", tmp_path / "conversions.log"


def conversions(log: Path) -> list[tuple[float, float, str]]:
    if not log.exists():
        return []
    return [(float(a), float(b), c) for a, b, c in (line.split(" ", 2) for line in log.read_text().splitlines())]


def prepare_sh(tmp_path: Path, converter: tuple[str, Path], *opts: str, sleep: float = 0.0):
    cmd, log = converter
    return run(["bash", str(REPO / "local" / "prepare_voxceleb2.sh"), "--converter", cmd, *opts,
                "VoxCeleb2", "wav16k", "data/voxceleb2"], cwd=tmp_path,
               env={"FAKE_CONV_LOG": str(log), "FAKE_CONV_SLEEP": str(sleep)})


def test_convert_layout_ids_and_parallelism(tmp_path, converter):
    ids = make_vox2(tmp_path / "VoxCeleb2")
    res = prepare_sh(tmp_path, converter, "--nj", "3", sleep=0.3)
    assert res.returncode == 0, res.stderr
    assert f"converted {len(ids)}, 0 already done" in res.stdout

    for utt in ids:
        info = sf.info(str(tmp_path / "wav16k" / f"{utt}.wav"))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert abs(info.frames - 1600) <= 1
    assert not list((tmp_path / "wav16k").rglob(".*"))  # no temporary files left

    train = read_data_dir(tmp_path / "data" / "voxceleb2" / "train")
    assert list(train.wav) == sorted(ids)
    assert {s: len(u) for s, u in train.spk2utt.items()} == {"id00012": 4, "id00015": 2}
    assert train.wav["id00015/0fijmz4vTVU/00002"] == str(tmp_path / "wav16k/id00015/0fijmz4vTVU/00002.wav")

    spans = sorted(conversions(converter[1]))
    assert len(spans) == len(ids)
    assert any(b[0] < a[1] for a, b in zip(spans, spans[1:])), "--nj 3 ran no two conversions at once"


def test_resume_skips_finished_and_redoes_leftovers(tmp_path, converter):
    ids = make_vox2(tmp_path / "VoxCeleb2")
    assert prepare_sh(tmp_path, converter, "--nj", "2").returncode == 0
    log = converter[1]
    first = tmp_path / "wav16k" / f"{ids[0]}.wav"
    mtime = first.stat().st_mtime_ns

    again = prepare_sh(tmp_path, converter, "--nj", "2")
    assert again.returncode == 0, again.stderr
    assert f"converted 0, {len(ids)} already done" in again.stdout
    assert len(conversions(log)) == len(ids) and first.stat().st_mtime_ns == mtime

    # an interrupted conversion: its wav never appeared, a half-written temporary file is left
    victim = tmp_path / "wav16k" / f"{ids[3]}.wav"
    victim.unlink()
    leftover = victim.with_name(f".{victim.stem}.tmp.wav")
    leftover.write_bytes(b"RIFF garbage")
    third = prepare_sh(tmp_path, converter)
    assert third.returncode == 0, third.stderr
    assert f"converted 1, {len(ids) - 1} already done" in third.stdout
    assert conversions(log)[-1][2].endswith(f"{ids[3]}.m4a")
    assert not leftover.exists() and sf.info(str(victim)).samplerate == 16000


def test_failed_conversion_names_the_file_and_keeps_no_partial_output(tmp_path, converter):
    make_vox2(tmp_path / "VoxCeleb2")
    broken = tmp_path / "VoxCeleb2" / "dev" / "aac" / "id00015" / "BROKEN"
    write_tone(broken / "00001.wav", seconds=0.1)
    (broken / "00001.wav").rename(broken / "00001.m4a")
    res = prepare_sh(tmp_path, converter, "--nj", "2")
    assert res.returncode == 1
    err = res.stderr.strip().splitlines()[-1]
    assert "1 of 7 conversions failed" in err and "BROKEN/00001.m4a" in err and "cannot decode" in err
    assert list((tmp_path / "wav16k" / "id00015" / "BROKEN").iterdir()) == []
    assert not (tmp_path / "data" / "voxceleb2" / "train").exists()


def encode_m4a(path: Path, seconds: float, sr: int, freq: float) -> None:
    """A stereo tone of ``freq`` Hz encoded as AAC in an MP4 container (FFmpeg's native AAC
    encoder through PyAV), as VoxCeleb2's ``.m4a`` files are."""
    import av
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    tone = (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=sr, layout="stereo")
        for start in range(0, t.size, 1024):
            block = np.stack([tone[start:start + 1024]] * 2)  # (channels, samples), planar float
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block), format="fltp", layout="stereo")
            frame.sample_rate = sr
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def test_decode_mono_downmixes_and_resamples(tmp_path):
    """spkpeft.io.aac in-process: 16 kHz int16 mono of the right length; a file without audio is named."""
    from spkpeft.errors import SpkpeftError
    from spkpeft.io.aac import decode_mono

    encode_m4a(tmp_path / "a.m4a", 0.25, 44100, 440.0)
    samples = decode_mono(tmp_path / "a.m4a")
    assert samples.dtype.name == "int16" and abs(samples.size - 4000) <= 2048 and samples.any()
    (tmp_path / "b.m4a").write_bytes(b"\0" * 64)
    with pytest.raises(SpkpeftError, match=r"b\.m4a: cannot decode"):
        decode_mono(tmp_path / "b.m4a")


def test_real_m4a_is_decoded_by_pyav_without_ffmpeg(tmp_path):
    """AAC files the test encodes itself, decoded with no ffmpeg on PATH: 16 kHz mono 16-bit wavs
    of the right length holding the tone; an undecodable file is named."""
    import numpy as np

    root = tmp_path / "VoxCeleb2" / "dev" / "aac"
    tones = {"id00012/21Uxsk56VDQ/00001": (44100, 440.0), "id00015/0fijmz4vTVU/00001": (48000, 1000.0)}
    for utt, (sr, freq) in tones.items():
        encode_m4a(root / f"{utt}.m4a", 0.5, sr, freq)
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "SPKPEFT_M4A_CONVERTER"}
    env.update(PATH=str(empty_bin), PYTHONPATH=str(REPO))
    script = [sys.executable, str(REPO / "local" / "prepare_voxceleb2.py"), str(tmp_path / "VoxCeleb2"),
              str(tmp_path / "wav"), str(tmp_path / "data")]
    res = subprocess.run(script, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    train = read_data_dir(tmp_path / "data" / "train")
    assert list(train.wav) == sorted(tones)
    for utt, (_, freq) in tones.items():
        info = sf.info(train.wav[utt])
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        x, _ = sf.read(train.wav[utt])
        assert abs(x.size - 8000) <= 2048  # 0.5 s, give or take the AAC priming and padding frames
        spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
        assert abs(np.argmax(spectrum) * 16000 / x.size - freq) < 40

    (root / "id00015" / "BROKEN").mkdir()
    (root / "id00015" / "BROKEN" / "00001.m4a").write_bytes(b"not an mp4 file" * 100)
    res = subprocess.run(script, env=env, capture_output=True, text=True)
    assert res.returncode == 1
    assert "1 of 1 conversions failed" in res.stderr and "BROKEN/00001.m4a: cannot decode" in res.stderr
    assert list((tmp_path / "wav" / "id00015" / "BROKEN").iterdir()) == []


def test_aac_at_root_and_missing_layout(tmp_path, converter):
    make_vox2(tmp_path / "v2", utts=1)
    (tmp_path / "v2" / "dev" / "aac").rename(tmp_path / "v2" / "aac")
    cmd, log = converter
    script = [sys.executable, str(REPO / "local" / "prepare_voxceleb2.py"), "--converter", cmd]
    res = run([*script, str(tmp_path / "v2"), str(tmp_path / "w"), str(tmp_path / "d")],
              env={"FAKE_CONV_LOG": str(log)})
    assert res.returncode == 0, res.stderr
    assert len(read_data_dir(tmp_path / "d" / "train").wav) == 3
    res = run([*script, str(tmp_path / "w"), str(tmp_path / "w2"), str(tmp_path / "d2")])
    assert res.returncode == 1 and "no dev/aac/ or aac/ directory" in res.stderr


def test_run_sh_voxceleb1_with_vox2_training_set(recipe, tmp_path, converter):
    vox1 = tmp_path / "VoxCeleb1"
    rels = make_vox1_tree(vox1, [f"id1{n:04d}" for n in range(270, 273)])
    for name, fname in LIST_FILES.items():
        write_list(vox1 / fname, rels)
    ids = make_vox2(tmp_path / "VoxCeleb2", utts=1)
    cmd, log = converter
    res = run(["bash", str(recipe / "run.sh"), "--corpus", "voxceleb1", "--data-root", "VoxCeleb1",
               "--vox2-root", "VoxCeleb2", "--vox2-wav", "vox2_wav", "--stop-stage", "2", "--exp", "exp"],
              cwd=tmp_path, env={"SPKPEFT_M4A_CONVERTER": cmd, "FAKE_CONV_LOG": str(log)})
    assert res.returncode == 0, res.stderr
    data = recipe / "data" / "voxceleb1"
    train = read_data_dir(data / "train")
    assert list(train.wav) == sorted(ids) and train.wav[ids[0]].startswith(str(tmp_path / "vox2_wav"))
    assert sorted(p.name for p in (data / "trials").iterdir()) == sorted(LIST_FILES)
    assert len(read_data_dir(data / "test").spk2utt) == 3

    again = run_sh(recipe, "--corpus", "voxceleb1", "--data-root", str(vox1),
                   "--vox2-root", str(tmp_path / "VoxCeleb2"),
                   "--vox2-wav", str(tmp_path / "vox2_wav"), "--stop-stage", "1", "--exp", str(tmp_path / "exp"))
    assert again.returncode == 0 and "up to date" in again.stderr
    assert len(conversions(log)) == len(ids)


def test_vox2_root_needs_voxceleb1(recipe, tmp_path):
    res = run_sh(recipe, "--vox2-root", str(tmp_path), "--exp", str(tmp_path / "exp"))
    assert res.returncode == 1 and "--vox2-root goes with --corpus voxceleb1" in res.stderr
