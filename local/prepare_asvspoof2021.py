#!/usr/bin/env python3
"""ASVspoof 2021 LA / DF evaluation releases + keys -> spoofing-countermeasure data directories.

Input layout (the released ``ASVspoof2021_{LA,DF}_eval*.tar.gz`` and ``{LA,DF}-keys-full.tar.gz``
unpacked side by side in ROOT; the DF parts merge into one ``flac/``)::

    ROOT/ASVspoof2021_LA_eval/flac/LA_E_<n>.flac
    ROOT/ASVspoof2021_DF_eval/flac/DF_E_<n>.flac
    ROOT/keys/LA/CM/trial_metadata.txt
        "SPEAKER TRIAL CODEC TRANSMISSION ATTACK KEY TRIM SUBSET"
        e.g. "LA_0009 LA_E_9332881 alaw ita_tx A07 spoof notrim eval"
    ROOT/keys/DF/CM/trial_metadata.txt
        "SPEAKER TRIAL CODEC SOURCE ATTACK KEY TRIM SUBSET VOCODER TASK TEAM GENDER_PAIR LANGUAGE"
        e.g. "LA_0023 DF_E_2000011 nocodec asvspoof A14 spoof notrim progress traditional_vocoder - - - -"
        (the first 8 columns alone are accepted too)
    ROOT/keys/LA/ASV/trial_metadata.txt
        "SPEAKER TRIAL CODEC TRANSMISSION ATTACK KEY TRIM SUBSET", KEY target|nontarget|spoof
    ROOT/keys/LA/ASV/ASVTorch_Kaldi/score.txt
        "ASV_SPEAKER TRIAL SCORE", line by line the trials of keys/LA/ASV/trial_metadata.txt
    ROOT/keys/LA/LA-C012-{eval,prog,hidden}.npy   (optional)
        the organisers' pre-computed t-DCF coefficients of each subset (``config.py``:
        ``ConfigLA.c012_file``), which the official package uses unless asked to recompute them

Column orders as read by the organisers' evaluation package
(github.com/asvspoof-challenge/2021, ``eval-package/config.py``: ``ConfigLA.p_names``,
``ConfigLA.s_names_asv``, ``ConfigDF.p_names``).  ATTACK of a bona fide trial is
``bonafide`` (or ``-``) in the keys; SUBSET is eval, progress or hidden.

Output (``OUT`` is replaced as a whole)::

    OUT/<track>_<subset>/{wav.scp,utt2spk,spk2utt,utt2label,utt2attack,utt2condition}
        track la|df, subset eval (default; --subsets eval,progress,hidden adds the others)
        utt = TRIAL, spk = SPEAKER, label bonafide|spoof, attack Axx (DF: the ATTACK column) or "-"
        utt2condition: the condition of the official evaluation package, from the CODEC column
        (LA "LA-C1".."LA-C7", DF "DF-C1".."DF-C9", see CONDITIONS), bona fide and spoof alike
    OUT/protocols/<set>.txt    "SPEAKER UTT - ATTACK KEY", sorted (LC_ALL=C) by UTT
    OUT/asv/la_<subset>.scores "SOURCE KEY SCORE" (SOURCE = bonafide or the attack id) from the
                               organisers' ASV scores of that subset, for t-DCF (LA only)
    OUT/asv/la_<subset>.c012   "C0 C1 C2": the pooled coefficients of keys/LA/LA-C012-<subset>.npy
                               when it exists; stage 5 then computes the 2021 min t-DCF with them,
                               as the official package does (and warns if the ASV scores give others)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from spkpeft.bin._cli import run_main  # noqa: E402
from spkpeft.io.datadir import read_lines  # noqa: E402
from spkpeft.errors import SpkpeftError, file_error  # noqa: E402
from spkpeft.eval.cm_metrics import read_official_c012  # noqa: E402
from prepare_asvspoof2019_la import (  # noqa: E402
    BONAFIDE, NO_ATTACK, SPOOF, CmSet, audio_files, audio_of, check_key, parse_list,
    score_line, summarize, write_cm_corpus,
)

TRACKS = ("la", "df")
SUBSETS = ("eval", "progress", "hidden")
AUDIO_DIR = {"la": "ASVspoof2021_LA_eval/flac", "df": "ASVspoof2021_DF_eval/flac"}
CM_KEYS_FILE = {"la": "keys/LA/CM/trial_metadata.txt", "df": "keys/DF/CM/trial_metadata.txt"}
CM_COLUMNS = {"la": (8,), "df": (8, 13)}
CM_FORMAT = {
    "la": "SPEAKER TRIAL CODEC TRANSMISSION ATTACK KEY TRIM SUBSET",
    "df": "SPEAKER TRIAL CODEC SOURCE ATTACK KEY TRIM SUBSET [VOCODER TASK TEAM GENDER_PAIR LANGUAGE]",
}
ASV_KEYS_FILE = "keys/LA/ASV/trial_metadata.txt"
ASV_SCORE_FILES = ("keys/LA/ASV/ASVTorch_Kaldi/score.txt", "keys/LA/ASV/ASVtorch_kaldi/score.txt")
#: subset -> the official pre-computed C012 file (``eval-package/config.py``: ``ConfigLA.c012_file``)
C012_FILES = {"eval": "keys/LA/LA-C012-eval.npy", "progress": "keys/LA/LA-C012-prog.npy",
              "hidden": "keys/LA/LA-C012-hidden.npy"}
BONAFIDE_ATTACKS = (BONAFIDE, NO_ATTACK)
#: CODEC column -> condition, in the official 2021 evaluation package's grouping
#: (``eval-package/config.py``: ``ConfigLA`` / ``ConfigDF`` ``factor_2_list`` -> ``factor_2_tag_list``;
#: LA groups by the codec alone, not by codec x transmission; DF by the compression "compr")
CONDITIONS = {
    "la": {"none": "C1", "alaw": "C2", "pstn": "C3", "g722": "C4", "ulaw": "C5", "gsm": "C6", "opus": "C7"},
    "df": {"nocodec": "C1", "low_mp3": "C2", "high_mp3": "C3", "low_m4a": "C4", "high_m4a": "C5",
           "low_ogg": "C6", "high_ogg": "C7", "mp3m4a": "C8", "oggm4a": "C9"},
}


def check_subset(subset: str, path: Path, number: int) -> None:
    if subset not in SUBSETS:
        raise file_error(path, f"subset must be one of {', '.join(SUBSETS)}, found '{subset}'", number)


def normalised_attack(attack: str, key: str, path: Path, number: int) -> str:
    """``-`` for bona fide (the keys write ``bonafide`` or ``-``); the attack id of a spoofed trial."""
    if key == BONAFIDE:
        if attack not in BONAFIDE_ATTACKS:
            raise file_error(path, f"bona fide trial with attack '{attack}' (expected 'bonafide' or '-')", number)
        return NO_ATTACK
    if attack in BONAFIDE_ATTACKS:
        raise file_error(path, f"spoofed trial without an attack id (found '{attack}')", number)
    return attack


def condition_of(track: str, codec: str, path: Path, number: int) -> str:
    """``<TRACK>-C<k>`` of a CODEC value (:data:`CONDITIONS`); an unknown codec is an error naming the line."""
    tag = CONDITIONS[track].get(codec)
    if tag is None:
        raise file_error(path, f"codec '{codec}' is not an ASVspoof 2021 {track.upper()} condition "
                               f"(expected one of {', '.join(CONDITIONS[track])})", number)
    return f"{track.upper()}-{tag}"


def read_cm_keys(track: str, root: Path, subsets: Sequence[str]) -> dict[str, CmSet]:
    """``keys/<TRACK>/CM/trial_metadata.txt`` -> {``<track>_<subset>``: CmSet} for the chosen subsets."""
    path = root / CM_KEYS_FILE[track]
    if not path.is_file():
        raise file_error(path, f"{track.upper()} CM keys do not exist "
                               f"(unpack {track.upper()}-keys-full.tar.gz into {root})")
    audio_dir = root / AUDIO_DIR[track]
    audio = audio_files(audio_dir, ".flac")
    sets = {f"{track}_{s}": CmSet(utt2condition={}) for s in subsets}
    seen: set[str] = set()
    for number, fields in read_lines(path):
        if len(fields) not in CM_COLUMNS[track]:
            raise file_error(path, f"expected {' or '.join(map(str, CM_COLUMNS[track]))} columns "
                                   f"'{CM_FORMAT[track]}', got {len(fields)}: {' '.join(fields)!r}", number)
        spk, utt, codec, _second, attack, key, _trim, subset = fields[:8]
        check_key(key, path, number)
        check_subset(subset, path, number)
        attack = normalised_attack(attack, key, path, number)
        condition = condition_of(track, codec, path, number)
        if utt in seen:
            raise file_error(path, f"trial '{utt}' listed twice", number)
        seen.add(utt)
        target = sets.get(f"{track}_{subset}")
        if target is None:
            continue
        target.add(utt, audio_of(audio, utt, path, number, audio_dir, ".flac"), spk, key, attack, path, number)
        target.utt2condition[utt] = condition
    if not seen:
        raise file_error(path, "keys file is empty")
    return sets


def find_asv_scores(root: Path) -> Path:
    for rel in ASV_SCORE_FILES:
        if (root / rel).is_file():
            return root / rel
    raise file_error(root / ASV_SCORE_FILES[0], "LA ASV scores do not exist (needed for t-DCF)")


def read_asv(root: Path, subsets: Sequence[str]) -> dict[str, list[str]]:
    """LA ASV keys + scores -> {subset: ["SOURCE KEY SCORE", ...]} for the chosen subsets."""
    keys_path = root / ASV_KEYS_FILE
    if not keys_path.is_file():
        raise file_error(keys_path, "LA ASV keys do not exist (needed for t-DCF)")
    scores_path = find_asv_scores(root)
    rows: dict[str, list[str]] = {s: [] for s in subsets}
    keys = read_lines(keys_path)
    scores = read_lines(scores_path)
    while True:
        key_row, score_row = next(keys, None), next(scores, None)
        if key_row is None and score_row is None:
            break
        if score_row is None:
            raise file_error(keys_path, f"trial has no line in {scores_path} (the score file is shorter)", key_row[0])
        if key_row is None:
            raise file_error(scores_path, f"score has no trial in {keys_path} (the keys file is shorter)", score_row[0])
        k_number, k_fields = key_row
        s_number, s_fields = score_row
        if len(k_fields) != 8:
            raise file_error(keys_path, f"expected 8 columns 'SPEAKER TRIAL CODEC TRANSMISSION ATTACK KEY TRIM "
                                        f"SUBSET', got {len(k_fields)}: {' '.join(k_fields)!r}", k_number)
        if len(s_fields) != 3:
            raise file_error(scores_path, f"expected 'ASV_SPEAKER TRIAL SCORE', got {' '.join(s_fields)!r}", s_number)
        trial, attack, key, subset = k_fields[1], k_fields[4], k_fields[5], k_fields[7]
        check_subset(subset, keys_path, k_number)
        if key == SPOOF:
            source = normalised_attack(attack, key, keys_path, k_number)
        elif key in ("target", "nontarget"):
            if attack not in BONAFIDE_ATTACKS:
                raise file_error(keys_path, f"{key} trial with attack '{attack}' (expected 'bonafide' or '-')",
                                 k_number)
            source = BONAFIDE
        else:
            raise file_error(keys_path, f"ASV key must be target, nontarget or spoof, found '{key}'", k_number)
        if s_fields[1] != trial:
            raise file_error(scores_path, f"trial '{s_fields[1]}' where {keys_path}:{k_number} has '{trial}' "
                                          "(score lines must follow the keys line by line)", s_number)
        if subset in rows:
            rows[subset].append(score_line(source, key, s_fields[2], scores_path, s_number))
    return rows


def prepare(root: Path, out: Path, tracks: Sequence[str] = TRACKS, subsets: Sequence[str] = ("eval",)) -> str:
    if not root.is_dir():
        raise SpkpeftError(f"{root}: ASVspoof 2021 root does not exist")
    prepared: dict[str, CmSet] = {}
    notes = []
    for track in tracks:
        sets = read_cm_keys(track, root, subsets)
        empty = [name for name, s in sets.items() if not s.wav]
        if len(empty) == len(sets):
            raise file_error(root / CM_KEYS_FILE[track],
                             f"no trial of subset{'s' if len(empty) > 1 else ''} {', '.join(subsets)}")
        for name in empty:
            notes.append(f"NOTE: {name} skipped: {CM_KEYS_FILE[track]} has no trial of that subset")
            del sets[name]
        if track == "la":
            for subset, lines in read_asv(root, subsets).items():
                name = f"la_{subset}"
                if name not in sets:
                    continue
                c012 = root / C012_FILES[subset]
                if c012.is_file():
                    official = read_official_c012(c012)
                    sets[name].asv_c012 = [f"{official.c0!r} {official.c1!r} {official.c2!r}"]
                if lines:
                    sets[name].asv_scores = lines
                else:
                    notes.append(f"NOTE: {ASV_KEYS_FILE} has no trial of subset '{subset}': "
                                 f"no asv/{name}.scores (no t-DCF for {name})")
        prepared.update(sets)
    write_cm_corpus(out, prepared)
    return "\n".join([summarize(out, prepared), *notes])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="ASVspoof 2021 LA/DF evaluation data + keys -> CM data "
                                                 "directories, protocols and (LA) ASV scores.")
    parser.add_argument("root", type=Path, help="directory holding ASVspoof2021_{LA,DF}_eval/ and keys/")
    parser.add_argument("out", type=Path, help="output corpus directory, e.g. data/asvspoof2021")
    parser.add_argument("--tracks", default="la,df", help="comma-separated tracks: la, df (default la,df)")
    parser.add_argument("--subsets", default="eval",
                        help="comma-separated key subsets: eval, progress, hidden (default eval)")
    args = parser.parse_args(argv)
    tracks = parse_list(args.tracks, TRACKS, "tracks", parser)
    subsets = parse_list(args.subsets, SUBSETS, "subsets", parser)
    print(prepare(args.root, args.out, tracks, subsets))
    return 0


if __name__ == "__main__":
    run_main(main)
