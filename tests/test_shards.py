"""Sharded training data: packing (resumable, atomic, bad input), the sharded reader (every
utterance once over ranks x workers, crops equal to the per-file reader's, resume), training."""

from __future__ import annotations

import json
import sys
import tarfile
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import torch
from torch.utils.data import DataLoader

from conftest import REPO, python_module, run
from spkpeft.data import shards as sharded
from spkpeft.data.augment import AugmentConfig
from spkpeft.data.crops import CropDataset, collate_crops
from spkpeft.data.shards import ShardedCrops, resume_plan, round_robin_order, split_sizes
from spkpeft.errors import SpkpeftError
from spkpeft.io.datadir import read_data_dir, write_data_dir
from spkpeft.io.shards import pack_data_dir, read_shard, read_shard_set

N_SPK, N_UTT = 4, 4
CROP = 0.25


@pytest.fixture(scope="module")
def datadir(tmp_path_factory) -> Path:
    """4 speakers x 4 utterances of 0.3-0.5 s (VoxCeleb-style ids with '/'; wav and FLAC files)."""
    root = tmp_path_factory.mktemp("shards_data")
    rng = np.random.default_rng(0)
    wav, utt2spk = {}, {}
    for s in range(N_SPK):
        for u in range(N_UTT):
            utt = f"id{s:05d}/sess/{u:05d}"
            path = root / "audio" / f"{s}_{u}.{'flac' if u % 2 else 'wav'}"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(path), 0.1 * rng.standard_normal(int(16000 * rng.uniform(0.3, 0.5))), 16000, subtype="PCM_16")
            wav[utt], utt2spk[utt] = str(path), f"id{s:05d}"
    write_data_dir(root / "train", wav, utt2spk)
    return root / "train"


@pytest.fixture(scope="module")
def packed(datadir, tmp_path_factory) -> Path:
    """``datadir`` packed by the command-line tool into shards of about 3 utterances, 2 at a time."""
    out = tmp_path_factory.mktemp("packed") / "shards"
    res = python_module("spkpeft.bin.make_shards", "--data-dir", datadir, "--out", out,
                        "--utts-per-shard", "3", "--nj", "2")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == {"shards": 6, "utts": 16, "out": str(out), "list": str(out / "shards.list")}
    return out


def items_of(datadir: Path) -> list[tuple[str, str, int]]:
    data = read_data_dir(datadir)
    speakers = list(data.spk2utt)
    return [(u, p, speakers.index(data.utt2spk[u])) for u, p in data.wav.items()]


def reader(packed, items, rank=0, world=1, workers=1, batch=3, augment=None) -> ShardedCrops:
    crops = CropDataset(items, N_SPK, CROP, augment or AugmentConfig())
    return ShardedCrops(read_shard_set(packed), items, crops, batch_size=batch, seed=5, buffer_size=4,
                        rank=rank, world_size=world, num_workers=workers)


def as_worker(monkeypatch, worker: int, workers: int) -> None:
    """Make the reader believe it runs in DataLoader worker ``worker`` of ``workers``."""
    monkeypatch.setattr(sharded, "get_worker_info", lambda: SimpleNamespace(id=worker, num_workers=workers))


def test_packing_writes_complete_tar_shards_and_a_list(datadir, packed):
    data = read_data_dir(datadir)
    listed = (packed / "shards.list").read_text().split()
    assert listed == [f"shards/shard-{i:06d}.tar" for i in range(6)]
    shards = read_shard_set(packed)
    assert sorted(u for us in shards.utts for u in us) == sorted(data.wav)
    assert all(len(us) in (2, 3) for us in shards.utts)
    assert len({data.utt2spk[u] for u in shards.utts[0] + shards.utts[1]}) > 1  # random order: speakers mix
    for path, utts in zip(shards.paths, shards.utts):
        with tarfile.open(path) as tar:
            names = tar.getnames()
        assert names == [n for u in utts for n in (f"{u}.json", f"{u}.{Path(data.wav[u]).suffix[1:]}")]
        for utt, labels, audio in read_shard(path):
            assert labels == {"utt": utt, "spk": data.utt2spk[utt]}
            assert audio == Path(data.wav[utt]).read_bytes()  # --audio copy: the file's own bytes


@pytest.mark.parametrize("world,workers", [(1, 1), (2, 2)])
def test_an_epoch_yields_every_utterance_once_with_the_per_file_crop(datadir, packed, monkeypatch, world, workers):
    items = items_of(datadir)
    augment = AugmentConfig(speed_perturb=True, rawboost=5)
    reference = CropDataset(items, N_SPK, CROP, augment)
    index = {u: i for i, (u, _, _) in enumerate(items)}
    seen = []
    for rank in range(world):
        counts = []
        for worker in range(workers):
            as_worker(monkeypatch, worker, workers)
            ds = reader(packed, items, rank, world, workers, augment=augment)
            ds.set_epoch(3)
            got = list(ds.iter_items())
            counts.append(len(got))
            for position, utt, crop, label in got:
                want_crop, want_label = reference[(index[utt], ds.crop_seed(3, position))]
                assert label == want_label and torch.equal(crop, want_crop), utt
            seen += [utt for _, utt, _, _ in got]
        assert counts == ds.worker_counts()
    assert Counter(seen) == Counter(u for u, _, _ in items)  # 16 utterances: none lost, none repeated


def test_uneven_ranks_repeat_the_first_items_and_run_equal_batches(datadir, packed, monkeypatch):
    items = items_of(datadir)[:-1]  # 15 training utterances (one held out) over 2 ranks
    as_worker(monkeypatch, 0, 1)
    per_rank = []
    for rank in range(2):
        ds = reader(packed, items, rank, 2)
        ds.set_epoch(0)
        per_rank.append([utt for _, utt, _, _ in ds.iter_items()])
        assert len(ds) == 3  # ceil(8 / 3) batches on both ranks
    first = ds.epoch_sequence(0)[0][1]
    assert [len(p) for p in per_rank] == [8, 8]
    assert Counter(per_rank[0] + per_rank[1]) == Counter([u for u, _, _ in items] + [first])


def test_dataloader_batches_and_resume_skip_exactly_the_batches_done(datadir, packed):
    items = items_of(datadir)
    ds = reader(packed, items, workers=2, batch=3)
    loader = lambda: DataLoader(ds, batch_size=3, num_workers=2, collate_fn=collate_crops)  # noqa: E731
    ds.set_epoch(1)
    full = list(loader())
    assert len(full) == len(ds) == 6  # workers of 8 items: 3 + 3 batches
    assert [b[0].shape[0] for b in full] == [3, 3, 3, 3, 2, 2]
    for done in (3, 4):
        ds.set_epoch(1, start_batch=done)
        resumed = list(loader())
        assert len(resumed) == len(ds) == 6 - done
        for (wa, la), (wb, lb) in zip(full[done:], resumed):
            assert torch.equal(wa, wb) and torch.equal(la, lb)
    ds.set_epoch(2)
    assert not torch.equal(torch.cat([b[0] for b in list(loader())[:2]]), torch.cat([b[0] for b in full[:2]]))


def test_round_robin_resume_plan_and_split_sizes():
    assert split_sizes(8, 3) == [3, 3, 2]
    assert round_robin_order([3, 3, 1]) == [0, 1, 2, 0, 1, 0, 1]
    assert resume_plan([3, 3, 1], 5) == ([2, 2, 1], 0)
    assert resume_plan([3, 3, 1], 4) == ([2, 1, 1], 1)
    assert resume_plan([3, 1], 4) == ([3, 1], 0)


def test_packing_resumes_and_refuses_other_options(datadir, tmp_path):
    out = tmp_path / "out"
    data = read_data_dir(datadir)
    pack_data_dir(data, out, utts_per_shard=5)
    before = {p.name: p.read_bytes() for p in (out / "shards").iterdir()}
    (out / "shards" / "shard-000001.tar").unlink()
    (out / "shards.list").unlink()
    stale = out / "shards" / ".shard-000001.tar.tmp999"
    stale.write_bytes(b"partial")
    with pytest.raises(SpkpeftError, match="packing did not finish"):
        read_shard_set(out)
    logs = []
    pack_data_dir(data, out, utts_per_shard=5, log=logs.append)
    assert not stale.exists() and any("3 already complete" in line for line in logs)
    assert {p.name: p.read_bytes() for p in (out / "shards").iterdir()} == before
    with pytest.raises(SpkpeftError, match=r"shards\.json: holds shards of other data or options \('num_shards'"):
        pack_data_dir(data, out, utts_per_shard=3)


def test_bad_audio_stops_packing_naming_wav_scp_and_leaves_no_list(datadir, tmp_path):
    bad = tmp_path / "bad"
    data = read_data_dir(datadir)
    wav = dict(data.wav)
    wav[list(wav)[2]] = str(tmp_path / "missing.wav")
    write_data_dir(bad, wav, data.utt2spk)
    res = python_module("spkpeft.bin.make_shards", "--data-dir", bad, "--out", tmp_path / "o")
    assert res.returncode == 1
    assert res.stderr.strip().splitlines()[-1].startswith(f"make_shards: error: {bad / 'wav.scp'}:3: utterance ")
    assert not (tmp_path / "o" / "shards.list").exists()


def test_truncated_shard_and_stale_shards_are_one_line_errors(datadir, packed, tmp_path):
    path = tmp_path / "cut.tar"
    path.write_bytes(read_shard_set(packed).paths[0].read_bytes()[:2000])  # inside the first audio member
    with pytest.raises(SpkpeftError, match=f"^{path}: not a readable shard"):
        list(read_shard(path))
    other = tmp_path / "other"
    data = read_data_dir(datadir)
    keep = list(data.wav)[1:]
    write_data_dir(other, {u: data.wav[u] for u in keep}, {u: data.utt2spk[u] for u in keep})
    with pytest.raises(SpkpeftError, match=r"shards\.json: the shards were packed from another version of"):
        read_shard_set(packed).check_matches(read_data_dir(other))


def test_training_on_shards_runs_an_epoch_on_two_ranks(datadir, packed, tmp_path):
    """steps/train.sh --shards with two CPU processes (gloo): each rank reads its own shards and
    runs the same number of batches (otherwise DDP would stall at the epoch's end)."""
    import yaml

    exp = tmp_path / "exp"
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({
        "base": str(REPO / "conf" / "sv" / "mini.yaml"),
        "upstream": {"name": "random:tiny_wavlm"},
        "head": {"channels": 16, "res2_scale": 2, "se_channels": 8, "attention_channels": 8},
        "data": {"crop_seconds": CROP, "batch_size": 4, "num_workers": 1, "shuffle_buffer": 3},
        "task": {"val_speakers": 0, "val_utts_per_speaker": 1, "val_max_seconds": 0.5},
        "train": {"epochs": 1, "log_every_steps": 1}}))
    res = run(["steps/train.sh", "--cpu-procs", "2", "--shards", str(packed), "--config", str(cfg),
               str(datadir), str(exp)], env={"OMP_NUM_THREADS": "1"}, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert yaml.safe_load((exp / "config.yaml").read_text())["data"]["shards"] == str(packed)
    done = json.loads((exp / "train_done.json").read_text())
    assert done["epochs"] == 1 and done["steps"] == 2  # 12 training utterances (4 held out): 6 per rank, batches 4 + 2


def test_steps_make_shards_wraps_the_tool(datadir, tmp_path):
    res = run(["steps/make_shards.sh", "--nj", "2", "--utts-per-shard", "8", str(datadir), str(tmp_path / "s")])
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "s" / "shards.list").read_text().split() == ["shards/shard-000000.tar", "shards/shard-000001.tar"]
    bad = run(["steps/make_shards.sh", str(datadir)])
    assert bad.returncode == 1 and "Usage:" in bad.stderr


def test_a_crop_decodes_only_its_window_with_the_whole_files_samples(datadir):
    """Without speed perturbation the crop is read as a window of the file (WAV and FLAC):
    the very samples (and the same draw) of cropping the whole decoded utterance."""
    from spkpeft.data.crops import crop_or_pad
    from spkpeft.io.audio import read_audio

    items = items_of(datadir)
    dataset = CropDataset(items, N_SPK, 0.4, AugmentConfig())  # some of the 0.3-0.5 s files are shorter
    lengths = set()
    for index, (_, path, label) in enumerate(items):
        for seed in (1, 2):
            wav = read_audio(path)
            lengths.add(wav.shape[0] >= dataset.length)
            want = crop_or_pad(wav, dataset.length, np.random.default_rng(seed))
            crop, got_label = dataset[(index, seed)]
            assert got_label == label and np.array_equal(crop.numpy(), want), path
    assert lengths == {True, False}
