"""A full disk (or any write error) at every write: the previous complete state stays, one line says
what to free, and the same command run again resumes.

Fault injection: :data:`spkpeft.io.atomic.FS` is replaced by :class:`Faults`, which counts the
writer's system calls (mkdir, open, each write, flush, fsync, close, rename, directory fsync) and
fails the k-th with ``ENOSPC`` (a failing write first writes half of its data, as a real one
does).  For every writer of the package -- checkpoint, embedding shard (ark + scp), score
file, results file, text and NumPy/audio files, tar shards, ``train_epochs.csv`` rows, a
prepared corpus and an exported package -- every k is tried in turn.  The pipeline tests
then stop a real training on a small file system (a 4 MB tmpfs when the test may mount one,
as root; otherwise the same byte budget enforced through :class:`Faults`), an extraction
in its second shard, stage 5's results and an export, and check that the rerun resumes and
ends exactly where an uninterrupted run ends.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import REPO, run
from spkpeft.engine.checkpoint import load_checkpoint, save_atomic
from spkpeft.engine.extract import ExtractConfig, extract_data_dir, write_ark_scp
from spkpeft.errors import SpkpeftError
from spkpeft.io import atomic
from spkpeft.io.atomic import WriteFailed, write_bytes_atomic, write_json_atomic, write_text_atomic
from spkpeft.io.audio import write_audio
from spkpeft.io.trials import write_scores
from test_train import SMALL, tiny_data, train_cmd  # noqa: F401  (tiny_data: a fixture)

#: the tiny trainings (on test_train's SMALL model): one epoch of 6 steps, last.pt every 2 steps
TRAIN = {"train.deterministic": True, "train.epochs": 1, "train.save_every_steps": 2}
#: every fault injected by this module's writer tests, by writer (reported in docs/reliability.md;
#: printed at the end of the module with -s)
INJECTED: dict[str, int] = {}


@pytest.fixture(scope="module", autouse=True)
def report_injected():
    yield
    print(f"\nfaults injected, {sum(INJECTED.values())} in all: " + json.dumps(INJECTED, indent=1))


class Faults(atomic.FileSystem):
    """The writer's system calls, counted; the ``fail_at``-th (1-based) raises ``OSError(code)``,
    and so does any write that takes the bytes written past ``capacity`` (a small disk)."""

    def __init__(self, fail_at: int | None = None, code: int = errno.ENOSPC, capacity: int | None = None,
                 only: str | None = None) -> None:
        self.ops: list[str] = []
        self.fail_at, self.code, self.capacity, self.only = fail_at, code, capacity, only
        self.written = 0
        self.failed: str | None = None

    def step(self, name: str, path: Path | None = None) -> None:
        if self.only is not None and (path is None or self.only not in str(path)):
            return
        self.ops.append(name)
        if len(self.ops) == self.fail_at:
            self.failed = name
            raise OSError(self.code, os.strerror(self.code))

    def mkdir(self, directory):
        self.step("mkdir", directory)
        super().mkdir(directory)

    def open(self, path, mode, **kwargs):
        self.step("open", path)
        return FaultyHandle(super().open(path, mode, **kwargs), self, Path(path))

    def fsync(self, handle):
        self.step("fsync", handle.path)
        super().fsync(handle)

    def replace(self, src, dest):
        self.step("replace", Path(dest))
        super().replace(src, dest)

    def fsync_dir(self, directory):
        self.step("fsync_dir", directory)
        super().fsync_dir(directory)


class FaultyHandle:
    """A file object whose ``write``/``flush``/``close`` are steps of :class:`Faults`."""

    def __init__(self, inner, faults: Faults, path: Path) -> None:
        self.inner, self.faults, self.path = inner, faults, path

    def write(self, data):
        size = len(data.encode() if isinstance(data, str) else memoryview(data).cast("B"))
        over = self.faults.capacity is not None and self.faults.written + size > self.faults.capacity
        try:
            self.faults.step("write", self.path)
        except OSError:
            self.inner.write(data[: len(data) // 2])  # a failing write writes part of its data
            raise
        if over:
            self.inner.write(data[: max(0, self.faults.capacity - self.faults.written)])
            self.faults.written = self.faults.capacity
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.faults.written += size
        return self.inner.write(data)

    def flush(self):
        self.faults.step("flush", self.path)
        self.inner.flush()

    def close(self):
        self.inner.close()
        self.faults.step("close", self.path)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (hidden temporaries included) and its bytes."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def assert_one_line(err: SpkpeftError, *paths: Path) -> str:
    """One line, naming one of ``paths`` or a file under one of them (a directory being replaced)."""
    message = str(err)
    named = message.split(": cannot write it (")[0]
    assert "\n" not in message and any(named == str(p) or named.startswith(f"{p}/") for p in paths), message
    return message


def restore(root: Path, state: dict[str, bytes]) -> None:
    """Make the files under ``root`` exactly ``state`` (see :func:`snapshot`)."""
    for rel in set(snapshot(root)) - set(state):
        (root / rel).unlink()
    for rel, data in state.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)


def unchanged(after: dict, old: dict, new: dict, failed: str) -> bool:
    """A failed write leaves the previous state; only a failed fsync of the directory, after the
    rename, may leave the complete new one."""
    return after == old or (failed == "fsync_dir" and after == new)


def every_fault(monkeypatch, name: str, root: Path, write, dest: Path | tuple, check=unchanged) -> int:
    """Run ``write()`` once per system call of the writer, failing that call with ENOSPC: each
    time the files under ``root`` must pass ``check(after, old, new, failed call)``, the error must
    be one line naming ``dest`` and the space it needs, and ``write()`` without faults must then
    complete to the same files as a run without a fault.  Returns the number of faults injected."""
    old = snapshot(root)
    clean = Faults()
    monkeypatch.setattr(atomic, "FS", clean)
    write()
    new = snapshot(root)
    assert new != old
    for k in range(1, len(clean.ops) + 1):
        restore(root, old)
        faults = Faults(fail_at=k)
        monkeypatch.setattr(atomic, "FS", faults)
        with pytest.raises(WriteFailed) as caught:
            write()
        message = assert_one_line(caught.value, *(dest if isinstance(dest, tuple) else (dest,)))
        assert "of free space" in message and " is free on " in message and "run the same command again" in message
        assert check(snapshot(root), old, new, faults.failed), (k, faults.failed)
        monkeypatch.setattr(atomic, "FS", Faults())
        write()  # space freed: the same call completes
        assert snapshot(root) == new, (k, faults.failed)
    INJECTED[name] = len(clean.ops)
    return len(clean.ops)


# ------------------------------------------------------------------ every writer, every call

def test_checkpoint_keeps_the_previous_one_at_every_fault(tmp_path, monkeypatch):
    ckpt = tmp_path / "checkpoints" / "last.pt"
    save_atomic({"step": 1, "w": torch.zeros(4)}, ckpt)
    n = every_fault(monkeypatch, "checkpoint (torch.save)", tmp_path,
                    lambda: save_atomic({"step": 2, "w": torch.arange(5000.0)}, ckpt), ckpt)
    assert n >= 8 and load_checkpoint(ckpt)["step"] == 2


def test_embedding_shard_is_whole_or_absent_at_every_fault(tmp_path, monkeypatch):
    ark, scp = tmp_path / "parts" / "part_00001.ark", tmp_path / "parts" / "part_00001.scp"
    vectors = np.arange(12, dtype=np.float32).reshape(3, 4)
    named = set()

    def no_scp_or_whole(after, old, new, failed):  # an scp only beside its complete ark
        named.add(failed)
        return "parts/part_00001.scp" not in after or after == new

    def write():
        try:
            write_ark_scp(ark, scp, ["a", "b", "c"], vectors)
        except WriteFailed as err:
            named.add(str(err).split(": cannot")[0])
            raise

    every_fault(monkeypatch, "embedding shard (ark + scp)", tmp_path, write, (ark, scp),
                check=lambda after, old, new, failed: no_scp_or_whole(after, old, new, failed)
                and after.get("parts/part_00001.ark", new["parts/part_00001.ark"]) == new["parts/part_00001.ark"])
    assert {str(ark), str(scp)} <= named  # the faults while writing the scp name the scp
    import kaldiio
    assert np.array_equal(np.stack([v for _, v in kaldiio.load_scp_sequential(str(scp))]), vectors)


def test_score_and_results_files_at_every_fault(tmp_path, monkeypatch):
    scores = tmp_path / "scores" / "vox1_o.score"
    write_scores(scores, ["a", "b"], ["c", "d"], [0.5, -0.25])
    every_fault(monkeypatch, "score file", tmp_path,
                lambda: write_scores(scores, ["a", "b", "e"], ["c", "d", "f"], [0.1, 0.2, 0.3]), scores)
    results = tmp_path / "results.json"
    write_json_atomic(results, [{"task": "sv", "eer_pct": 10.0}])
    every_fault(monkeypatch, "results.json", tmp_path,
                lambda: write_json_atomic(results, [{"task": "sv", "eer_pct": 5.0}]), results)
    assert json.loads(results.read_text())[0]["eer_pct"] == 5.0


def test_numpy_audio_and_text_writers_at_every_fault(tmp_path, monkeypatch):
    npy = tmp_path / "mean.npy"
    every_fault(monkeypatch, "NumPy array (np.save)", tmp_path,
                lambda: write_bytes_atomic(npy, lambda h: np.save(h, np.arange(300.0))), npy)
    wav = tmp_path / "clip.wav"
    every_fault(monkeypatch, "audio (soundfile)", tmp_path, lambda: write_audio(wav, np.zeros(800)), wav)
    text = tmp_path / "wav.scp"
    every_fault(monkeypatch, "text table", tmp_path, lambda: write_text_atomic(text, ["a /x.wav", "b /y.wav"]), text)


def test_epoch_rows_and_tar_shards_at_every_fault(tmp_path, monkeypatch):
    from spkpeft.engine.trainer import append_csv, drop_rows_after
    from spkpeft.io.shards import write_shard

    rows = tmp_path / "train_epochs.csv"
    append_csv(rows, {"epoch": 1, "loss": 0.5}, ["epoch", "loss"])

    def end_of_epoch_2():  # as a run resumed from the end of epoch 1 does: drop later rows, append
        drop_rows_after(rows, 1)
        append_csv(rows, {"epoch": 2, "loss": 0.25}, ["epoch", "loss"])

    every_fault(monkeypatch, "train_epochs.csv row", tmp_path, end_of_epoch_2, rows)
    assert rows.read_text().splitlines() == ["epoch,loss", "1,0.5", "2,0.25"]
    shard = tmp_path / "shards" / "shard_000000.tar"
    every_fault(monkeypatch, "tar shard", tmp_path,
                lambda: write_shard(shard, [("u1", {"spk": 0}, b"RIFF" * 100, "wav")]), shard)


def test_prepared_corpus_is_replaced_whole_at_every_fault(tmp_path, monkeypatch):
    from spkpeft.io.corpora import write_corpus

    out = tmp_path / "data" / "mini"
    dirs = {"train": ({"a": "/a.wav", "b": "/b.wav"}, {"a": "s1", "b": "s2"})}
    write_corpus(out, dirs, {"t": [("a", "b", "nontarget")]})
    every_fault(monkeypatch, "prepared corpus (directory)", tmp_path,
                lambda: write_corpus(out, {"train": ({"a": "/a.wav", "c": "/c.wav"}, {"a": "s1", "c": "s3"})},
                                     {"t": [("a", "c", "nontarget")]}), out)


def test_a_read_error_of_a_source_is_not_called_a_write_error(tmp_path, monkeypatch):
    def produce(handle):
        open(tmp_path / "elsewhere" / "missing.bin", "rb")

    with pytest.raises(FileNotFoundError):
        write_bytes_atomic(tmp_path / "out.bin", produce)
    assert not list(tmp_path.iterdir())


def test_other_write_errors_name_the_cause(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic, "FS", Faults(fail_at=3, code=errno.EIO))
    with pytest.raises(WriteFailed, match=r"results.json: cannot write it \(Input/output error\); the previous "
                                          r"state is unchanged"):
        write_json_atomic(tmp_path / "results.json", {"a": 1})
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------ pipelines

@pytest.fixture(scope="module")
def straight(tiny_data, tmp_path_factory, isolated_model_cache) -> Path:  # noqa: F811
    """An uninterrupted tiny training (the reference of the resumed ones)."""
    exp = tmp_path_factory.mktemp("straight") / "exp"
    res = run(train_cmd("mini.yaml", tiny_data, exp, TRAIN), env={"OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr[-2000:]
    return exp


def try_mount(directory: Path, size: str) -> bool:
    """Mount a tmpfs of ``size`` on ``directory`` (root only); whether it worked.
    ``SPKPEFT_TEST_NO_MOUNT=1`` takes the other branch (to check it by hand)."""
    directory.mkdir(parents=True, exist_ok=True)
    if os.environ.get("SPKPEFT_TEST_NO_MOUNT"):
        return False
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)],
                         capture_output=True, text=True)
    return res.returncode == 0


def train_in_process(cmd: list[str], capacity: int | None, monkeypatch) -> tuple[int, str]:
    """``python -m spkpeft.bin.train`` in this process, its disk limited to ``capacity`` bytes
    through :class:`Faults`: ``(exit status, last stderr line)`` as the command line would give."""
    from spkpeft.bin import train

    monkeypatch.setattr(atomic, "FS", Faults(capacity=capacity))
    try:
        train.main(cmd[cmd.index("--config"):])
    except SpkpeftError as err:
        return 1, f"train: error: {err}"
    finally:
        monkeypatch.setattr(atomic, "FS", atomic.FileSystem())
    return 0, ""


def test_training_on_a_full_small_disk_stops_in_one_line_and_resumes(tiny_data, straight, tmp_path,  # noqa: F811
                                                                       monkeypatch, isolated_model_cache):
    small = tmp_path / "small"
    # last.pt of this model is 2.8 MB: the first fits, the second (beside the first) does not
    mounted = try_mount(small, "4m")
    print(f"tmpfs of 4 MB mounted: {mounted}")
    try:
        exp = small / "exp"
        cmd = train_cmd("mini.yaml", tiny_data, exp, TRAIN)
        if mounted:
            res = run(cmd, env={"OMP_NUM_THREADS": "1"})
            code, stderr = res.returncode, res.stderr
            last = stderr.strip().splitlines()[-1]
        else:
            code, last = train_in_process(cmd, 4 << 20, monkeypatch)
            stderr = last
        assert code == 1 and "Traceback" not in stderr, stderr[-3000:]
        ckpt = exp / "checkpoints" / "last.pt"
        assert last.startswith(f"train: error: {exp}/checkpoints/"), last
        assert "No space left on device" in last and "of free space" in last and "run the same command again" in last
        assert not [p.name for p in (exp / "checkpoints").iterdir() if p.name.startswith(".")]
        step = load_checkpoint(ckpt)["step"]  # the previous complete state
        assert not (exp / "train_done.json").exists()
        if mounted:
            assert subprocess.run(["mount", "-o", "remount,size=32m", str(small)]).returncode == 0
            resumed = run(cmd, env={"OMP_NUM_THREADS": "1"})
            assert resumed.returncode == 0, resumed.stderr[-2000:]
            assert f"resumed from {ckpt}: epoch" in resumed.stderr and f"step {step}" in resumed.stderr
        else:
            assert train_in_process(cmd, None, monkeypatch) == (0, "")
        a, b = load_checkpoint(straight / "checkpoints" / "last.pt"), load_checkpoint(ckpt)
        for key in a["trainable"]:
            assert torch.equal(a["trainable"][key], b["trainable"][key]), key
        assert a["step"] == b["step"]
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(small)], check=True)


def test_extraction_stopped_in_its_second_shard_resumes_there(straight, tiny_data, tmp_path, monkeypatch,  # noqa: F811
                                                              isolated_model_cache):
    from spkpeft.tasks.experiment import load_trained_model

    model, cfg, source = load_trained_model(straight, "last", torch.device("cpu"))
    cfg_x = ExtractConfig(shard_size=4)
    data = tiny_data / "test"
    ref = tmp_path / "ref"
    extract_data_dir(model, data, ref, cfg_x, torch.device("cpu"), source)
    # the second shard's ark write, its scp's rename, and the final xvector.scp
    for i, (only, k) in enumerate((("part_00001.ark", 2), ("part_00001.scp", 6), ("xvector.scp", 2))):
        out = tmp_path / f"out{i}"
        monkeypatch.setattr(atomic, "FS", Faults(fail_at=k, only=only))
        with pytest.raises(WriteFailed, match=f"{only}: cannot write it .*of free space"):
            extract_data_dir(model, data, out, cfg_x, torch.device("cpu"), source)
        monkeypatch.setattr(atomic, "FS", atomic.FileSystem())
        assert (out / "parts" / "part_00000.scp").is_file() and not (out / "xvector.scp").exists()
        first = (out / "parts" / "part_00000.ark").stat().st_mtime_ns
        done = []
        extract_data_dir(model, data, out, cfg_x, torch.device("cpu"), source, progress=lambda i, n: done.append(i))
        assert done == ([] if only == "xvector.scp" else [2])  # the first shard is not redone
        assert (out / "parts" / "part_00000.ark").stat().st_mtime_ns == first
        assert [p.read_bytes() for p in sorted((out / "parts").glob("*.ark"))] == \
            [p.read_bytes() for p in sorted((ref / "parts").glob("*.ark"))]
        INJECTED[f"extraction pipeline ({only})"] = INJECTED.get(f"extraction pipeline ({only})", 0) + 1


def test_export_keeps_the_previous_package(straight, tmp_path, monkeypatch, isolated_model_cache):
    from spkpeft.inference.package import export_package, read_package_info

    out = tmp_path / "pkg"
    export_package(straight, out, adapter_only=True, checkpoint="best")
    before = snapshot(tmp_path)
    clean = Faults()
    monkeypatch.setattr(atomic, "FS", clean)
    export_package(straight, out, adapter_only=True, checkpoint="last")
    after = snapshot(tmp_path)
    n = len(clean.ops)
    for k in sorted({1, 3, n // 2, n - 4, n - 1}):  # temp dir, a file's write, package.json, the final rename
        for rel in set(snapshot(tmp_path)):
            (tmp_path / rel).unlink()
        for rel, data in before.items():
            (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / rel).write_bytes(data)
        monkeypatch.setattr(atomic, "FS", Faults(fail_at=k))
        with pytest.raises(WriteFailed) as caught:
            export_package(straight, out, adapter_only=True, checkpoint="last")
        assert str(caught.value).startswith(f"{out}"), caught.value
        assert "\n" not in str(caught.value) and "of free space" in str(caught.value)
        assert snapshot(tmp_path) == before, k
        assert read_package_info(out)["checkpoint"].endswith("best.pt")
        monkeypatch.setattr(atomic, "FS", atomic.FileSystem())
        INJECTED["export pipeline"] = INJECTED.get("export pipeline", 0) + 1
    export_package(straight, out, adapter_only=True, checkpoint="last")
    assert {k: v for k, v in snapshot(tmp_path).items() if k != "pkg/package.json"} == \
        {k: v for k, v in after.items() if k != "pkg/package.json"}


def test_stage5_results_file_is_kept_and_rewritten(tmp_path, monkeypatch):
    """Stage 5 (``spkpeft.bin.score``) stopped while writing results.json: the old results stay,
    the error is one line, the rerun writes the same file as a run without a fault."""
    from spkpeft.bin import score

    trials = tmp_path / "trials" / "vox1_o"
    trials.parent.mkdir()
    trials.write_text("a b target\na c nontarget\nb c nontarget\n")
    emb = tmp_path / "emb"
    write_ark_scp(emb.with_suffix(".ark"), emb.with_suffix(".scp"), ["a", "b", "c"],
                  np.array([[1, 0], [1, 0.1], [0, 1]], dtype=np.float32))
    results = tmp_path / "exp" / "results.json"
    args = ["--embeddings", str(emb.with_suffix(".scp")), "--trials", str(trials), "--score-dir",
            str(tmp_path / "exp" / "scores"), "--results", str(results), "--bootstrap", "0"]
    score.main(args)
    clean = results.read_bytes()
    results.write_text("[]\n")  # an older run's results
    for k in (1, 2, 4, 6):  # open, write, fsync, rename of results.json
        monkeypatch.setattr(atomic, "FS", Faults(fail_at=k, only="results.json"))
        with pytest.raises(WriteFailed, match=f"^{results}: cannot write it .*of free space"):
            score.main(args)
        assert results.read_text() == "[]\n" and not [p for p in results.parent.iterdir() if p.name.startswith(".")]
        INJECTED["stage 5 results.json"] = INJECTED.get("stage 5 results.json", 0) + 1
    monkeypatch.setattr(atomic, "FS", atomic.FileSystem())
    score.main(args)
    assert results.read_bytes() == clean
