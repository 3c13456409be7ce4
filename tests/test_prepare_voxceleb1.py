"""VoxCeleb1 preparation on synthetic trees in the exact release layout."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

import sys

from conftest import REPO, run, write_tone
from spkpeft.io.datadir import read_data_dir

LIST_FILES = {
    "vox1_o": "veri_test.txt", "vox1_o_clean": "veri_test2.txt",
    "vox1_e": "list_test_all.txt", "vox1_e_clean": "list_test_all2.txt",
    "vox1_h": "list_test_hard.txt", "vox1_h_clean": "list_test_hard2.txt",
}


def make_tree(root: Path, speakers: list[str], sessions: int = 2, utts: int = 2) -> list[str]:
    """wav/<spk>/<sess>/<nnnnn>.wav for each speaker; returns the 'spk/sess/utt.wav' paths."""
    rels = []
    for spk in speakers:
        for s in range(sessions):
            for u in range(1, utts + 1):
                rel = f"{spk}/sess{s}AbCdEf_/{u:05d}.wav"
                write_tone(root / "wav" / rel, seconds=0.05)
                rels.append(rel)
    return rels


def write_list(path: Path, rels: list[str], every: int = 1) -> list[tuple[str, str, str]]:
    rows = []
    for a, b in itertools.combinations(rels, 2):
        rows.append(("1" if a.split("/")[0] == b.split("/")[0] else "0", a, b))
    rows = rows[::every]
    path.write_text("".join(f"{lab} {a} {b}\n" for lab, a, b in rows))
    return rows


def prepare(*args):
    return run([sys.executable, str(REPO / "local" / "prepare_voxceleb1.py"), *map(str, args)])


@pytest.fixture
def vox_tree(tmp_path: Path):
    root = tmp_path / "VoxCeleb1"
    all_spks = [f"id1{n:04d}" for n in range(270, 276)]
    rels = make_tree(root, all_spks)
    test_rels = [r for r in rels if r.split("/")[0] in all_spks[:2]]
    lists = {}
    for name, fname in LIST_FILES.items():
        pool = test_rels if name.startswith("vox1_o") else rels
        lists[name] = write_list(root / fname, pool, every=1 if name.endswith("clean") else 2)
    return root, all_spks, rels, lists


def test_all_six_lists(vox_tree, tmp_path):
    root, all_spks, rels, lists = vox_tree
    out = tmp_path / "data" / "voxceleb1"
    res = prepare(root, out)
    assert res.returncode == 0, res.stderr
    assert "no training set" in res.stdout  # E/H cover every speaker
    assert not (out / "train").exists()
    test = read_data_dir(out / "test")
    assert len(test.wav) == len(rels)
    assert sorted(test.spk2utt) == all_spks
    assert all(u.count("/") == 2 for u in test.wav)
    assert test.wav["id10270/sess0AbCdEf_/00001"].endswith("wav/id10270/sess0AbCdEf_/00001.wav")
    for name, rows in lists.items():
        lines = (out / "trials" / name).read_text().splitlines()
        assert lines == sorted(lines), name
        expected = sorted(f"{a[:-4]} {b[:-4]} {'target' if lab == '1' else 'nontarget'}" for lab, a, b in rows)
        assert lines == expected, name


def test_subset_of_lists_gives_train(vox_tree, tmp_path):
    root, all_spks, rels, _ = vox_tree
    out = tmp_path / "vox"
    res = prepare(root, out, "--lists", "vox1_o,vox1_o_clean")
    assert res.returncode == 0, res.stderr
    train, test = read_data_dir(out / "train"), read_data_dir(out / "test")
    assert sorted(test.spk2utt) == all_spks[:2]
    assert sorted(train.spk2utt) == all_spks[2:]
    assert not set(train.wav) & set(test.wav)
    assert sorted(p.name for p in (out / "trials").iterdir()) == ["vox1_o", "vox1_o_clean"]


def test_missing_wav_names_list_and_line(vox_tree, tmp_path):
    root, *_ = vox_tree
    (root / "wav" / "id10270" / "sess0AbCdEf_" / "00002.wav").unlink()
    out = tmp_path / "vox"
    res = prepare(root, out, "--lists", "vox1_o")
    assert res.returncode == 1
    err = res.stderr.strip()
    assert len(err.splitlines()) == 1
    assert "veri_test.txt:" in err and "not found under wav/" in err
    assert not out.exists()


def test_bad_label_names_line(vox_tree, tmp_path):
    root, *_ = vox_tree
    text = (root / "veri_test.txt").read_text().splitlines()
    text[2] = "2" + text[2][1:]
    (root / "veri_test.txt").write_text("\n".join(text) + "\n")
    res = prepare(root, tmp_path / "o", "--lists", "vox1_o")
    assert res.returncode == 1
    assert "veri_test.txt:3:" in res.stderr


def test_rerun_replaces_output_atomically(vox_tree, tmp_path):
    root, *_ = vox_tree
    out = tmp_path / "vox"
    assert prepare(root, out).returncode == 0
    res = prepare(root, out, "--lists", "vox1_o")
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in (out / "trials").iterdir()) == ["vox1_o"]
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(".")] == []
