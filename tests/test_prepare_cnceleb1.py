"""CN-Celeb1 preparation on synthetic trees in the released layout; the validator's enroll case."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from conftest import REPO, python_module, run, run_sh, write_tone
from spkpeft.io.datadir import read_data_dir, write_data_dir

DEV_SPKS = ["id00000", "id00001", "id00002"]
EVAL_SPKS = ["id00800", "id00801"]
TEST_FILES = {  # eval speaker -> test file stems
    "id00800": ["id00800-singing-01-001", "id00800-speech-02-003", "id00800-live_broadcast-01-002"],
    "id00801": ["id00801-singing-03-001", "id00801-speech-01-001"],
}


def make_tree(root: Path, dev_list: bool = True, ext: str = ".flac") -> list[tuple[str, str, str]]:
    """A CN-Celeb1 tree (eval speakers also under data/, as released); returns the trials.lst rows."""
    for spk in DEV_SPKS + EVAL_SPKS:
        for name in ("interview-01-001", "singing-02-001", "speech-01-002"):
            write_tone(root / "data" / spk / f"{name}{ext}", seconds=0.05)
    if dev_list:
        (root / "dev").mkdir(parents=True)
        (root / "dev" / "dev.lst").write_text("".join(s + "\n" for s in DEV_SPKS))
    lists = root / "eval" / "lists"
    lists.mkdir(parents=True)
    enroll_lines, test_lines, rows = [], [], []
    for spk in EVAL_SPKS:
        write_tone(root / "eval" / "enroll" / f"{spk}-enroll{ext}", seconds=0.1)
        enroll_lines.append(f"{spk}-enroll enroll/{spk}-enroll{ext}\n")
    for stems in TEST_FILES.values():
        for stem in stems:
            write_tone(root / "eval" / "test" / f"{stem}{ext}", seconds=0.05)
            test_lines.append(f"test/{stem}{ext}\n")
    for spk in reversed(EVAL_SPKS):  # unsorted on purpose
        for stems in TEST_FILES.values():
            for stem in stems:
                rows.append((f"{spk}-enroll", f"test/{stem}{ext}", "1" if stem.startswith(spk) else "0"))
    (lists / "enroll.lst").write_text("".join(enroll_lines))
    (lists / "test.lst").write_text("".join(test_lines))
    (lists / "trials.lst").write_text("".join(" ".join(r) + "\n" for r in rows))
    return rows


def prepare(*args):
    return run([sys.executable, str(REPO / "local" / "prepare_cnceleb1.py"), *map(str, args)])


def expected_trials(rows) -> list[str]:
    labels = {"1": "target", "0": "nontarget"}
    return sorted(f"{e} {Path(t).name.rsplit('.', 1)[0]} {labels[lab]}" for e, t, lab in rows)


@pytest.mark.parametrize("dev_list", [True, False])
def test_layout_counts_ids_and_labels(tmp_path, dev_list):
    root = tmp_path / "CN-Celeb_flac"
    rows = make_tree(root, dev_list=dev_list)
    out = tmp_path / "data" / "cnceleb1"
    res = prepare(root, out)
    assert res.returncode == 0, res.stderr

    train, enroll, test = (read_data_dir(out / d) for d in ("train", "enroll", "test"))
    assert sorted(train.spk2utt) == DEV_SPKS  # eval speakers under data/ are left out
    assert len(train.wav) == 3 * len(DEV_SPKS)
    assert "id00000/singing-02-001" in train.wav
    assert train.wav["id00000/singing-02-001"].endswith("data/id00000/singing-02-001.flac")
    assert dict(enroll.utt2spk) == {f"{s}-enroll": f"{s}-enroll" for s in EVAL_SPKS}
    assert enroll.wav["id00800-enroll"].endswith("eval/enroll/id00800-enroll.flac")
    assert sorted(test.wav) == sorted(s for stems in TEST_FILES.values() for s in stems)
    assert all(test.utt2spk[u] == u.split("-")[0] for u in test.wav)

    lines = (out / "trials" / "cnc_eval").read_text().splitlines()
    assert lines == expected_trials(rows)
    assert sum(line.endswith(" target") for line in lines) == 5
    assert [p.name for p in (out / "trials").iterdir()] == ["cnc_eval"]
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(".")] == []

    res = python_module("spkpeft.bin.validate_data_dir", out)  # enroll ids accepted, FLAC headers read
    assert res.returncode == 0, res.stderr
    assert "cnc_eval: 10 trials: OK" in res.stdout


def test_parent_of_release_dir_and_wav_listed_as_flac(tmp_path):
    root = tmp_path / "release"
    make_tree(root / "CN-Celeb_flac")
    lists = root / "CN-Celeb_flac" / "eval" / "lists"
    for name in ("enroll.lst", "test.lst", "trials.lst"):  # the older release names .wav files
        (lists / name).write_text((lists / name).read_text().replace(".flac", ".wav"))
    out = tmp_path / "cnc"
    res = prepare(root, out)
    assert res.returncode == 0, res.stderr
    assert read_data_dir(out / "test").wav["id00801-speech-01-001"].endswith(".flac")


def test_per_genre_lists_through_the_shell_wrapper(tmp_path):
    root = tmp_path / "cnc_root"
    rows = make_tree(root, ext=".wav")
    rows = [r for r in rows if r[:2] != ("id00801-enroll", "test/id00800-live_broadcast-01-002.wav")]
    (root / "eval" / "lists" / "trials.lst").write_text("".join(" ".join(r) + "\n" for r in rows))
    res = run(["bash", str(REPO / "local" / "prepare_cnceleb1.sh"), "--per-genre", "true", "cnc_root", "out"],
              cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    trials = tmp_path / "out" / "trials"
    # live_broadcast has only targets (one test file of id00800) -> skipped with a note
    assert sorted(p.name for p in trials.iterdir()) == ["cnc_eval", "cnc_eval_singing", "cnc_eval_speech"]
    assert "cnc_eval_live_broadcast skipped" in res.stdout
    singing = (trials / "cnc_eval_singing").read_text().splitlines()
    assert singing == [line for line in expected_trials(rows) if "-singing-" in line.split()[1]]
    assert len(singing) == 4


@pytest.mark.parametrize("edit, where, message", [
    (lambda t: t.replace("id00801-enroll test/id00800-singing", "id00999-enroll test/id00800-singing", 1),
     "trials.lst:1", "unknown enrollment id 'id00999-enroll'"),
    (lambda t: t.replace(" 1\n", " yes\n", 1), "trials.lst:4", "label must be 1 or 0"),
    (lambda t: t.replace("id00800-speech-02-003", "id00800-speech-09-009", 1), "trials.lst:2",
     "not in test.lst"),
])
def test_bad_trials_name_file_and_line(tmp_path, edit, where, message):
    root = tmp_path / "cnc"
    make_tree(root)
    trials = root / "eval" / "lists" / "trials.lst"
    trials.write_text(edit(trials.read_text()))
    out = tmp_path / "out"
    res = prepare(root, out)
    assert res.returncode == 1
    err = res.stderr.strip()
    assert len(err.splitlines()) == 1 and where in err and message in err, err
    assert not out.exists()


def test_missing_audio_names_list_and_line(tmp_path):
    root = tmp_path / "cnc"
    make_tree(root)
    (root / "eval" / "test" / "id00801-singing-03-001.flac").unlink()
    res = prepare(root, tmp_path / "out")
    assert res.returncode == 1
    assert "test.lst:4:" in res.stderr and "not found" in res.stderr
    (root / "eval" / "lists" / "test.lst").unlink()  # without test.lst, trials.lst names the file
    res = prepare(root, tmp_path / "out")
    assert res.returncode == 1
    assert "trials.lst:4:" in res.stderr and "id00801-singing-03-001.flac' not found" in res.stderr


def test_missing_lists_dir_is_explained(tmp_path):
    res = prepare(tmp_path, tmp_path / "out")
    assert res.returncode == 1 and "no eval/lists/" in res.stderr


# --- the stage-2 validator: the first trial field may be a speaker of enroll/ -----------------

def make_enroll_corpus(root: Path) -> Path:
    corpus = root / "data"
    audio = root / "audio"
    dirs = {"enroll": {"e1-a": "e1", "e1-b": "e1", "e2-a": "e2"}, "test": {"t-1": "x", "t-2": "y"}}
    for name, u2s in dirs.items():
        write_data_dir(corpus / name, {u: str(write_tone(audio / f"{u}.wav", seconds=0.05)) for u in u2s}, u2s)
    (corpus / "trials").mkdir()
    (corpus / "trials" / "t").write_text("e1 t-1 target\ne1 t-2 nontarget\ne2-a t-2 target\n")
    return corpus


def test_validator_accepts_enrollment_ids(tmp_path):
    corpus = make_enroll_corpus(tmp_path)
    res = python_module("spkpeft.bin.validate_data_dir", corpus)
    assert res.returncode == 0, res.stderr
    assert "t: 3 trials: OK" in res.stdout


@pytest.mark.parametrize("text, line, token", [
    ("e1 t-1 target\nt-1 e1 nontarget\n", 2, "e1"),     # an enrollment id only in the first field
    ("e1 t-1 target\ne3 t-2 nontarget\n", 2, "e3"),     # an unknown enrollment id
])
def test_validator_rejects_misplaced_or_unknown_enrollment_ids(tmp_path, text, line, token):
    corpus = make_enroll_corpus(tmp_path)
    (corpus / "trials" / "t").write_text(text)
    res = python_module("spkpeft.bin.validate_data_dir", corpus)
    assert res.returncode == 1
    assert f"trials/t:{line}: utterance '{token}' is in no evaluation data directory" in res.stderr


def test_speaker_ids_of_other_dirs_are_not_enrollment_ids(tmp_path):
    corpus = make_enroll_corpus(tmp_path)
    (corpus / "enroll").rename(corpus / "dev")
    res = python_module("spkpeft.bin.validate_data_dir", corpus)
    assert res.returncode == 1 and "trials/t:1: utterance 'e1'" in res.stderr


def test_run_sh_cnceleb1_stages_1_2(recipe, tmp_path):
    make_tree(tmp_path / "CN-Celeb_flac")
    res = run_sh(recipe, "--corpus", "cnceleb1", "--data-root", str(tmp_path / "CN-Celeb_flac"),
                 "--cnc-per-genre", "true", "--stop-stage", "2", "--exp", str(tmp_path / "exp"))
    assert res.returncode == 0, res.stderr
    data = recipe / "data" / "cnceleb1"
    assert sorted(p.name for p in data.iterdir() if not p.name.startswith(".")) == [
        "enroll", "test", "train", "trials"]
    assert (data / "trials" / "cnc_eval_speech").is_file()
    assert "cnc_eval: 10 trials: OK" in res.stderr
