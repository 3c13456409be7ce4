#!/usr/bin/env python3
"""ASVspoof 5 release -> spoofing-countermeasure data directories and the track 2 (SASV) enrollment and trials.

Input layout (the released v1.0 package, as its ``README.txt`` lists it: ``flac_{T,D,E}_*.tar``
unpacked into ``flac_T/``, ``flac_D/``, ``flac_E_eval/``; ``ASVspoof5_protocols.tar.gz`` unpacked
into ``ASVspoof5_protocols/`` or ROOT itself)::

    ROOT/flac_T/<utt>.flac  ROOT/flac_D/<utt>.flac  ROOT/flac_E_eval/<utt>.flac
    ROOT/ASVspoof5_protocols/ASVspoof5.{train,dev.track_1,eval.track_1}.tsv   space-separated, 10 fields
        "SPEAKER UTT GENDER CODEC CODEC_Q CODEC_SEED ATTACK_TAG ATTACK_LABEL KEY TMP"
        e.g. "T_4850 T_0000000000 F - - - - bonafide bonafide -", "D_0062 D_0000000005 F C05 1 D_0000000004 AC1 A11 spoof -"
    ROOT/ASVspoof5_protocols/ASVspoof5.{dev,eval}.track_2.enroll.tsv   "SPEAKER UTT1,UTT2,..." (track 2)
    ROOT/ASVspoof5_protocols/ASVspoof5.{dev,eval}.track_2.trial.tsv
        "SPEAKER UTT GENDER bonafide|ATTACK target|nontarget|spoof" (SPEAKER: the claimed target)

(The official repository's readers: ``Baseline-AASIST/data_utils.py`` takes the utterance and
the key of the CM lists and the audio as ``flac_{T,D}/<utt>.flac``; the evaluation package's
track 2 keys are ``spk filename cm-label asv-label``, i.e. the trial's claimed speaker, test
utterance, bona fide/spoof and target/nontarget/spoof.)  Enrollment audio is in the set's flac
folder (``flac_D``, ``flac_E_eval``) and in no track 1 list; every trial utterance is in the
set's track 1 list.

Output (``OUT`` is replaced as a whole)::

    OUT/<set>/{wav.scp,utt2spk,spk2utt,utt2label,utt2attack,utt2condition}   set = train, dev, eval
        spk = SPEAKER, label = KEY, attack = ATTACK_LABEL or "-" (bona fide), condition = CODEC ("-": none)
    OUT/protocols/<set>.txt     "SPEAKER UTT - ATTACK KEY", sorted (LC_ALL=C) by UTT
    OUT/sasv/<set>_enroll/{wav.scp,utt2spk,spk2utt,spk2gender}   dev, eval (when the track 2 files exist)
    OUT/sasv/<set>.trl          "SPEAKER UTT SOURCE KEY", sorted (LC_ALL=C)

Every malformed line is an error naming file:line (field count, key, gender, a bona fide line
whose attack is not ``bonafide`` or a spoof line whose attack is, duplicate utterances, audio
missing, trial checks of ``prepare_asvspoof2019_la.SasvSet.add_trials``).  There are no
organisers' ASV scores in the release (CM stage 5 reports EERs, no t-DCF).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Mapping, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from spkpeft.bin._cli import run_main  # noqa: E402
from spkpeft.errors import SpkpeftError, file_error  # noqa: E402
from spkpeft.io.datadir import read_lines  # noqa: E402
from prepare_asvspoof2019_la import (BONAFIDE, SPOOF, CmSet, SasvSet, audio_files, audio_of, check_key,  # noqa: E402
                                     prepare_main, read_enrollment_list, summarize, write_cm_corpus)

SETS = ("train", "dev", "eval")
SASV_SETS = ("dev", "eval")
PROTOCOL_DIR = "ASVspoof5_protocols"
CM_LISTS = {"train": "ASVspoof5.train.tsv", "dev": "ASVspoof5.dev.track_1.tsv", "eval": "ASVspoof5.eval.track_1.tsv"}
AUDIO_DIRS = {"train": "flac_T", "dev": "flac_D", "eval": "flac_E_eval"}
ENROLL = "ASVspoof5.{set}.track_2.enroll.tsv"
TRIALS = "ASVspoof5.{set}.track_2.trial.tsv"
CM_LAYOUT = "SPEAKER UTT GENDER CODEC CODEC_Q CODEC_SEED ATTACK_TAG ATTACK_LABEL KEY TMP"
GENDERS = {"F": "f", "M": "m"}


def find_protocol_dir(root: Path) -> Path:
    """``root/ASVspoof5_protocols`` or ``root`` itself, whichever holds ``ASVspoof5.train.tsv`` or a track 1 list."""
    for candidate in (root / PROTOCOL_DIR, root):
        if any((candidate / name).is_file() for name in CM_LISTS.values()):
            return candidate
    raise SpkpeftError(f"{root}: no {PROTOCOL_DIR}/ASVspoof5.*.tsv (expected the ASVspoof 5 release layout: "
                       f"flac_T/, flac_D/, flac_E_eval/ and {PROTOCOL_DIR}/ with "
                       f"{', '.join(CM_LISTS.values())} and ASVspoof5.{{dev,eval}}.track_2.{{enroll,trial}}.tsv)")


def read_cm_list(path: Path, audio: Mapping[str, str], audio_dir: Path) -> CmSet:
    """The 10-field CM list -> a CmSet with ``utt2condition`` = the codec."""
    s = CmSet(utt2condition={})
    for number, fields in read_lines(path):
        if len(fields) != 10:
            raise file_error(path, f"expected 10 fields '{CM_LAYOUT}', got {len(fields)}", number)
        spk, utt, gender, codec, _q, _seed, _tag, attack, key, _tmp = fields
        if gender not in GENDERS:
            raise file_error(path, f"gender must be F or M, found '{gender}'", number)
        check_key(key, path, number)
        if key == BONAFIDE and attack != BONAFIDE:
            raise file_error(path, f"a bona fide utterance must have attack label 'bonafide', found '{attack}'",
                             number)
        if key == SPOOF and attack in (BONAFIDE, "-"):
            raise file_error(path, f"spoofed utterance '{utt}' has no attack label (found '{attack}')", number)
        s.add(utt, audio_of(audio, utt, path, number, audio_dir, ".flac"), spk, key, attack, path, number)
        s.utt2condition[utt] = codec
    if not s.wav:
        raise file_error(path, "CM list is empty")
    return s


def genders_of_trials(path: Path) -> dict[str, str]:
    """``{claimed speaker: f|m}`` from the trial list's GENDER field (checked)."""
    genders: dict[str, str] = {}
    for number, fields in read_lines(path):
        if len(fields) == 5:
            if fields[2] not in GENDERS:
                raise file_error(path, f"gender must be F or M, found '{fields[2]}'", number)
            genders.setdefault(fields[0], GENDERS[fields[2]])
    return genders


def read_track2(protocols: Path, name: str, cm: CmSet, audio: Mapping[str, str], audio_dir: Path) -> SasvSet:
    enroll, trials = protocols / ENROLL.format(set=name), protocols / TRIALS.format(set=name)
    for path in (enroll, trials):
        if not path.is_file():
            raise file_error(path, "track 2 list does not exist (both the enroll and the trial list are needed)")
    sasv = SasvSet()
    read_enrollment_list(enroll, sasv, audio, audio_dir, ".flac")
    sasv.add_trials(trials, cm)
    genders = genders_of_trials(trials)
    sasv.spk2gender = {spk: genders[spk] for spk in sasv.enroll_line if spk in genders}
    return sasv


def prepare(root: Path, out: Path, sets: Sequence[str] = SETS) -> str:
    protocols = find_protocol_dir(root)
    prepared: dict[str, CmSet] = {}
    sasv: dict[str, SasvSet] = {}
    for name in sets:
        cm_list = protocols / CM_LISTS[name]
        if not cm_list.is_file():
            raise file_error(cm_list, "CM list does not exist")
        audio_dir = root / AUDIO_DIRS[name]
        audio = audio_files(audio_dir, ".flac")
        prepared[name] = read_cm_list(cm_list, audio, audio_dir)
        if name in SASV_SETS and any((protocols / f.format(set=name)).is_file() for f in (ENROLL, TRIALS)):
            sasv[name] = read_track2(protocols, name, prepared[name], audio, audio_dir)
    write_cm_corpus(out, prepared, sasv)
    return summarize(out, prepared, sasv)


def main(argv: Sequence[str] | None = None) -> int:
    return prepare_main(argv, prepare, "ASVspoof 5 release -> CM data directories and the track 2 (SASV) "
                        "enrollment and trials.", f"the release root (flac_T/, flac_D/, flac_E_eval/, {PROTOCOL_DIR}/)",
                        "data/asvspoof5")


if __name__ == "__main__":
    run_main(main)
