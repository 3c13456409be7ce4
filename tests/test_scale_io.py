"""The I/O paths the large-corpus dry runs (bench/large_corpus.py) changed: audio headers checked
in chunks by a thread pool, and the score writer's sort and duplicate check."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import write_tone
from spkpeft.errors import SpkpeftError
from spkpeft.io import datadir
from spkpeft.io.datadir import check_audio, read_data_dir, write_data_dir
from spkpeft.io.trials import read_scores, write_scores


@pytest.mark.parametrize("nj", [1, 3])
def test_chunked_audio_check_reports_the_first_bad_line_whatever_nj(tmp_path, monkeypatch, nj):
    monkeypatch.setattr(datadir, "AUDIO_CHECK_CHUNK", 2)  # 7 files: chunks of 2, checked in parallel
    wav = {f"u{i}": str(write_tone(tmp_path / "a" / f"u{i}.wav", seconds=0.01)) for i in range(7)}
    write_tone(tmp_path / "a" / "u3.wav", seconds=0.01, channels=2)   # line 4
    (tmp_path / "a" / "u5.wav").unlink()                              # line 6
    write_data_dir(tmp_path / "d", wav, {u: "s" for u in wav})
    with pytest.raises(SpkpeftError, match="2 channels") as err:
        check_audio(read_data_dir(tmp_path / "d"), nj=nj)
    assert str(err.value).startswith(f"{tmp_path / 'd' / 'wav.scp'}:4: ")


def test_write_scores_finds_duplicates_apart_and_sorts_like_a_tuple_sort(tmp_path):
    with pytest.raises(SpkpeftError, match="duplicate"):
        write_scores(tmp_path / "dup", ["a", "b", "a"], ["c", "c", "c"], [0.1, 0.2, 0.3])
    with pytest.raises(SpkpeftError, match="'x y'"):  # the first bad id in input order
        write_scores(tmp_path / "ws", ["a", "x y", "b"], ["c", "c", "p q"], [0.1, 0.2, 0.3])
    rng = np.random.default_rng(0)
    utt1 = [f"s{i}" for i in rng.integers(0, 30, 500)]
    utt2 = [f"t{i}" for i in range(500)]
    scores = rng.standard_normal(500)
    write_scores(tmp_path / "scores", utt1, utt2, scores)
    expected = sorted(zip(utt1, utt2, scores.tolist()))
    assert [f"{a} {b} {s!r}" for a, b, s in expected] == (tmp_path / "scores").read_text().splitlines()
    assert len(read_scores(tmp_path / "scores")) == 500
