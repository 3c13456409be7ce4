"""Spoofing-countermeasure corpus preparation (ASVspoof 2019 LA, ASVspoof 2021 LA/DF, In-the-Wild)
on synthetic trees in the released layouts."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from conftest import REPO, run, write_tone
from spkpeft.errors import SpkpeftError
from spkpeft.io.datadir import read_data_dir

DATA_FILES = ["spk2utt", "utt2attack", "utt2label", "utt2spk", "wav.scp"]


def prepare(script: str, *args):
    return run([sys.executable, str(REPO / "local" / f"prepare_{script}.py"), *map(str, args)])


def assert_one_line_error(res, where: str, message: str, out: Path | None = None) -> None:
    assert res.returncode == 1, (res.stdout, res.stderr)
    err = res.stderr.strip()
    assert len(err.splitlines()) == 1 and where in err and message in err, err
    if out is not None:
        assert not out.exists()


def set_files(out: Path, name: str) -> list[str]:
    return sorted(p.name for p in (out / name).iterdir())


# --- ASVspoof 2019 LA ---------------------------------------------------------------------------

LA19_PROTOCOLS = {  # set -> protocol lines (unsorted on purpose)
    "train": ["LA_0079 LA_T_1271820 - A01 spoof", "LA_0079 LA_T_1138215 - - bonafide",
              "LA_0080 LA_T_1000137 - A04 spoof", "LA_0081 LA_T_1005579 - - bonafide"],
    "dev": ["LA_0070 LA_D_1047731 - - bonafide", "LA_0069 LA_D_1000265 - A02 spoof",
            "LA_0070 LA_D_1002130 - A05 spoof"],
    "eval": ["LA_0039 LA_E_2834763 - A11 spoof", "LA_0012 LA_E_1000147 - - bonafide",
             "LA_0012 LA_E_1000273 - A07 spoof"],
}
LA19_PROTOCOL_FILES = {"train": "ASVspoof2019.LA.cm.train.trn.txt", "dev": "ASVspoof2019.LA.cm.dev.trl.txt",
                       "eval": "ASVspoof2019.LA.cm.eval.trl.txt"}
LA19_ASV = {
    "dev": ["bonafide target 1.23", "bonafide nontarget -3.5", "A02 spoof -0.4", "A05 spoof 0.7"],
    "eval": ["bonafide target 2.5", "bonafide nontarget -4", "A07 spoof -2.1", "A11 spoof 1e-3"],
}


def make_la2019(root: Path) -> Path:
    la = root / "LA"
    for name, lines in LA19_PROTOCOLS.items():
        for line in lines:
            write_tone(la / f"ASVspoof2019_LA_{name}" / "flac" / f"{line.split()[1]}.flac", seconds=0.02)
        proto = la / "ASVspoof2019_LA_cm_protocols" / LA19_PROTOCOL_FILES[name]
        proto.parent.mkdir(parents=True, exist_ok=True)
        proto.write_text("".join(line + "\n" for line in lines))
    write_tone(la / "ASVspoof2019_LA_train" / "flac" / "LA_T_9999999.flac", seconds=0.02)  # not in a protocol
    for name, lines in LA19_ASV.items():
        scores = la / "ASVspoof2019_LA_asv_scores" / f"ASVspoof2019.LA.asv.{name}.gi.trl.scores.txt"
        scores.parent.mkdir(parents=True, exist_ok=True)
        scores.write_text("".join(line + "\n" for line in lines))
    (la / "README.LA.txt").write_text("readme\n")
    return la


def test_la2019_layout_labels_attacks_protocols_scores(tmp_path):
    la = make_la2019(tmp_path / "asvspoof2019")
    out = tmp_path / "data" / "asvspoof2019_la"
    res = prepare("asvspoof2019_la", tmp_path / "asvspoof2019", out)
    assert res.returncode == 0, res.stderr
    assert "train 4 utts (2 bonafide, 2 spoof)" in res.stdout
    assert sorted(p.name for p in out.iterdir()) == ["asv", "dev", "eval", "protocols", "train"]
    for name, lines in LA19_PROTOCOLS.items():
        assert set_files(out, name) == DATA_FILES
        d = read_data_dir(out / name)  # checks sorting and label/attack consistency
        rows = [line.split() for line in lines]
        assert list(d.wav) == sorted(r[1] for r in rows)
        assert dict(d.utt2spk) == {r[1]: r[0] for r in rows}
        assert dict(d.utt2label) == {r[1]: r[4] for r in rows}
        assert dict(d.utt2attack) == {r[1]: r[3] for r in rows}
        for utt, path in d.wav.items():
            assert Path(path).is_absolute()
            assert path.endswith(f"LA/ASVspoof2019_LA_{name}/flac/{utt}.flac")
        assert (out / "protocols" / f"{name}.txt").read_text().splitlines() == sorted(
            lines, key=lambda line: line.split()[1])
    assert "LA_T_9999999" not in read_data_dir(out / "train").wav
    assert sorted(p.name for p in (out / "asv").iterdir()) == ["dev.scores", "eval.scores"]
    for name, lines in LA19_ASV.items():
        assert (out / "asv" / f"{name}.scores").read_text().splitlines() == lines
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(".")] == []
    assert la.is_dir()


def test_la2019_through_the_shell_wrapper_from_the_la_dir(tmp_path):
    make_la2019(tmp_path / "release")
    res = run(["bash", str(REPO / "local" / "prepare_asvspoof2019_la.sh"), "--sets", "train,eval",
               "release/LA", "out"], cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["asv", "eval", "protocols", "train"]
    assert [p.name for p in (tmp_path / "out" / "asv").iterdir()] == ["eval.scores"]


@pytest.mark.parametrize("args, message", [
    ([], "expected ASVSPOOF2019_ROOT and OUT_DIR"),
    (["a", "b", "c"], "expected ASVSPOOF2019_ROOT and OUT_DIR"),
    (["--bogus", "x", "a", "b"], "unknown option '--bogus'"),
])
def test_shell_wrappers_usage_errors(tmp_path, args, message):
    res = run(["bash", str(REPO / "local" / "prepare_asvspoof2019_la.sh"), *args], cwd=tmp_path)
    assert res.returncode == 1 and message in res.stderr and "Usage:" in res.stderr
    for script in ("prepare_asvspoof2021.sh", "prepare_in_the_wild.sh"):
        res = run(["bash", str(REPO / "local" / script), "only_one"], cwd=tmp_path)
        assert res.returncode == 1 and "Usage:" in res.stderr, res.stderr


@pytest.mark.parametrize("set_name, edit, line, message", [
    ("train", lambda t: t.replace("LA_0079 LA_T_1138215 - - bonafide", "LA_0079 LA_T_1138215 - bonafide"),
     2, "expected 'SPEAKER UTT - ATTACK KEY'"),
    ("train", lambda t: t.replace("A04 spoof", "A04 fake"), 3, "key must be bonafide or spoof, found 'fake'"),
    ("dev", lambda t: t.replace("- A02 spoof", "- - spoof"), 2, "has no attack id"),
    ("eval", lambda t: t + "LA_0012 LA_E_1000147 - - bonafide\n", 4, "listed twice"),
    ("eval", lambda t: t.replace("LA_E_1000273", "LA_E_7777777"), 3, "'LA_E_7777777' has no audio file"),
])
def test_la2019_bad_protocol_lines_name_file_and_line(tmp_path, set_name, edit, line, message):
    la = make_la2019(tmp_path / "r")
    proto = la / "ASVspoof2019_LA_cm_protocols" / LA19_PROTOCOL_FILES[set_name]
    proto.write_text(edit(proto.read_text()))
    out = tmp_path / "out"
    assert_one_line_error(prepare("asvspoof2019_la", tmp_path / "r", out),
                          f"{LA19_PROTOCOL_FILES[set_name]}:{line}:", message, out)


def test_la2019_missing_audio_file_names_protocol_line(tmp_path):
    la = make_la2019(tmp_path / "r")
    (la / "ASVspoof2019_LA_dev" / "flac" / "LA_D_1002130.flac").unlink()
    out = tmp_path / "out"
    assert_one_line_error(prepare("asvspoof2019_la", tmp_path / "r", out),
                          "ASVspoof2019.LA.cm.dev.trl.txt:3:", "'LA_D_1002130' has no audio file", out)


@pytest.mark.parametrize("bad, message", [
    ("bonafide target", "expected 'SOURCE KEY SCORE'"),
    ("bonafide impostor 1.0", "ASV key must be target, nontarget or spoof"),
    ("A07 spoof high", "score 'high' is not a number"),
    ("bonafide spoof 1.0", "must name its attack"),
    ("A07 target 1.0", "must have source 'bonafide'"),
])
def test_la2019_bad_asv_score_lines_name_file_and_line(tmp_path, bad, message):
    la = make_la2019(tmp_path / "r")
    scores = la / "ASVspoof2019_LA_asv_scores" / "ASVspoof2019.LA.asv.eval.gi.trl.scores.txt"
    lines = scores.read_text().splitlines()
    lines[2] = bad
    scores.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    assert_one_line_error(prepare("asvspoof2019_la", tmp_path / "r", out),
                          "ASVspoof2019.LA.asv.eval.gi.trl.scores.txt:3:", message, out)


def test_la2019_missing_pieces_are_explained(tmp_path):
    res = prepare("asvspoof2019_la", tmp_path, tmp_path / "out")
    assert_one_line_error(res, str(tmp_path), "no LA/ASVspoof2019_LA_cm_protocols/")
    la = make_la2019(tmp_path / "r")
    (la / "ASVspoof2019_LA_asv_scores" / "ASVspoof2019.LA.asv.dev.gi.trl.scores.txt").unlink()
    assert_one_line_error(prepare("asvspoof2019_la", tmp_path / "r", tmp_path / "out"),
                          "ASVspoof2019.LA.asv.dev.gi.trl.scores.txt", "ASV score file does not exist")


def test_la2019_failure_keeps_the_previous_output(tmp_path):
    la = make_la2019(tmp_path / "r")
    out = tmp_path / "out"
    assert prepare("asvspoof2019_la", tmp_path / "r", out).returncode == 0
    proto = la / "ASVspoof2019_LA_cm_protocols" / LA19_PROTOCOL_FILES["eval"]
    proto.write_text(proto.read_text() + "garbage\n")
    assert prepare("asvspoof2019_la", tmp_path / "r", out).returncode == 1
    assert read_data_dir(out / "eval").utt2label is not None
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


# --- ASVspoof 2021 LA / DF ----------------------------------------------------------------------

LA21_CM = [  # SPEAKER TRIAL CODEC TRANSMISSION ATTACK KEY TRIM SUBSET
    "LA_0009 LA_E_9332881 alaw ita_tx A07 spoof notrim eval",
    "LA_0020 LA_E_7294490 g722 loc_tx bonafide bonafide notrim eval",
    "LA_0009 LA_E_1000001 none none - bonafide notrim eval",
    "LA_0010 LA_E_5000002 opus loc_tx A10 spoof notrim progress",
    "LA_0010 LA_E_5000003 gsm pstn bonafide bonafide notrim progress",
    "LA_0011 LA_E_6000004 ulaw sin_tx A19 spoof trim hidden",
]
DF21_CM = [  # SPEAKER TRIAL CODEC SOURCE ATTACK KEY TRIM SUBSET VOCODER TASK TEAM GENDER_PAIR LANGUAGE
    "LA_0023 DF_E_2000011 nocodec asvspoof A14 spoof notrim eval traditional_vocoder - - - -",
    "VCC2TM2 DF_E_2000012 mp3m4a vcc2018 - bonafide notrim eval bonafide - - - -",
    "TEF2 DF_E_2000013 low_m4a vcc2020 Task1-team20 spoof notrim eval neural_vocoder_autoregressive "
    "Task1 team20 M2F ENG",
    "LA_0024 DF_E_2000014 high_ogg asvspoof A16 spoof notrim progress waveform_concatenation - - - -",
    "LA_0025 DF_E_2000015 nocodec asvspoof - bonafide notrim progress bonafide - - - -",
]
# the official eval-package's conditions (config.py factor_2_list -> factor_2_tag_list) of the codecs used here
CONDITION_OF_CODEC = {"alaw": "LA-C2", "g722": "LA-C4", "none": "LA-C1", "opus": "LA-C7", "gsm": "LA-C6",
                      "ulaw": "LA-C5", "nocodec": "DF-C1", "mp3m4a": "DF-C8", "low_m4a": "DF-C4",
                      "high_ogg": "DF-C7"}
LA21_ASV = [  # keys line, score line
    ("LA_0009 LA_E_5013670 alaw ita_tx bonafide target notrim eval", "LA_0009 LA_E_5013670 3.25"),
    ("LA_0009 LA_E_5013671 alaw ita_tx bonafide nontarget notrim eval", "LA_0009 LA_E_5013671 -4.85"),
    ("LA_0009 LA_E_9332881 alaw ita_tx A07 spoof notrim eval", "LA_0009 LA_E_9332881 0.5"),
    ("LA_0010 LA_E_5013672 opus loc_tx bonafide target notrim progress", "LA_0010 LA_E_5013672 2.0"),
    ("LA_0010 LA_E_5013673 opus loc_tx - nontarget notrim progress", "LA_0010 LA_E_5013673 -1.0"),
    ("LA_0010 LA_E_5000002 opus loc_tx A10 spoof notrim progress", "LA_0010 LA_E_5000002 -0.25"),
    ("LA_0011 LA_E_6000009 ulaw sin_tx bonafide target trim hidden", "LA_0011 LA_E_6000009 1.5"),
]


def make_2021(root: Path) -> Path:
    for track, lines in (("LA", LA21_CM), ("DF", DF21_CM)):
        for line in lines:
            write_tone(root / f"ASVspoof2021_{track}_eval" / "flac" / f"{line.split()[1]}.flac", seconds=0.02)
        keys = root / "keys" / track / "CM" / "trial_metadata.txt"
        keys.parent.mkdir(parents=True)
        keys.write_text("".join(line + "\n" for line in lines))
    (root / "ASVspoof2021_LA_eval" / "ASVspoof2021.LA.cm.eval.trl.txt").write_text(
        "".join(line.split()[1] + "\n" for line in LA21_CM))
    write_tone(root / "ASVspoof2021_DF_eval" / "flac" / "DF_E_9999999.flac", seconds=0.02)  # not in the keys
    asv = root / "keys" / "LA" / "ASV"
    (asv / "ASVTorch_Kaldi").mkdir(parents=True)
    (asv / "trial_metadata.txt").write_text("".join(k + "\n" for k, _ in LA21_ASV))
    (asv / "ASVTorch_Kaldi" / "score.txt").write_text("".join(s + "\n" for _, s in LA21_ASV))
    return root


def check_2021_set(out: Path, name: str, lines: list[str], track: str) -> None:
    assert set_files(out, name) == sorted(DATA_FILES + ["utt2condition"])
    d = read_data_dir(out / name)
    rows = [line.split() for line in lines]
    assert list(d.wav) == sorted(r[1] for r in rows)
    assert dict(d.utt2spk) == {r[1]: r[0] for r in rows}
    assert dict(d.utt2label) == {r[1]: r[5] for r in rows}
    assert dict(d.utt2attack) == {r[1]: "-" if r[5] == "bonafide" else r[4] for r in rows}
    assert all(d.wav[r[1]].endswith(f"ASVspoof2021_{track}_eval/flac/{r[1]}.flac") for r in rows)
    condition = {r[1]: CONDITION_OF_CODEC[r[2]] for r in rows}  # by the CODEC column alone
    assert (out / name / "utt2condition").read_text().splitlines() == [
        f"{u} {condition[u]}" for u in d.wav]
    assert dict(d.utt2condition) == condition
    protocol = sorted((f"{r[0]} {r[1]} - {d.utt2attack[r[1]]} {r[5]}" for r in rows),
                      key=lambda line: line.split()[1])
    assert (out / "protocols" / f"{name}.txt").read_text().splitlines() == protocol


def test_2021_eval_subset_by_default(tmp_path):
    root = make_2021(tmp_path / "asvspoof2021")
    out = tmp_path / "data" / "asvspoof2021"
    res = prepare("asvspoof2021", root, out)
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in out.iterdir()) == ["asv", "df_eval", "la_eval", "protocols"]
    check_2021_set(out, "la_eval", [line for line in LA21_CM if line.endswith(" eval")], "LA")
    check_2021_set(out, "df_eval", [line for line in DF21_CM if " eval " in line], "DF")
    assert read_data_dir(out / "la_eval").utt2attack["LA_E_7294490"] == "-"  # "bonafide" in the keys
    assert read_data_dir(out / "df_eval").utt2attack["DF_E_2000013"] == "Task1-team20"
    assert [p.name for p in (out / "asv").iterdir()] == ["la_eval.scores"]  # no ASV scores for DF
    assert (out / "asv" / "la_eval.scores").read_text().splitlines() == [
        "bonafide target 3.25", "bonafide nontarget -4.85", "A07 spoof 0.5"]
    assert "DF_E_9999999" not in read_data_dir(out / "df_eval").wav


def test_2021_all_subsets_through_the_shell_wrapper(tmp_path):
    make_2021(tmp_path / "r")
    res = run(["bash", str(REPO / "local" / "prepare_asvspoof2021.sh"), "--subsets", "eval,progress,hidden",
               "r", "out"], cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == [
        "asv", "df_eval", "df_progress", "la_eval", "la_hidden", "la_progress", "protocols"]  # DF has no hidden trial
    check_2021_set(out, "la_progress", [line for line in LA21_CM if line.endswith(" progress")], "LA")
    check_2021_set(out, "df_progress", [line for line in DF21_CM if " progress " in line], "DF")
    assert (out / "asv" / "la_progress.scores").read_text().splitlines() == [
        "bonafide target 2.0", "bonafide nontarget -1.0", "A10 spoof -0.25"]
    assert (out / "asv" / "la_hidden.scores").read_text().splitlines() == ["bonafide target 1.5"]
    assert "NOTE: df_hidden skipped" in res.stdout


def test_2021_subset_without_asv_trials_gets_no_scores(tmp_path):
    root = make_2021(tmp_path / "r")
    asv = root / "keys" / "LA" / "ASV"
    kept = [row for row in LA21_ASV if not row[0].endswith(" hidden")]
    (asv / "trial_metadata.txt").write_text("".join(k + "\n" for k, _ in kept))
    (asv / "ASVTorch_Kaldi" / "score.txt").write_text("".join(s + "\n" for _, s in kept))
    res = prepare("asvspoof2021", root, tmp_path / "out", "--tracks", "la", "--subsets", "eval,hidden")
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in (tmp_path / "out" / "asv").iterdir()) == ["la_eval.scores"]
    assert "no asv/la_hidden.scores" in res.stdout


def test_2021_one_track_and_subset_without_trials(tmp_path):
    root = make_2021(tmp_path / "r")
    res = prepare("asvspoof2021", root, tmp_path / "out", "--tracks", "df", "--subsets", "progress")
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["df_progress", "protocols"]
    res = prepare("asvspoof2021", root, tmp_path / "out2", "--tracks", "df", "--subsets", "hidden")
    assert_one_line_error(res, "keys/DF/CM/trial_metadata.txt", "no trial of subset hidden", tmp_path / "out2")
    res = prepare("asvspoof2021", root, tmp_path / "out3", "--subsets", "eval,dev")
    assert res.returncode == 2 and "unknown subset 'dev'" in res.stderr


@pytest.mark.parametrize("track, index, bad, message", [
    ("LA", 1, "LA_0020 LA_E_7294490 g722 loc_tx bonafide bonafide notrim", "expected 8 columns"),
    ("LA", 2, "LA_0009 LA_E_1000001 none none - genuine notrim eval", "key must be bonafide or spoof"),
    ("LA", 0, "LA_0009 LA_E_9332881 alaw ita_tx - spoof notrim eval", "spoofed trial without an attack id"),
    ("LA", 1, "LA_0020 LA_E_7294490 g722 loc_tx A07 bonafide notrim eval", "bona fide trial with attack 'A07'"),
    ("LA", 3, "LA_0010 LA_E_5000002 opus loc_tx A10 spoof notrim dev", "subset must be one of"),
    ("LA", 2, "LA_0009 LA_E_9332881 none none - bonafide notrim eval", "trial 'LA_E_9332881' listed twice"),
    ("DF", 0, "LA_0023 DF_E_2000011 nocodec asvspoof A14 spoof notrim eval traditional_vocoder -",
     "expected 8 or 13 columns"),
    ("DF", 1, "VCC2TM2 DF_E_7777777 mp3m4a vcc2018 - bonafide notrim eval bonafide - - - -",
     "'DF_E_7777777' has no audio file"),
    ("LA", 0, "LA_0009 LA_E_9332881 mp3 ita_tx A07 spoof notrim eval",
     "codec 'mp3' is not an ASVspoof 2021 LA condition (expected one of none, alaw, pstn"),
    ("DF", 4, "LA_0025 DF_E_2000015 alaw asvspoof - bonafide notrim progress bonafide - - - -",
     "codec 'alaw' is not an ASVspoof 2021 DF condition"),
])
def test_2021_bad_cm_keys_name_file_and_line(tmp_path, track, index, bad, message):
    root = make_2021(tmp_path / "r")
    keys = root / "keys" / track / "CM" / "trial_metadata.txt"
    lines = keys.read_text().splitlines()
    lines[index] = bad
    keys.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    assert_one_line_error(prepare("asvspoof2021", root, out), f"keys/{track}/CM/trial_metadata.txt:{index + 1}:",
                          message, out)


def test_2021_all_official_conditions(tmp_path):
    root = make_2021(tmp_path / "r")
    keys = root / "keys" / "LA" / "CM" / "trial_metadata.txt"
    codecs = ["none", "alaw", "pstn", "g722", "ulaw", "gsm", "opus"]
    lines = [f"LA_0009 LA_E_{i}00 {c} tx bonafide bonafide notrim eval" for i, c in enumerate(codecs)]
    keys.write_text("".join(line + "\n" for line in lines))
    for line in lines:
        write_tone(root / "ASVspoof2021_LA_eval" / "flac" / f"{line.split()[1]}.flac", seconds=0.02)
    (root / "keys" / "LA" / "ASV" / "trial_metadata.txt").write_text("")
    (root / "keys" / "LA" / "ASV" / "ASVTorch_Kaldi" / "score.txt").write_text("")
    res = prepare("asvspoof2021", root, tmp_path / "out", "--tracks", "la")
    assert res.returncode == 0, res.stderr
    d = read_data_dir(tmp_path / "out" / "la_eval")
    assert [d.utt2condition[f"LA_E_{i}00"] for i in range(7)] == [f"LA-C{k}" for k in range(1, 8)]


@pytest.mark.parametrize("bad, line, message", [
    ("LA_E_7294490 LA-C4 extra", 2, "expected 2 fields"),
    ("LA_E_7777777 LA-C4", 2, "utterance 'LA_E_7777777' is missing from wav.scp"),
    (None, None, "utterance 'LA_E_9332881' of wav.scp is missing"),
])
def test_2021_bad_utt2condition_names_file_and_line(tmp_path, bad, line, message):
    root = make_2021(tmp_path / "r")
    out = tmp_path / "out"
    assert prepare("asvspoof2021", root, out, "--tracks", "la").returncode == 0
    path = out / "la_eval" / "utt2condition"
    lines = path.read_text().splitlines()
    assert lines[1].startswith("LA_E_7294490 ")
    if bad is None:
        del lines[-1]
    else:
        lines[1] = bad
    path.write_text("".join(x + "\n" for x in lines))
    where = f"{path}:{line}: " if line else f"{path}: "
    with pytest.raises(SpkpeftError, match=re.escape(where) + ".*" + re.escape(message)):
        read_data_dir(out / "la_eval")
    res = run([sys.executable, "-m", "spkpeft.bin.validate_data_dir", "--task", "cm", "--no-audio", str(out)])
    assert_one_line_error(res, where.rstrip(), message)


def test_2021_missing_audio_only_matters_for_selected_subsets(tmp_path):
    root = make_2021(tmp_path / "r")
    (root / "ASVspoof2021_LA_eval" / "flac" / "LA_E_5000003.flac").unlink()  # a progress trial
    assert prepare("asvspoof2021", root, tmp_path / "out").returncode == 0
    out = tmp_path / "out2"
    assert_one_line_error(prepare("asvspoof2021", root, out, "--subsets", "eval,progress"),
                          "keys/LA/CM/trial_metadata.txt:5:", "'LA_E_5000003' has no audio file", out)


@pytest.mark.parametrize("which, index, bad, where, message", [
    ("keys", 1, "LA_0009 LA_E_5013671 alaw ita_tx bonafide impostor notrim eval", "ASV/trial_metadata.txt:2:",
     "ASV key must be target, nontarget or spoof"),
    ("keys", 2, "LA_0009 LA_E_9332881 alaw ita_tx bonafide spoof notrim eval", "ASV/trial_metadata.txt:3:",
     "spoofed trial without an attack id"),
    ("keys", 0, "LA_0009 LA_E_5013670 alaw ita_tx A07 target notrim eval", "ASV/trial_metadata.txt:1:",
     "target trial with attack 'A07'"),
    ("keys", 4, "LA_0010 LA_E_5013673 opus loc_tx - nontarget", "ASV/trial_metadata.txt:5:", "expected 8 columns"),
    ("scores", 1, "LA_0009 LA_E_5013671", "ASVTorch_Kaldi/score.txt:2:", "expected 'ASV_SPEAKER TRIAL SCORE'"),
    ("scores", 2, "LA_0009 LA_E_9332881 nan", "ASVTorch_Kaldi/score.txt:3:", "score 'nan' is not finite"),
    ("scores", 5, "LA_0010 LA_E_5000009 -0.25", "ASVTorch_Kaldi/score.txt:6:", "where "),
])
def test_2021_bad_asv_lines_name_file_and_line(tmp_path, which, index, bad, where, message):
    root = make_2021(tmp_path / "r")
    asv = root / "keys" / "LA" / "ASV"
    path = asv / "trial_metadata.txt" if which == "keys" else asv / "ASVTorch_Kaldi" / "score.txt"
    lines = path.read_text().splitlines()
    lines[index] = bad
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    assert_one_line_error(prepare("asvspoof2021", root, out), where, message, out)


def test_2021_asv_files_of_different_length_and_missing_keys(tmp_path):
    root = make_2021(tmp_path / "r")
    scores = root / "keys" / "LA" / "ASV" / "ASVTorch_Kaldi" / "score.txt"
    scores.write_text("".join(s + "\n" for _, s in LA21_ASV[:-1]))
    assert_one_line_error(prepare("asvspoof2021", root, tmp_path / "out"),
                          "ASV/trial_metadata.txt:7:", "the score file is shorter")
    scores.unlink()
    assert_one_line_error(prepare("asvspoof2021", root, tmp_path / "out"),
                          "ASVTorch_Kaldi/score.txt", "LA ASV scores do not exist")
    assert prepare("asvspoof2021", root, tmp_path / "out", "--tracks", "df").returncode == 0
    (root / "keys" / "DF" / "CM" / "trial_metadata.txt").unlink()
    assert_one_line_error(prepare("asvspoof2021", root, tmp_path / "out2", "--tracks", "df"),
                          "keys/DF/CM/trial_metadata.txt", "DF CM keys do not exist")


# --- In-the-Wild --------------------------------------------------------------------------------

ITW_META = [
    ("0.wav", "Alec Guinness", "spoof"),
    ("1.wav", "Alec Guinness", "spoof"),
    ("2.wav", "Barack Obama", "spoof"),
    ("4.wav", "Christopher Hitchens", "bona-fide"),
    ("10.wav", "Barack Obama", "bona-fide"),
]


def make_itw(root: Path) -> Path:
    release = root / "release_in_the_wild"
    for name, _, _ in ITW_META:
        write_tone(release / name, seconds=0.02)
    write_tone(release / "3.wav", seconds=0.02)  # not in meta.csv
    (release / "meta.csv").write_text("file,speaker,label\n" + "".join(f"{f},{s},{lab}\n" for f, s, lab in ITW_META))
    return release


def test_in_the_wild_layout(tmp_path):
    make_itw(tmp_path / "itw")
    out = tmp_path / "data" / "in_the_wild"
    res = prepare("in_the_wild", tmp_path / "itw", out)
    assert res.returncode == 0, res.stderr
    assert "eval 5 utts (2 bonafide, 3 spoof)" in res.stdout
    assert sorted(p.name for p in out.iterdir()) == ["eval", "protocols"]
    assert set_files(out, "eval") == DATA_FILES
    d = read_data_dir(out / "eval")
    assert list(d.wav) == ["0", "1", "10", "2", "4"]  # LC_ALL=C order
    assert d.utt2spk["4"] == "Christopher_Hitchens" and d.utt2spk["10"] == "Barack_Obama"
    assert dict(d.utt2label) == {"0": "spoof", "1": "spoof", "2": "spoof", "4": "bonafide", "10": "bonafide"}
    assert dict(d.utt2attack) == {"0": "spoof", "1": "spoof", "2": "spoof", "4": "-", "10": "-"}
    assert d.wav["10"].endswith("release_in_the_wild/10.wav")
    assert (out / "protocols" / "eval.txt").read_text().splitlines() == [
        "Alec_Guinness 0 - spoof spoof", "Alec_Guinness 1 - spoof spoof", "Barack_Obama 10 - - bonafide",
        "Barack_Obama 2 - spoof spoof", "Christopher_Hitchens 4 - - bonafide"]
    assert spk2utt_of(out / "eval")["Barack_Obama"] == ["10", "2"]


def spk2utt_of(d: Path) -> dict[str, list[str]]:
    return {line.split()[0]: line.split()[1:] for line in (d / "spk2utt").read_text().splitlines()}


def test_in_the_wild_release_dir_itself_through_the_shell_wrapper(tmp_path):
    make_itw(tmp_path)
    res = run(["bash", str(REPO / "local" / "prepare_in_the_wild.sh"), "release_in_the_wild", "out"], cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert len(read_data_dir(tmp_path / "out" / "eval").wav) == 5


@pytest.mark.parametrize("edit, line, message", [
    (lambda t: t.replace("file,speaker,label", "file,label"), 1, "expected the header 'file,speaker,label'"),
    (lambda t: t.replace("2.wav,Barack Obama,spoof", "2.wav,Barack Obama"), 4, "expected 'file,speaker,label'"),
    (lambda t: t.replace("4.wav,Christopher Hitchens,bona-fide", "4.wav,Christopher Hitchens,bonafide"), 5,
     "label must be bona-fide or spoof"),
    (lambda t: t.replace("1.wav,", "1.flac,"), 3, "is not a <name>.wav file name"),
    (lambda t: t.replace("1.wav,Alec Guinness", "1.wav,  "), 3, "speaker is empty"),
    (lambda t: t.replace("10.wav", "11.wav"), 6, "'11.wav' not found"),
    (lambda t: t + "0.wav,Alec Guinness,spoof\n", 7, "utterance '0' listed twice"),
])
def test_in_the_wild_bad_meta_lines_name_file_and_line(tmp_path, edit, line, message):
    release = make_itw(tmp_path / "itw")
    meta = release / "meta.csv"
    meta.write_text(edit(meta.read_text()))
    out = tmp_path / "out"
    assert_one_line_error(prepare("in_the_wild", tmp_path / "itw", out), f"meta.csv:{line}:", message, out)


def test_in_the_wild_missing_release_is_explained(tmp_path):
    assert_one_line_error(prepare("in_the_wild", tmp_path, tmp_path / "out"), str(tmp_path),
                          "no release_in_the_wild/meta.csv")
