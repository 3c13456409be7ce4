"""Reliability through the recipe: SIGKILL at three moments then resume, and bad input at every stage.

Everything runs through ``run.sh`` in a copy of the recipe (``recipe`` fixture)
on a tiny mini corpus with a tiny model.  Each bad input must give a non-zero
exit, a last stderr line ``<tool>: error: <file>[:<line>]: ...`` and nothing
that a later stage would take for finished (``train_done.json``,
``xvector.scp``, ``results.json``).  The stage-2 checks themselves are in
tests/test_validate_data_dir.py; the single SIGKILL through the Python CLI in
tests/test_train.py.
"""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from conftest import REPO, copy_recipe, run_sh, write_tone
from spkpeft.engine.checkpoint import TEST_KILL_ENV, load_checkpoint, save_atomic
from spkpeft.errors import SpkpeftError
from spkpeft.tasks.config import load_config
from spkpeft.data.crops import BalancedBatchSampler
from spkpeft.tasks.sv.data import split_training_data
from spkpeft.io.datadir import read_data_dir, write_data_dir
from spkpeft.tasks.experiment import prepare_experiment
from test_train import SMALL

MINI_OPTS = "--n-train-spk 6 --n-test-spk 2 --n-sessions 2 --n-utts 2 --min-dur 0.8 --max-dur 1.2"
EPOCHS = 4  # 3 steps an epoch (12 training utterances, batches of 4): 12 steps
ENV = {"OMP_NUM_THREADS": "1"}
TIMING_COLUMNS = ("utts_per_s", "peak_memory_mb", "epoch_seconds")


# ---------------------------------------------------------------- helpers

def write_config(path: Path, recipe: Path, **extra) -> Path:
    """A config on the recipe copy's conf/mini.yaml (a snapshot: the checkout's may change meanwhile)
    with the tiny test model, deterministic, saving every step."""
    nested: dict = {"base": str(recipe / "conf" / "mini.yaml")}
    values = {**SMALL, "train.deterministic": True, "train.save_every_steps": 1, "train.epochs": EPOCHS, **extra}
    for key, value in values.items():
        section, name = key.split(".", 1)
        nested.setdefault(section, {})[name] = value
    path.write_text(yaml.safe_dump(nested))
    return path


def last_line(res) -> str:
    lines = res.stderr.strip().splitlines()
    return lines[-1] if lines else ""


def assert_one_line_error(res, tool: str, *fragments: str) -> str:
    assert res.returncode != 0, res.stderr[-3000:]
    line = last_line(res)
    assert line.startswith(f"{tool}: error: "), res.stderr[-3000:]
    for fragment in fragments:
        assert fragment in line, line
    return line


def assert_nothing_finished(exp: Path, checkpoints: bool = False) -> None:
    """No output that a later stage (or steps/compare.sh) would take for finished."""
    assert not (exp / "train_done.json").exists()
    assert not (exp / "results.json").exists()
    assert not list(exp.glob("embeddings/*/xvector.scp"))
    if not checkpoints:
        assert not list(exp.glob("checkpoints/*.pt"))


def load_every_checkpoint(ckpt_dir: Path) -> dict[str, dict]:
    """torch.load every ``*.pt`` of ``ckpt_dir``: each must be complete."""
    out = {}
    for path in sorted(ckpt_dir.glob("*.pt")):
        try:
            out[path.name] = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as err:  # pragma: no cover - the failure being tested for
            pytest.fail(f"{path} is not a complete checkpoint: {type(err).__name__}: {err}")
    return out


def trainer_pid(root: int) -> int | None:
    """The ``python -m spkpeft.bin.train`` process among the descendants of ``root``."""
    children: dict[int, list[int]] = {}
    cmdlines: dict[int, bytes] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdlines[int(entry.name)] = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        if b"-m\0spkpeft.bin.train\0" in cmdlines.get(pid, b""):
            return pid
        todo += children.get(pid, [])
    return None


def stage3_popen(recipe: Path, args: list[str], log: Path, extra_env: dict | None = None) -> subprocess.Popen:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env["PATH"]
    env.update(ENV)
    env.pop(TEST_KILL_ENV, None)
    env.update(extra_env or {})
    with open(log, "w") as err:
        return subprocess.Popen(["bash", str(recipe / "run.sh"), "--stage", "3", "--stop-stage", "3", *args],
                                cwd=recipe, env=env, stdout=subprocess.DEVNULL, stderr=err)


def kill_trainer_when(proc: subprocess.Popen, ckpt_dir: Path, ready, timeout: float = 300) -> None:
    """Poll the checkpoints (each must load) until ``ready(checkpoints)``, then SIGKILL the trainer."""
    deadline = time.time() + timeout
    while proc.poll() is None:
        assert time.time() < deadline, "timed out waiting for the moment to kill"
        ckpts = load_every_checkpoint(ckpt_dir)
        if ready(ckpts):
            pid = trainer_pid(proc.pid)
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
                break
        time.sleep(0.02)
    else:
        pytest.fail("training ended before it could be killed")
    assert proc.wait(timeout=120) != 0


def epochs_csv(exp: Path) -> list[dict]:
    """train_epochs.csv without its timing columns (they differ between runs)."""
    with open(exp / "train_epochs.csv", newline="") as f:
        return [{k: v for k, v in row.items() if k not in TIMING_COLUMNS} for row in csv.DictReader(f)]


def first_batch_utt(config: Path, train_dir: Path) -> tuple[str, str]:
    """``(utt, path)`` of the first utterance the trainer reads (first item of epoch 1's first batch)."""
    cfg = load_config(config)
    split = split_training_data(read_data_dir(train_dir), cfg.task, cfg.train.seed)
    sampler = BalancedBatchSampler([u[2] for u in split.train_utts], cfg.data.batch_size, cfg.train.seed)
    index, _ = sampler.epoch_batches(0)[0][0]
    utt, path, _ = split.train_utts[index]
    return utt, path


def set_wav(data_dir: Path, utt: str, path: Path | str) -> int:
    """Point ``utt`` of ``wav.scp`` at ``path``; returns its line number."""
    lines = (data_dir / "wav.scp").read_text().splitlines()
    number = next(i for i, line in enumerate(lines, 1) if line.split(maxsplit=1)[0] == utt)
    lines[number - 1] = f"{utt} {path}"
    (data_dir / "wav.scp").write_text("".join(line + "\n" for line in lines))
    return number


def own_recipe(tmp_path: Path, prepared: Path) -> Path:
    """A recipe copy of its own with the prepared data/mini (audio shared, absolute paths)."""
    dest = tmp_path / "recipe"
    dest.mkdir()
    copy_recipe(dest)
    shutil.copytree(prepared / "data" / "mini", dest / "data" / "mini")
    return dest


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def prepared(recipe) -> Path:
    """The module's recipe copy with data/mini prepared and validated (stages 1-2)."""
    res = run_sh(recipe, "--stop-stage", "2", "--mini-opts", MINI_OPTS, "--exp", str(recipe / "exp" / "prep"))
    assert res.returncode == 0, res.stderr[-3000:]
    return recipe


@pytest.fixture(scope="module")
def config(prepared, tmp_path_factory) -> Path:
    return write_config(tmp_path_factory.mktemp("conf") / "tiny.yaml", prepared)


@pytest.fixture(scope="module")
def straight(prepared, config, tmp_path_factory) -> Path:
    """An uninterrupted ``./run.sh --stage 3`` run."""
    exp = tmp_path_factory.mktemp("straight") / "exp"
    res = run_sh(prepared, "--stage", "3", "--stop-stage", "3", "--config", str(config), "--exp", str(exp))
    assert res.returncode == 0, res.stderr[-3000:]
    return exp


# ---------------------------------------------------------------- SIGKILL and resume

def test_sigkill_at_three_moments_then_resume_equals_uninterrupted_run(prepared, config, straight, tmp_path):
    exp = tmp_path / "killed"
    ckpts = exp / "checkpoints"
    args = ["--config", str(config), "--exp", str(exp)]
    done = straight / "train_done.json"
    steps_per_epoch = yaml.safe_load(done.read_text())["steps"] // EPOCHS
    total = steps_per_epoch * EPOCHS
    assert steps_per_epoch >= 3

    # 1. early: as soon as the first last.pt exists
    proc = stage3_popen(prepared, args, tmp_path / "run1.log")
    kill_trainer_when(proc, ckpts, lambda c: "last.pt" in c)
    step1 = load_every_checkpoint(ckpts)["last.pt"]["step"]
    assert not (exp / "train_done.json").exists()

    # 2. mid-run: a few steps after the resumed one
    proc = stage3_popen(prepared, args, tmp_path / "run2.log")
    kill_trainer_when(proc, ckpts, lambda c: c["last.pt"]["step"] >= step1 + 3)
    assert "resumed from" in (tmp_path / "run2.log").read_text()
    last = load_every_checkpoint(ckpts)["last.pt"]
    step2, batch2 = last["step"], last["batch_in_epoch"]
    assert step1 < step2 < total and not (exp / "train_done.json").exists()

    # 3. during a checkpoint write: the epoch-end write of last.pt (after its train_epochs.csv row);
    #    last.pt is written once a step, so it is the (steps_per_epoch - batch2)-th from here
    nth = steps_per_epoch - batch2
    proc = stage3_popen(prepared, args, tmp_path / "run3.log", {TEST_KILL_ENV: f"{nth}:last.pt"})
    assert proc.wait(timeout=300) != 0
    partial = list(ckpts.glob(".last.pt.tmp*"))
    assert len(partial) == 1, list(ckpts.iterdir())
    with pytest.raises(Exception):
        torch.load(partial[0], map_location="cpu", weights_only=False)  # truncated: half written
    current = load_every_checkpoint(ckpts)  # the complete ones, partial ignored
    assert current["last.pt"]["step"] == step2 + nth - 1
    epoch_after = (step2 + nth) // steps_per_epoch  # logged to train_epochs.csv just before the kill
    assert current["last.pt"]["epoch"] == epoch_after - 1
    assert [int(r["epoch"]) for r in epochs_csv(exp)][-1] == epoch_after
    assert not (exp / "train_done.json").exists()

    # resume to the end
    res = run_sh(prepared, "--stage", "3", "--stop-stage", "3", *args)
    assert res.returncode == 0, res.stderr[-3000:]
    assert f"resumed from {ckpts / 'last.pt'}" in res.stderr
    assert f"removed {partial[0]}" in res.stderr
    assert not list(ckpts.glob(".*tmp*"))
    assert (exp / "train_done.json").is_file()

    ours, theirs = load_every_checkpoint(ckpts), load_every_checkpoint(straight / "checkpoints")
    assert sorted(ours) == sorted(theirs) == sorted(["best.pt", "last.pt", *(f"epoch_{e:03d}.pt" for e in range(1, EPOCHS + 1))])
    for name in ours:
        a, b = ours[name]["trainable"], theirs[name]["trainable"]
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), f"{name}: {key}"
    assert ours["last.pt"]["step"] == total
    # one row per epoch (the row logged before kill 3 is not repeated), same values as the straight run
    assert epochs_csv(exp) == epochs_csv(straight)


def test_save_atomic_failure_keeps_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "last.pt"
    save_atomic({"step": 1}, target)

    def broken_save(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("spkpeft.engine.checkpoint.torch.save", broken_save)
    with pytest.raises(SpkpeftError, match=rf"^{target}: cannot write it \(No space left on device\)"):
        save_atomic({"step": 2}, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]
    assert load_checkpoint(target) == {"step": 1}


# ---------------------------------------------------------------- bad input, stage 2 skipped

@pytest.mark.parametrize("kind,fragment", [  # missing audio: tests/test_train.py (CLI, mid-run)
    ("stereo", "expected mono audio, found 2 channels"),
    ("44k", "expected sample rate 16000 Hz, found 44100 Hz"),
])
def test_stage3_bad_audio_is_one_line_naming_the_file(prepared, config, tmp_path, kind, fragment):
    recipe = own_recipe(tmp_path, prepared)
    train = recipe / "data" / "mini" / "train"
    utt, _ = first_batch_utt(config, train)
    bad = tmp_path / "bad" / f"{kind}.wav"
    if kind == "stereo":
        write_tone(bad, seconds=1.0, channels=2)
    elif kind == "44k":
        write_tone(bad, seconds=1.0, sr=44100)
    set_wav(train, utt, bad)
    exp = tmp_path / "exp"
    res = run_sh(recipe, "--stage", "3", "--config", str(config), "--exp", str(exp))
    assert_one_line_error(res, "train", f"{bad}: {fragment}")
    assert_nothing_finished(exp)


@pytest.mark.parametrize("kind,fragment", [
    ("missing", "audio file does not exist"), ("empty", "audio file holds no samples"),
    ("corrupt", "cannot read audio header"), ("stereo", "expected mono audio, found 2 channels"),
    ("8k", "found 8000 Hz"), ("44k", "found 44100 Hz"),
])
def test_training_and_extraction_audio_reader_names_the_file(tmp_path, kind, fragment):
    """What stages 3 and 4 read audio with (the run.sh cases above show its error becoming the last line)."""
    from spkpeft.io.audio import read_audio
    from spkpeft.data.crops import load_utterance
    from spkpeft.errors import SpkpeftError

    path = tmp_path / "a b" / f"{kind}.wav"
    if kind == "empty":
        write_tone(path, seconds=0.0)
    elif kind == "corrupt":
        path.parent.mkdir()
        path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really")
    elif kind != "missing":
        write_tone(path, seconds=0.1, channels=2 if kind == "stereo" else 1,
                   sr={"8k": 8000, "44k": 44100}.get(kind, 16000))
    for reader in (read_audio, load_utterance):
        with pytest.raises(SpkpeftError) as err:
            reader(str(path))
        message = str(err.value)
        assert message.startswith(f"{path}: ") and fragment in message and "\n" not in message


def test_stage3_duplicate_utterance_is_one_line_naming_file_and_line(prepared, config, tmp_path):
    """Unsorted lists fail in the same reader (spkpeft.io.datadir.read_key_value; stage 2 tests cover both)."""
    recipe = own_recipe(tmp_path, prepared)
    utt2spk = recipe / "data" / "mini" / "train" / "utt2spk"
    lines = utt2spk.read_text().splitlines()
    lines.insert(3, lines[2])
    utt2spk.write_text("".join(line + "\n" for line in lines))
    exp = tmp_path / "exp"
    res = run_sh(recipe, "--stage", "3", "--config", str(config), "--exp", str(exp))
    assert_one_line_error(res, "train", "data/mini/train/utt2spk:4: duplicate key")
    assert_nothing_finished(exp)


def test_stage4_bad_test_audio_leaves_no_embeddings(prepared, straight, tmp_path):
    recipe = own_recipe(tmp_path, prepared)
    exp = tmp_path / "exp"
    shutil.copytree(straight, exp)
    test = recipe / "data" / "mini" / "test"
    utt = read_data_dir(test).utts[1]
    bad = write_tone(tmp_path / "bad" / "stereo.wav", seconds=1.0, channels=2)
    set_wav(test, utt, bad)
    res = run_sh(recipe, "--stage", "4", "--exp", str(exp))
    assert_one_line_error(res, "extract", f"{bad}: expected mono audio")
    assert not list(exp.glob("embeddings/*/xvector.scp")) and not (exp / "results.json").exists()


def test_stage5_trial_with_unknown_utterance_leaves_no_results(prepared, tmp_path):
    import kaldiio

    from spkpeft.tasks.experiment import prepare_experiment

    recipe = own_recipe(tmp_path, prepared)
    corpus = recipe / "data" / "mini"
    exp = tmp_path / "exp"
    emb_dir = exp / "embeddings" / "test"
    emb_dir.mkdir(parents=True)
    prepare_experiment(recipe / "conf" / "sv" / "mini.yaml", exp)  # stage 3's config.yaml (stage 5 reads the task)
    rng = np.random.default_rng(0)
    with kaldiio.WriteHelper(f"ark,scp:{emb_dir / 'xvector.ark'},{emb_dir / 'xvector.scp'}") as writer:
        for utt in read_data_dir(corpus / "test").utts:
            writer(utt, rng.standard_normal(8).astype(np.float32))
    trials = corpus / "trials" / "vox1_o"
    lines = trials.read_text().splitlines()
    lines[4] = lines[4].split()[0] + " id99999/nowhere/00001 nontarget"
    trials.write_text("".join(line + "\n" for line in lines))
    res = run_sh(recipe, "--stage", "5", "--exp", str(exp))
    assert_one_line_error(res, "evaluate", "data/mini/trials/vox1_o:5: no embedding for utterance 'id99999/nowhere/00001'")
    assert not (exp / "results.json").exists()
    assert not list(exp.glob("scores/*"))


def test_stage2_44k_audio_is_an_error_naming_file_and_line(prepared, tmp_path):
    recipe = own_recipe(tmp_path, prepared)
    test = recipe / "data" / "mini" / "test"
    utt = read_data_dir(test).utts[2]
    bad = write_tone(tmp_path / "bad" / "cd.wav", seconds=1.0, sr=44100)
    number = set_wav(test, utt, bad)
    res = run_sh(recipe, "--stage", "2", "--exp", str(tmp_path / "exp"))
    assert_one_line_error(res, "validate_data_dir", f"data/mini/test/wav.scp:{number}:", "found 44100 Hz")
    assert_nothing_finished(tmp_path / "exp")


# ---------------------------------------------------------------- odd but valid input

def test_single_utterance_speaker_short_utterance_and_spaces_train_with_notes(prepared, tmp_path):
    """A one-utterance training speaker (a warning in stage 2), an utterance shorter than the crop
    (repeated, with a warning naming it) and audio and experiment paths with spaces: all train."""
    recipe = own_recipe(tmp_path, prepared)
    config = write_config(tmp_path / "one epoch.yaml", prepared, **{"train.epochs": 1})
    cfg = load_config(config)
    corpus = recipe / "data" / "mini"
    data = read_data_dir(corpus / "train")
    audio = tmp_path / "audio with spaces"
    wav = {}
    for utt, path in data.wav.items():
        wav[utt] = str(audio / (utt.replace("/", " ") + ".wav"))
        Path(wav[utt]).parent.mkdir(exist_ok=True)
        shutil.copy(path, wav[utt])
    # keep one utterance of a training (not held-out) speaker
    train_spks = split_training_data(data, cfg.task, cfg.train.seed).speakers
    single = train_spks[1]
    dropped = data.spk2utt[single][1:]
    write_data_dir(corpus / "train", {u: p for u, p in wav.items() if u not in dropped},
                   {u: s for u, s in data.utt2spk.items() if u not in dropped})
    # shorten the first utterance read by the trainer below the 0.5 s crop
    short_utt, short_path = first_batch_utt(config, corpus / "train")
    assert " " in short_path
    write_tone(Path(short_path), seconds=0.3)

    exp = tmp_path / "my exp"
    res = run_sh(recipe, "--stage", "2", "--stop-stage", "3", "--config", str(config), "--exp", str(exp))
    assert res.returncode == 0, res.stderr[-3000:]
    spk_line = list(read_data_dir(corpus / "train").spk2utt).index(single) + 1
    assert (f"validate_data_dir: warning: data/mini/train/spk2utt:{spk_line}: speaker '{single}' has a single "
            "utterance") in res.stderr
    assert (f"{short_path}: utterance '{short_utt}' is shorter than the 0.5 s training crop; "
            "it is repeated to fill the crop") in res.stderr
    assert "too few utterances to hold 1 out for the validation loss" in (exp / "train.log").read_text()
    assert (exp / "train_done.json").is_file()


def test_single_utterance_speakers_are_not_reported_in_evaluation_dirs(prepared, tmp_path):
    recipe = own_recipe(tmp_path, prepared)
    test = recipe / "data" / "mini" / "test"
    data = read_data_dir(test)
    spk = next(iter(data.spk2utt))
    keep = {u for u in data.utts if data.utt2spk[u] != spk} | {data.spk2utt[spk][0]}
    write_data_dir(test, {u: p for u, p in data.wav.items() if u in keep},
                   {u: s for u, s in data.utt2spk.items() if u in keep})
    (recipe / "data" / "mini" / "trials" / "vox1_o").write_text(
        "".join(f"{a} {b} {'target' if data.utt2spk[a] == data.utt2spk[b] else 'nontarget'}\n"
                for a, b in [sorted(keep)[:2], sorted(keep)[1:3]]))
    res = run_sh(recipe, "--stage", "2", "--stop-stage", "2", "--exp", str(tmp_path / "exp"))
    assert res.returncode == 0, res.stderr[-3000:]
    assert "warning" not in res.stderr


# ---------------------------------------------------------------- config, upstream, experiment directory

@pytest.mark.parametrize("section,value,fragment", [
    ("train", {"epoch": 3}, "unknown key 'train.epoch'"),
    ("data", {"batch_size": "four"}, "key 'data.batch_size' must be int, got str"),
])
def test_stage3_bad_config_is_one_line_naming_file_and_key(prepared, tmp_path, section, value, fragment):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"base": str(prepared / "conf" / "mini.yaml"), section: value}))
    exp = tmp_path / "exp"
    res = run_sh(prepared, "--stage", "3", "--config", str(bad), "--exp", str(exp))
    # run.sh reads the config (its task.type) before any stage: the config error comes first
    assert_one_line_error(res, "config_value", f"{bad}: {fragment}")
    assert not (exp / "config.yaml").exists()
    assert_nothing_finished(exp)


@pytest.mark.parametrize("kind,fragment", [
    ("missing", "checkpoint file not found"),
    ("wrong_keys", "unrecognised checkpoint format (top-level keys: epoch, state_dict)"),
])
def test_stage3_bad_upstream_checkpoint_leaves_no_config(prepared, config, tmp_path, kind, fragment):
    upstream = tmp_path / "upstream.pt"
    if kind == "wrong_keys":
        torch.save({"state_dict": {"w": torch.zeros(2)}, "epoch": 3}, upstream)
    exp = tmp_path / "exp"
    res = run_sh(prepared, "--stage", "3", "--config", str(config), "--upstream", str(upstream), "--exp", str(exp))
    assert_one_line_error(res, "train", f"{upstream}: {fragment}")
    # nothing in exp/ stands in the way of the corrected command
    assert not (exp / "config.yaml").exists()
    assert_nothing_finished(exp)
    prepare_experiment(config, exp, write=False)


def test_stage3_exp_holding_a_different_config_is_refused_untouched(prepared, config, straight, tmp_path):
    other = write_config(tmp_path / "other.yaml", prepared, **{"train.epochs": EPOCHS + 1})
    before = {p: p.read_bytes() for p in [*straight.glob("checkpoints/*"), straight / "train_done.json",
                                          straight / "config.yaml", straight / "train_epochs.csv"]}
    res = run_sh(prepared, "--stage", "3", "--config", str(other), "--exp", str(straight))
    assert_one_line_error(res, "train", f"{straight / 'config.yaml'}: the experiment holds a different config "
                                        f"('train.epochs' differs from {other})")
    assert {p: p.read_bytes() for p in before} == before
    assert sorted(straight.glob("checkpoints/*")) == sorted(p for p in before if p.parent.name == "checkpoints")
