"""Paths with spaces and non-ASCII letters, and names that cannot be written in wav.scp.

Every recipe test runs in a copy of the recipe under ``récipe dir ü`` (tests/conftest.py:
``RECIPE_DIR``), so stages 1-6 of the sv, cls and cm mini recipes see such paths for the
audio, the data directories, the experiment and its logs.  Here: Kaldi ids in other scripts,
paths with spaces inside through stages 2 and 4 and tar shards, and the names that wav.scp
cannot hold -- a file name that is not UTF-8, a path ending in a space -- refused at stage 1
(preparation) or stage 2 (validation) in one line naming the file.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from conftest import REPO, python_module, run
from spkpeft.engine.extract import ExtractConfig, extract_data_dir
from spkpeft.io.datadir import check_audio, read_data_dir, write_data_dir
from test_audio_edges import MeanModel

IDS = ["spk1-ünï", "说话人-2", "spk3-😀", "z-plain"]


def tone(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, 0.1 * np.sin(np.arange(4000) / 7), 16000)
    return path


def test_non_ascii_ids_and_spaced_paths_through_validation_extraction_and_shards(tmp_path):
    from spkpeft.io.shards import pack_data_dir, read_shard

    wav = {u: str(tone(tmp_path / "audio dir ü" / f"{u} take 1.wav")) for u in IDS}
    data = tmp_path / "data dir" / "tést"
    write_data_dir(data, wav, {u: u.split("-")[0] for u in IDS})
    res = python_module("spkpeft.bin.validate_data_dir", "--task", "sv", str(data))
    assert res.returncode == 0, res.stderr
    dd = read_data_dir(data)
    assert dd.wav == {u: wav[u] for u in sorted(IDS, key=str.encode)}
    out = tmp_path / "exp dir ü" / "embeddings"
    extract_data_dir(MeanModel(), data, out, ExtractConfig(shard_size=2), torch.device("cpu"), {"c": 1})
    import kaldiio
    assert [u for u, _ in kaldiio.load_scp_sequential(str(out / "xvector.scp"))] == list(dd.wav)
    shards = pack_data_dir(dd, tmp_path / "shards dir ü", utts_per_shard=2)
    assert sorted(u for p in shards.paths for u, _, _ in read_shard(p)) == sorted(IDS)


def test_a_file_name_that_is_not_utf8_is_refused_at_stage1(tmp_path):
    """A VoxCeleb-layout tree holding a Latin-1 file name: one line naming the file (today's main:
    a UnicodeEncodeError traceback from the writer)."""
    root = tmp_path / "vox"
    tone(root / "wav" / "id10001" / "sess" / "00001.wav")
    bad = os.fsencode(root / "wav" / "id10001" / "sess") + b"/caf\xe9.wav"
    with open(bad, "wb") as handle:
        sf.write(handle, np.zeros(4000), 16000, format="WAV")
    (root / "veri_test.txt").write_text("1 id10001/sess/00001.wav id10001/sess/00001.wav\n")
    res = run([sys.executable, str(REPO / "local" / "prepare_voxceleb1.py"), str(root), str(tmp_path / "out")])
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr[-2000:]
    assert res.stderr.strip().splitlines()[-1] == (
        f"prepare_voxceleb1: error: {bad!r}: the file name is not UTF-8 (as wav.scp must be); "
        "rename it (e.g. convmv -f latin1 -t utf8 -r --notest DIR)")
    assert not (tmp_path / "out").exists()


def test_a_wav_scp_that_is_not_utf8_is_refused_at_stage2(tmp_path):
    data = tmp_path / "data"
    write_data_dir(data, {"a": str(tone(tmp_path / "a.wav")), "b": str(tone(tmp_path / "b.wav"))}, {"a": "s", "b": "t"})
    (data / "wav.scp").write_bytes((data / "wav.scp").read_bytes().replace(b"/b.wav", b"/caf\xe9.wav"))
    res = python_module("spkpeft.bin.validate_data_dir", "--task", "sv", str(data))
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr[-2000:]
    assert res.stderr.strip().splitlines()[-1] == (
        f"validate_data_dir: error: {data}/wav.scp:2: text file is not UTF-8 text (byte 0xe9 at column "
        f"{len('b ') + len(str(tmp_path)) + len('/caf') + 1})")


def test_paths_wav_scp_cannot_hold_are_refused_when_written(tmp_path):
    import pytest
    from spkpeft.errors import SpkpeftError

    for path, fragment in (("/audio/trailing .wav ", "starts or ends with whitespace"),
                           ("/audio/two\nlines.wav", "holds a line break")):
        with pytest.raises(SpkpeftError, match=fragment):
            write_data_dir(tmp_path / "d", {"a": path}, {"a": "s"})
    check_audio(read_data_dir(write_ok(tmp_path)))


def write_ok(tmp_path: Path) -> Path:
    data = tmp_path / "ok"
    write_data_dir(data, {"a": str(tone(tmp_path / "in side" / "x y.wav"))}, {"a": "s"})
    return data
