"""Spoof-aware speaker verification data: ASVspoof 2019 LA ASV protocols and ASVspoof 5 (CM lists and
track 2) on synthetic trees in the release layouts; every malformed line named."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from conftest import REPO, run, write_tone
from spkpeft.errors import SpkpeftError
from spkpeft.eval.sasv_metrics import read_sasv_protocol
from spkpeft.io.datadir import read_data_dir
from test_prepare_asvspoof import make_la2019

sys.path.insert(0, str(REPO / "local"))
import prepare_asvspoof2019_la as la2019  # noqa: E402
import prepare_asvspoof5 as asv5  # noqa: E402

ASV_DIR = "ASVspoof2019_LA_asv_protocols"
LA19_ENROLL = {  # file -> lines; LA_x_2... are enrollment files of the set's flac/ folder
    "ASVspoof2019.LA.asv.dev.female.trn.txt": ["LA_0070 LA_D_2000001,LA_D_2000002"],
    "ASVspoof2019.LA.asv.dev.male.trn.txt": ["LA_0069 LA_D_2000003"],
    "ASVspoof2019.LA.asv.eval.female.trn.txt": ["LA_0012 LA_E_2000001,LA_E_2000002,LA_E_2000003"],
    "ASVspoof2019.LA.asv.eval.male.trn.txt": ["LA_0039 LA_E_2000004"],
}
LA19_TRIALS = {
    "ASVspoof2019.LA.asv.dev.gi.trl.txt": ["LA_0070 LA_D_1047731 bonafide target",
                                           "LA_0069 LA_D_1047731 bonafide nontarget",
                                           "LA_0070 LA_D_1002130 A05 spoof", "LA_0069 LA_D_1000265 A02 spoof"],
    "ASVspoof2019.LA.asv.eval.gi.trl.txt": ["LA_0012 LA_E_1000147 bonafide target",
                                            "LA_0039 LA_E_1000147 bonafide nontarget",
                                            "LA_0012 LA_E_1000273 A07 spoof", "LA_0039 LA_E_2834763 A11 spoof"],
}


def write_lines(path: Path, lines) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))


def make_la2019_sasv(root: Path) -> Path:
    la = make_la2019(root)
    for name, lines in {**LA19_ENROLL, **LA19_TRIALS}.items():
        write_lines(la / ASV_DIR / name, lines)
    for name, lines in LA19_ENROLL.items():
        split = name.split(".")[3]
        for utt in lines[0].split()[1].split(","):
            write_tone(la / f"ASVspoof2019_LA_{split}" / "flac" / f"{utt}.flac", seconds=0.02)
    return la


def test_la2019_sasv_layout(tmp_path) -> None:
    make_la2019_sasv(tmp_path / "r")
    out = tmp_path / "out"
    summary = la2019.prepare(tmp_path / "r", out)
    assert "sasv dev: 2 enrolled speakers (3 utts), 4 trials (1 target, 1 nontarget, 2 spoof)" in summary
    assert sorted(p.name for p in (out / "sasv").iterdir()) == ["dev.trl", "dev_enroll", "eval.trl", "eval_enroll"]
    enroll = read_data_dir(out / "sasv" / "eval_enroll")
    assert dict(enroll.utt2spk) == {"LA_E_2000001": "LA_0012", "LA_E_2000002": "LA_0012", "LA_E_2000003": "LA_0012",
                                    "LA_E_2000004": "LA_0039"}
    assert enroll.wav["LA_E_2000004"].endswith("LA/ASVspoof2019_LA_eval/flac/LA_E_2000004.flac")
    assert (out / "sasv" / "eval_enroll" / "spk2gender").read_text() == "LA_0012 f\nLA_0039 m\n"
    trl = (out / "sasv" / "dev.trl").read_text().splitlines()
    assert trl == sorted(LA19_TRIALS["ASVspoof2019.LA.asv.dev.gi.trl.txt"])
    assert read_sasv_protocol(out / "sasv" / "dev.trl").keys.count("spoof") == 2
    assert "LA_E_2000001" not in read_data_dir(out / "eval").wav   # enrollment is not a CM utterance


def test_la2019_without_asv_protocols_is_cm_only_and_shell_wrapper(tmp_path) -> None:
    make_la2019_sasv(tmp_path / "r")
    res = run(["bash", str(REPO / "local" / "prepare_asvspoof2019_la.sh"), "--sets", "train,eval", "r", "out"],
              cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in (tmp_path / "out" / "sasv").iterdir()) == ["eval.trl", "eval_enroll"]
    make_la2019(tmp_path / "plain")
    la2019.prepare(tmp_path / "plain", tmp_path / "cm_only")
    assert not (tmp_path / "cm_only" / "sasv").exists()


def edit_line(path: Path, index: int, new: str | None) -> None:
    lines = path.read_text().splitlines()
    if new is None:
        del lines[index]
    elif index == len(lines):
        lines.append(new)
    else:
        lines[index] = new
    path.write_text("".join(f"{line}\n" for line in lines))


@pytest.mark.parametrize("name, index, new, where, message", [
    ("ASVspoof2019.LA.asv.dev.female.trn.txt", 0, "LA_0070", ":1:", "expected 'SPEAKER UTT1,UTT2,...'"),
    ("ASVspoof2019.LA.asv.dev.female.trn.txt", 0, "LA_0070 LA_D_2000001,,LA_D_2000002", ":1:", "empty utterance"),
    ("ASVspoof2019.LA.asv.dev.female.trn.txt", 0, "LA_0070 LA_D_2000009", ":1:", "'LA_D_2000009' has no audio"),
    ("ASVspoof2019.LA.asv.dev.male.trn.txt", 1, "LA_0070 LA_D_2000003", ":2:", "enrolled twice (first in"),
    ("ASVspoof2019.LA.asv.dev.male.trn.txt", 0, "LA_0069 LA_D_2000002", ":1:", "listed twice"),
    ("ASVspoof2019.LA.asv.dev.gi.trl.txt", 1, "LA_0069 LA_D_1047731 bonafide other", ":2:", "key must be"),
    ("ASVspoof2019.LA.asv.dev.gi.trl.txt", 1, "LA_0069 LA_D_1047731 nontarget", ":2:", "expected 4 (as on line 1)"),
    ("ASVspoof2019.LA.asv.dev.gi.trl.txt", 1, "LA_0001 LA_D_1047731 bonafide nontarget", ":2:",
     "'LA_0001' is in no enrollment list"),
    ("ASVspoof2019.LA.asv.dev.gi.trl.txt", 1, "LA_0069 LA_D_9999999 bonafide nontarget", ":2:",
     "'LA_D_9999999' is not in the set's CM protocol"),
    ("ASVspoof2019.LA.asv.dev.gi.trl.txt", 1, "LA_0069 LA_D_2000001 bonafide nontarget", ":2:",
     "is an enrollment utterance of 'LA_0070'"),
    ("ASVspoof2019.LA.asv.dev.gi.trl.txt", 2, "LA_0070 LA_D_1002130 A02 spoof", ":3:",
     "source 'A02' of 'LA_D_1002130' disagrees with the CM protocol ('A05')"),
    ("ASVspoof2019.LA.asv.dev.gi.trl.txt", (0, 1), ("LA_0069 LA_D_1047731 bonafide target",
                                                    "LA_0070 LA_D_1047731 bonafide nontarget"), ":1:",
     "spoken by 'LA_0070', not by 'LA_0069'"),
    ("ASVspoof2019.LA.asv.dev.gi.trl.txt", 1, "LA_0070 LA_D_1047731 bonafide nontarget", ":2:",
     "duplicate trial"),
    ("ASVspoof2019.LA.asv.eval.gi.trl.txt", 3, "LA_0012 LA_E_1000147 bonafide spoof", ":4:",
     "a spoof trial needs an attack id, found 'bonafide'"),
])
def test_la2019_bad_sasv_lines_name_file_and_line(tmp_path, name, index, new, where, message) -> None:
    la = make_la2019_sasv(tmp_path / "r")
    for i, line in zip(*((index, new) if isinstance(index, tuple) else ((index,), (new,)))):
        edit_line(la / ASV_DIR / name, i, line)
    with pytest.raises(SpkpeftError) as err:
        la2019.prepare(tmp_path / "r", tmp_path / "out")
    assert f"{name}{where}" in str(err.value) and message in str(err.value), str(err.value)
    assert not (tmp_path / "out").exists()


def test_la2019_nontarget_by_the_claimed_speaker_and_missing_lists(tmp_path) -> None:
    la = make_la2019_sasv(tmp_path / "r")
    edit_line(la / "ASVspoof2019_LA_cm_protocols" / "ASVspoof2019.LA.cm.dev.trl.txt", 3, "LA_0070 LA_D_1047799 - - bonafide")
    write_tone(la / "ASVspoof2019_LA_dev" / "flac" / "LA_D_1047799.flac", seconds=0.02)
    trials = la / ASV_DIR / "ASVspoof2019.LA.asv.dev.gi.trl.txt"
    edit_line(trials, 4, "LA_0070 LA_D_1047799 bonafide nontarget")
    with pytest.raises(SpkpeftError, match=r"dev.gi.trl.txt:5: nontarget trial: 'LA_D_1047799' is spoken by the "
                                           r"claimed speaker 'LA_0070'"):
        la2019.prepare(tmp_path / "r", tmp_path / "out")
    edit_line(trials, 4, None)
    (la / ASV_DIR / "ASVspoof2019.LA.asv.dev.male.trn.txt").unlink()
    with pytest.raises(SpkpeftError, match=r"dev.male.trn.txt: enrollment list does not exist"):
        la2019.prepare(tmp_path / "r", tmp_path / "out")
    (la / ASV_DIR / "ASVspoof2019.LA.asv.dev.female.trn.txt").unlink()
    (la / ASV_DIR / "ASVspoof2019.LA.asv.eval.gi.trl.txt").unlink()
    with pytest.raises(SpkpeftError, match=r"eval.gi.trl.txt: SASV trial protocol does not exist"):
        la2019.prepare(tmp_path / "r", tmp_path / "out", ["eval"])


# --- ASVspoof 5 ------------------------------------------------------------------------------------

A5_CM = {  # set -> 10-field lines
    "train": ["T_0001 T_0000000001 F - - - - bonafide bonafide -", "T_0001 T_0000000002 F - - - AC1 A01 spoof -",
              "T_0002 T_0000000003 M - - - - bonafide bonafide -"],
    "dev": ["D_0001 D_0000000001 F - - - - bonafide bonafide -", "D_0002 D_0000000002 M C05 1 D_0000000001 - "
            "bonafide bonafide -", "D_0001 D_0000000003 F - - - AC2 A11 spoof -",
            "D_0002 D_0000000004 M C02 3 D_0000000009 AC1 A12 spoof -"],
    "eval": ["E_0001 E_0000000001 M - - - - bonafide bonafide -", "E_0002 E_0000000002 F - - - - bonafide bonafide -",
             "E_0001 E_0000000003 M C11 2 E_0000000008 AC3 A17 spoof -"],
}
A5_FILES = {"train": "ASVspoof5.train.tsv", "dev": "ASVspoof5.dev.track_1.tsv", "eval": "ASVspoof5.eval.track_1.tsv"}
A5_ENROLL = {"dev": ["D_0001 D_0000000101,D_0000000102,D_0000000103", "D_0002 D_0000000104"],
             "eval": ["E_0001 E_0000000101,E_0000000102", "E_0002 E_0000000103"]}
A5_TRIALS = {"dev": ["D_0001 D_0000000001 F bonafide target", "D_0002 D_0000000001 M bonafide nontarget",
                     "D_0001 D_0000000003 F A11 spoof", "D_0002 D_0000000004 M A12 spoof",
                     "D_0002 D_0000000002 M bonafide target"],
             "eval": ["E_0001 E_0000000001 M bonafide target", "E_0002 E_0000000001 F bonafide nontarget",
                      "E_0001 E_0000000003 M A17 spoof"]}
A5_AUDIO = {"train": "flac_T", "dev": "flac_D", "eval": "flac_E_eval"}


def make_asvspoof5(root: Path, protocols_in_root: bool = False) -> Path:
    protocols = root if protocols_in_root else root / "ASVspoof5_protocols"
    for name, lines in A5_CM.items():
        write_lines(protocols / A5_FILES[name], lines)
        for line in lines:
            write_tone(root / A5_AUDIO[name] / f"{line.split()[1]}.flac", seconds=0.02)
    for name in ("dev", "eval"):
        write_lines(protocols / f"ASVspoof5.{name}.track_2.enroll.tsv", A5_ENROLL[name])
        write_lines(protocols / f"ASVspoof5.{name}.track_2.trial.tsv", A5_TRIALS[name])
        for line in A5_ENROLL[name]:
            for utt in line.split()[1].split(","):
                write_tone(root / A5_AUDIO[name] / f"{utt}.flac", seconds=0.02)
    write_lines(protocols / "ASVspoof5.codec.config.csv", ["codec,quality"])
    return protocols


def test_asvspoof5_layout(tmp_path) -> None:
    make_asvspoof5(tmp_path / "r")
    out = tmp_path / "out"
    summary = asv5.prepare(tmp_path / "r", out)
    assert "train 3 utts (2 bonafide, 1 spoof)" in summary and "sasv dev: 2 enrolled speakers (4 utts), 5 trials" in summary
    assert sorted(p.name for p in out.iterdir()) == ["dev", "eval", "protocols", "sasv", "train"]
    dev = read_data_dir(out / "dev")
    assert dict(dev.utt2attack) == {"D_0000000001": "-", "D_0000000002": "-", "D_0000000003": "A11",
                                    "D_0000000004": "A12"}
    assert (out / "dev" / "utt2condition").read_text().split("\n")[1] == "D_0000000002 C05"
    assert dev.wav["D_0000000001"].endswith("/flac_D/D_0000000001.flac")
    assert (out / "protocols" / "dev.txt").read_text().splitlines()[2] == "D_0001 D_0000000003 - A11 spoof"
    enroll = read_data_dir(out / "sasv" / "eval_enroll")
    assert list(enroll.spk2utt) == ["E_0001", "E_0002"]
    assert enroll.wav["E_0000000103"].endswith("/flac_E_eval/E_0000000103.flac")
    assert (out / "sasv" / "dev_enroll" / "spk2gender").read_text() == "D_0001 f\nD_0002 m\n"
    assert (out / "sasv" / "dev.trl").read_text().splitlines() == sorted(
        " ".join(line.split()[:2] + line.split()[3:]) for line in A5_TRIALS["dev"])


def test_asvspoof5_protocols_in_root_shell_wrapper_and_cm_only(tmp_path) -> None:
    make_asvspoof5(tmp_path / "r", protocols_in_root=True)
    res = run(["bash", str(REPO / "local" / "prepare_asvspoof5.sh"), "--sets", "train,dev", "r", "out"], cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in (tmp_path / "out" / "sasv").iterdir()) == ["dev.trl", "dev_enroll"]
    for name in ("enroll", "trial"):
        (tmp_path / "r" / f"ASVspoof5.dev.track_2.{name}.tsv").unlink()
    asv5.prepare(tmp_path / "r", tmp_path / "cm", ["dev"])
    assert not (tmp_path / "cm" / "sasv").exists()
    bad = run([sys.executable, str(REPO / "local" / "prepare_asvspoof5.py"), str(tmp_path / "nothing"),
               str(tmp_path / "o")])
    assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1 and "ASVspoof5_protocols" in bad.stderr


@pytest.mark.parametrize("name, index, new, where, message", [
    ("ASVspoof5.train.tsv", 1, "T_0001 T_0000000002 F - - - AC1 A01 spoof", ":2:", "expected 10 fields"),
    ("ASVspoof5.train.tsv", 1, "T_0001 T_0000000002 X - - - AC1 A01 spoof -", ":2:", "gender must be F or M"),
    ("ASVspoof5.train.tsv", 0, "T_0001 T_0000000001 F - - - - A01 bonafide -", ":1:", "attack label 'bonafide'"),
    ("ASVspoof5.train.tsv", 1, "T_0001 T_0000000002 F - - - AC1 bonafide spoof -", ":2:", "has no attack label"),
    ("ASVspoof5.train.tsv", 1, "T_0001 T_0000000002 F - - - AC1 A01 fake -", ":2:", "key must be bonafide or spoof"),
    ("ASVspoof5.train.tsv", 3, "T_0002 T_0000000003 M - - - - bonafide bonafide -", ":4:", "listed twice"),
    ("ASVspoof5.dev.track_1.tsv", 0, "D_0001 D_0000000077 F - - - - bonafide bonafide -", ":1:",
     "'D_0000000077' has no audio file"),
    ("ASVspoof5.dev.track_2.enroll.tsv", 1, "D_0002 D_0000000104 extra", ":2:", "expected 'SPEAKER UTT1,UTT2,...'"),
    ("ASVspoof5.dev.track_2.enroll.tsv", 1, "D_0002 D_0000000105", ":2:", "'D_0000000105' has no audio file"),
    ("ASVspoof5.dev.track_2.trial.tsv", 1, "D_0002 D_0000000001 M bonafide", ":2:", "expected 5 (as on line 1)"),
    ("ASVspoof5.dev.track_2.trial.tsv", 1, "D_0002 D_0000000001 M bonafide spoof", ":2:",
     "a spoof trial needs an attack id"),
    ("ASVspoof5.dev.track_2.trial.tsv", 2, "D_0001 D_0000000003 F A12 spoof", ":3:", "disagrees with the CM"),
    ("ASVspoof5.dev.track_2.trial.tsv", 4, "D_0002 D_0000000002 X bonafide target", ":5:", "gender must be F or M"),
    ("ASVspoof5.dev.track_2.trial.tsv", 4, "D_0002 D_0000000102 M bonafide target", ":5:",
     "is an enrollment utterance of 'D_0001'"),
    ("ASVspoof5.eval.track_2.trial.tsv", 1, "E_0003 E_0000000001 F bonafide nontarget", ":2:",
     "'E_0003' is in no enrollment list"),
])
def test_asvspoof5_bad_lines_name_file_and_line(tmp_path, name, index, new, where, message) -> None:
    protocols = make_asvspoof5(tmp_path / "r")
    edit_line(protocols / name, index, new)
    with pytest.raises(SpkpeftError) as err:
        asv5.prepare(tmp_path / "r", tmp_path / "out")
    assert f"{name}{where}" in str(err.value) and message in str(err.value), str(err.value)
    assert not (tmp_path / "out").exists()


def test_asvspoof5_one_track2_list_without_the_other(tmp_path) -> None:
    protocols = make_asvspoof5(tmp_path / "r")
    (protocols / "ASVspoof5.eval.track_2.enroll.tsv").unlink()
    with pytest.raises(SpkpeftError, match=r"eval.track_2.enroll.tsv: track 2 list does not exist"):
        asv5.prepare(tmp_path / "r", tmp_path / "out")


# --- the mini SASV corpus (the mini CM corpus with enrollment and ASV protocols) -----------------


def test_mini_sasv_corpus_prepares_as_asvspoof2019_la_with_unseen_voices(tmp_path) -> None:
    from spkpeft.data.synth import CorpusSpec
    from spkpeft.data.synth_spoof import CmCorpusSpec, plan_corpus, plan_enrollment, write_cm_corpus

    spec = CmCorpusSpec(n_train=6, n_dev=8, n_eval=8, n_train_spk=2, n_dev_spk=3, n_eval_spk=3, bonafide_frac=0.5,
                        min_dur=0.3, max_dur=0.4, first_speaker=1000, n_enroll=2)
    write_cm_corpus(tmp_path / "raw", spec)
    summary = la2019.prepare(tmp_path / "raw", tmp_path / "data")
    assert "sasv dev: 3 enrolled speakers (6 utts)" in summary and "sasv eval: 3 enrolled speakers (6 utts)" in summary
    plans = plan_corpus(spec)
    sv = CorpusSpec()
    assert min(u.spk for p in plans.values() for u in p) == 1000 > sv.n_train_spk + sv.n_test_spk
    enroll = plan_enrollment(spec, "eval", plans["eval"])
    assert {u.utt_id for u in enroll}.isdisjoint(u.utt_id for u in plans["eval"])
    trials = read_sasv_protocol(tmp_path / "data" / "sasv" / "eval.trl")
    n_bona = sum(u.attack == "-" for u in plans["eval"])
    assert trials.keys.count("target") == n_bona and trials.keys.count("spoof") == 8 - n_bona
    # without --n-enroll the corpus is the mini CM corpus, without SASV lists
    write_cm_corpus(tmp_path / "cm", CmCorpusSpec(n_train=2, n_dev=2, n_eval=2, n_train_spk=1, n_dev_spk=1,
                                                  n_eval_spk=1, bonafide_frac=0.5, min_dur=0.3, max_dur=0.3))
    assert not (tmp_path / "cm" / "LA" / "ASVspoof2019_LA_asv_protocols").exists()


def test_sasv_task_checks_a_prepared_corpus(tmp_path) -> None:
    from spkpeft.bin.validate_data_dir import main as validate_main
    from spkpeft.tasks.base import get_task
    from spkpeft.tasks.config import load_config
    from spkpeft.tasks.sasv.data import SasvSet, check_training_dir

    make_la2019_sasv(tmp_path / "r")
    out = tmp_path / "out"
    la2019.prepare(tmp_path / "r", out)
    config = tmp_path / "c.yaml"
    config.write_text(f"base: {REPO / 'conf/sasv/default.yaml'}\n")
    assert validate_main(["--task", "sasv", "--no-audio", str(out)]) == 0   # stage 2 of the shared pipeline
    cfg = load_config(config)
    assert set(get_task(cfg).check_sets(cfg, out)) == {"dev", "eval"}
    # stage 3 without components: one line naming the keys; the shared trainer is never used
    with pytest.raises(SpkpeftError, match="task.sv and task.cm must name a trained experiment"):
        get_task(cfg).train(cfg, out / "train", tmp_path / "exp", load_trained=lambda path, device: None)
    with pytest.raises(SpkpeftError, match="fits its fusions in one process; --ddp applies"):   # bin/train --ddp
        get_task(cfg).train(cfg, out / "train", tmp_path / "exp", ddp=True, load_trained=lambda path, device: None)
    with pytest.raises(SpkpeftError, match="trains no model of its own"):
        get_task(cfg).build_model(cfg, None)
    trl = out / "sasv" / "eval.trl"
    trl.write_text(trl.read_text().replace("LA_0039 LA_E_1000147", "LA_0077 LA_E_1000147"))
    with pytest.raises(SpkpeftError, match=r"eval.trl:\d: claimed speaker 'LA_0077' has no enrollment utterance"):
        SasvSet(out, "eval").read()
    (out / "sasv" / "dev.trl").unlink()
    with pytest.raises(SpkpeftError, match=r"dev.trl: missing \(SASV set 'dev' needs"):
        SasvSet(out, "dev").read()
    with pytest.raises(SpkpeftError, match="needs bona fide and spoofed training utterances"):
        (out / "train" / "utt2label").write_text((out / "train" / "utt2label").read_text().replace("spoof", "bonafide"))
        check_training_dir(out)
    config.write_text(f"base: {REPO / 'conf/sasv/default.yaml'}\ntask: {{eval_sets: [dev]}}\n")
    with pytest.raises(SpkpeftError, match="cannot also be an evaluation set"):
        get_task(load_config(config)).check_sets(load_config(config), out)
