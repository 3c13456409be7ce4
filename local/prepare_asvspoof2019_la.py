#!/usr/bin/env python3
"""ASVspoof 2019 LA release -> spoofing-countermeasure data directories, CM protocols and ASV scores.

Input layout (the released ``LA.zip``; ROOT is the directory holding ``LA/``, or ``LA/`` itself)::

    ROOT/LA/ASVspoof2019_LA_{train,dev,eval}/flac/<utt>.flac
    ROOT/LA/ASVspoof2019_LA_cm_protocols/ASVspoof2019.LA.cm.{train.trn,dev.trl,eval.trl}.txt
        "SPEAKER UTT - ATTACK KEY"   e.g. "LA_0079 LA_T_1138215 - - bonafide", "LA_0079 LA_T_1271820 - A01 spoof"
    ROOT/LA/ASVspoof2019_LA_asv_scores/ASVspoof2019.LA.asv.{dev,eval}.gi.trl.scores.txt
        "SOURCE KEY SCORE"           e.g. "bonafide target 1.23", "A07 spoof -2.1"
    ROOT/LA/ASVspoof2019_LA_asv_protocols/  (spoof-aware speaker verification, SASV; optional)
        ASVspoof2019.LA.asv.{dev,eval}.{female,male}.trn.txt   "SPEAKER UTT1,UTT2,..."  enrollment lists;
            the enrollment audio is in the set's flac/ folder and in no CM protocol
        ASVspoof2019.LA.asv.{dev,eval}.gi.trl.txt   "SPEAKER UTT bonafide|ATTACK target|nontarget|spoof"

Output (``OUT`` is replaced as a whole, so a half-written preparation is never left behind)::

    OUT/<set>/{wav.scp,utt2spk,spk2utt,utt2label,utt2attack}   set = train, dev, eval
        utt = protocol UTT, spk = protocol SPEAKER, label bonafide|spoof, attack Axx or "-" (bona fide)
    OUT/protocols/<set>.txt     "SPEAKER UTT - ATTACK KEY", sorted (LC_ALL=C) by UTT
    OUT/asv/<set>.scores        "SOURCE KEY SCORE" (the organisers' ASV scores, for t-DCF): dev, eval
    OUT/sasv/<set>_enroll/{wav.scp,utt2spk,spk2utt,spk2gender}   (with the ASV protocols) enrollment
        utterances, utt2spk = the enrolled speaker, spk2gender f|m (Kaldi)
    OUT/sasv/<set>.trl          "SPEAKER UTT SOURCE KEY" (SOURCE bonafide or the attack), sorted (LC_ALL=C);
        every UTT is an utterance of OUT/<set>

Every malformed protocol, score or enrollment line is an error naming file:line; a protocol
utterance without its audio file is an error naming the protocol line; audio
files without a protocol line are ignored.  SASV trials are checked against the CM protocol
of their set (the test utterance is in it, with the same bona fide / attack label; a target
trial's utterance is the claimed speaker's, a nontarget trial's another speaker's) and the
enrollment lists (the claimed speaker is enrolled; no enrollment utterance is a trial's).

The helpers here are shared by ``prepare_asvspoof2021.py``, ``prepare_in_the_wild.py`` and
``prepare_asvspoof5.py``.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from spkpeft.bin._cli import run_main  # noqa: E402
from spkpeft.io.atomic import new_directory, write_text_atomic  # noqa: E402
from spkpeft.io.datadir import c_sort_key, read_lines, write_data_dir  # noqa: E402
from spkpeft.errors import SpkpeftError, file_error  # noqa: E402
from spkpeft.io.trials import parse_score  # noqa: E402
from spkpeft.eval.sasv_metrics import SPOOF as SASV_SPOOF, TARGET, NONTARGET, read_sasv_protocol  # noqa: E402

BONAFIDE, SPOOF = "bonafide", "spoof"
CM_KEYS = (BONAFIDE, SPOOF)
ASV_KEYS = ("target", "nontarget", SPOOF)
NO_ATTACK = "-"

SETS = ("train", "dev", "eval")
AUDIO_DIR = "ASVspoof2019_LA_{set}/flac"
PROTOCOL_DIR = "ASVspoof2019_LA_cm_protocols"
PROTOCOLS = {
    "train": "ASVspoof2019.LA.cm.train.trn.txt",
    "dev": "ASVspoof2019.LA.cm.dev.trl.txt",
    "eval": "ASVspoof2019.LA.cm.eval.trl.txt",
}
ASV_SCORE_DIR = "ASVspoof2019_LA_asv_scores"
ASV_SCORES = {
    "dev": "ASVspoof2019.LA.asv.dev.gi.trl.scores.txt",
    "eval": "ASVspoof2019.LA.asv.eval.gi.trl.scores.txt",
}
ASV_PROTOCOL_DIR = "ASVspoof2019_LA_asv_protocols"
SASV_SETS = ("dev", "eval")
ENROLL_LISTS = "ASVspoof2019.LA.asv.{set}.{gender}.trn.txt"
GENDERS = {"female": "f", "male": "m"}
SASV_TRIALS = "ASVspoof2019.LA.asv.{set}.gi.trl.txt"


# --- shared by the spoofing corpora ---------------------------------------------------------------

@dataclass
class CmSet:
    """One prepared set: per-utterance tables (all over the same utterances) and its ASV scores."""

    wav: dict[str, str] = field(default_factory=dict)
    utt2spk: dict[str, str] = field(default_factory=dict)
    utt2label: dict[str, str] = field(default_factory=dict)
    utt2attack: dict[str, str] = field(default_factory=dict)
    utt2condition: dict[str, str] | None = None
    asv_scores: list[str] | None = None
    asv_c012: list[str] | None = None  # "C0 C1 C2": official pre-computed t-DCF coefficients (2021)

    def add(self, utt: str, path: str, spk: str, key: str, attack: str, where: Path, number: int) -> None:
        if utt in self.wav:
            raise file_error(where, f"utterance '{utt}' listed twice", number)
        self.wav[utt] = path
        self.utt2spk[utt] = spk
        self.utt2label[utt] = key
        self.utt2attack[utt] = NO_ATTACK if key == BONAFIDE else attack

    def protocol_lines(self) -> list[str]:
        return [f"{self.utt2spk[u]} {u} - {self.utt2attack[u]} {self.utt2label[u]}"
                for u in sorted(self.wav, key=c_sort_key)]

    def summary(self, name: str) -> str:
        n_bona = sum(1 for v in self.utt2label.values() if v == BONAFIDE)
        text = f"{name} {len(self.wav)} utts ({n_bona} bonafide, {len(self.wav) - n_bona} spoof)"
        if self.asv_scores is not None:
            text += f", {len(self.asv_scores)} ASV scores"
        return text


def audio_files(directory: Path, ext: str) -> dict[str, str]:
    """``{stem: absolute path}`` of the ``*<ext>`` files directly in ``directory`` (hidden files skipped)."""
    if not directory.is_dir():
        raise SpkpeftError(f"{directory}: audio directory does not exist")
    found = {}
    for entry in os.scandir(directory):
        if entry.name.endswith(ext) and not entry.name.startswith(".") and entry.is_file():
            found[entry.name[: -len(ext)]] = os.path.abspath(entry.path)
    return found


def audio_of(audio: Mapping[str, str], utt: str, where: Path, number: int, directory: Path, ext: str) -> str:
    """The audio path of ``utt``; an error naming the protocol line when it has no file."""
    path = audio.get(utt)
    if path is None:
        raise file_error(where, f"utterance '{utt}' has no audio file {directory / (utt + ext)}", number)
    return path


def check_key(key: str, where: Path, number: int) -> None:
    if key not in CM_KEYS:
        raise file_error(where, f"key must be bonafide or spoof, found '{key}'", number)


def check_token(value: str, what: str, where: Path, number: int) -> None:
    if not value or any(c.isspace() for c in value):
        raise file_error(where, f"{what} {value!r} is empty or contains whitespace", number)


def score_line(source: str, key: str, score: str, where: Path, number: int) -> str:
    """A checked ``SOURCE KEY SCORE`` line."""
    if key not in ASV_KEYS:
        raise file_error(where, f"ASV key must be target, nontarget or spoof, found '{key}'", number)
    parse_score(score, where, number)
    if key == SPOOF and source == BONAFIDE:
        raise file_error(where, "a spoof ASV trial must name its attack, found source 'bonafide'", number)
    if key != SPOOF and source != BONAFIDE:
        raise file_error(where, f"a {key} ASV trial must have source 'bonafide', found '{source}'", number)
    return f"{source} {key} {score}"


@dataclass
class SasvSet:
    """The spoof-aware speaker verification part of a set: enrollment utterances and trials."""

    enroll_wav: dict[str, str] = field(default_factory=dict)
    enroll_spk: dict[str, str] = field(default_factory=dict)      # utt -> enrolled speaker
    spk2gender: dict[str, str] = field(default_factory=dict)      # f | m
    enroll_line: dict[str, tuple[Path, int]] = field(default_factory=dict)  # speaker -> where enrolled
    trials: list[str] = field(default_factory=list)               # "SPEAKER UTT SOURCE KEY"

    def add_enrollment(self, spk: str, utts: str, gender: str | None, audio: Mapping[str, str],
                       audio_dir: Path, ext: str, where: Path, number: int) -> None:
        """One enrollment line ``SPEAKER UTT1,UTT2,...`` (every utterance with its audio file)."""
        check_token(spk, "speaker", where, number)
        if spk in self.enroll_line:
            first, first_number = self.enroll_line[spk]
            raise file_error(where, f"speaker '{spk}' is enrolled twice (first in {first}:{first_number})", number)
        names = utts.split(",")
        if any(not u for u in names):
            raise file_error(where, f"empty utterance name in the enrollment list '{utts}'", number)
        for utt in names:
            if utt in self.enroll_spk:
                raise file_error(where, f"enrollment utterance '{utt}' is listed twice "
                                 f"(also for speaker '{self.enroll_spk[utt]}')", number)
            self.enroll_wav[utt] = audio_of(audio, utt, where, number, audio_dir, ext)
            self.enroll_spk[utt] = spk
        self.enroll_line[spk] = (where, number)
        if gender is not None:
            self.spk2gender[spk] = gender

    def add_trials(self, path: Path, cm: CmSet) -> None:
        """Check a SASV trial protocol (:func:`spkpeft.eval.sasv_metrics.read_sasv_protocol` layouts)
        against the set's CM data and the enrollment, and keep it as ``SPEAKER UTT SOURCE KEY`` lines."""
        protocol = read_sasv_protocol(path)
        for number, (spk, utt, source, key) in enumerate(
                zip(protocol.speakers, protocol.utts, protocol.sources, protocol.keys), start=1):
            if spk not in self.enroll_line:
                raise file_error(path, f"claimed speaker '{spk}' is in no enrollment list", number)
            if utt in self.enroll_spk:
                raise file_error(path, f"test utterance '{utt}' is an enrollment utterance of "
                                 f"'{self.enroll_spk[utt]}'", number)
            if utt not in cm.wav:
                raise file_error(path, f"test utterance '{utt}' is not in the set's CM protocol", number)
            cm_source = BONAFIDE if cm.utt2label[utt] == BONAFIDE else cm.utt2attack[utt]
            if cm_source != source:
                raise file_error(path, f"source '{source}' of '{utt}' disagrees with the CM protocol ('{cm_source}')",
                                 number)
            if key == TARGET and cm.utt2spk[utt] != spk:
                raise file_error(path, f"target trial: '{utt}' is spoken by '{cm.utt2spk[utt]}', not by '{spk}'",
                                 number)
            if key == NONTARGET and cm.utt2spk[utt] == spk:
                raise file_error(path, f"nontarget trial: '{utt}' is spoken by the claimed speaker '{spk}'", number)
            self.trials.append(f"{spk} {utt} {source} {key}")
        self.trials.sort(key=c_sort_key)

    def summary(self, name: str) -> str:
        keys = [line.rsplit(" ", 1)[1] for line in self.trials]
        return (f"sasv {name}: {len(self.enroll_line)} enrolled speakers ({len(self.enroll_wav)} utts), "
                f"{len(self.trials)} trials ({keys.count(TARGET)} target, {keys.count(NONTARGET)} nontarget, "
                f"{keys.count(SASV_SPOOF)} spoof)")


def read_enrollment_list(path: Path, sasv: SasvSet, audio: Mapping[str, str], audio_dir: Path, ext: str,
                         gender: str | None = None) -> None:
    """``SPEAKER UTT1,UTT2,...`` lines (ASVspoof 2019 ``asv.*.trn.txt``, ASVspoof 5 ``track_2.enroll.tsv``);
    an empty list is allowed (a set without speakers of one gender), a trial's speaker must be enrolled."""
    if not path.is_file():
        raise file_error(path, "enrollment list does not exist")
    for number, fields in read_lines(path):
        if len(fields) != 2:
            raise file_error(path, f"expected 'SPEAKER UTT1,UTT2,...', got {' '.join(fields)!r}", number)
        sasv.add_enrollment(*fields, gender, audio, audio_dir, ext, path, number)


def write_cm_corpus(out: Path, sets: Mapping[str, CmSet], sasv: Mapping[str, SasvSet] | None = None) -> None:
    """Write ``out/<set>/``, ``out/protocols/<set>.txt``, ``out/asv/<set>.scores`` and the SASV parts
    ``out/sasv/<set>_enroll/``, ``out/sasv/<set>.trl``, replacing ``out``."""
    with new_directory(out) as tmp:
        for name, s in sets.items():
            if not s.wav:
                raise SpkpeftError(f"{out}: set '{name}' holds no utterance")
            write_data_dir(tmp / name, s.wav, s.utt2spk, s.utt2label, s.utt2attack)
            if s.utt2condition is not None:
                write_text_atomic(tmp / name / "utt2condition",
                                  (f"{u} {s.utt2condition[u]}" for u in sorted(s.wav, key=c_sort_key)))
            write_text_atomic(tmp / "protocols" / f"{name}.txt", s.protocol_lines())
            if s.asv_scores is not None:
                write_text_atomic(tmp / "asv" / f"{name}.scores", s.asv_scores)
            if s.asv_c012 is not None:
                write_text_atomic(tmp / "asv" / f"{name}.c012", s.asv_c012)
        for name, v in (sasv or {}).items():
            enroll = tmp / "sasv" / f"{name}_enroll"
            write_data_dir(enroll, v.enroll_wav, v.enroll_spk)
            if v.spk2gender:
                write_text_atomic(enroll / "spk2gender", (f"{k} {v.spk2gender[k]}"
                                                          for k in sorted(v.spk2gender, key=c_sort_key)))
            write_text_atomic(tmp / "sasv" / f"{name}.trl", v.trials)


def summarize(out: Path, sets: Mapping[str, CmSet], sasv: Mapping[str, SasvSet] | None = None) -> str:
    return f"{out}: " + ", ".join([s.summary(name) for name, s in sets.items()]
                                  + [v.summary(name) for name, v in (sasv or {}).items()])


def parse_list(text: str, allowed: Iterable[str], what: str, parser: argparse.ArgumentParser) -> list[str]:
    """Comma-separated names, each one of ``allowed`` (a usage error otherwise)."""
    allowed = list(allowed)
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        parser.error(f"--{what} is empty")
    for n in names:
        if n not in allowed:
            parser.error(f"unknown {what[:-1] if what.endswith('s') else what} {n!r} "
                         f"(expected some of {', '.join(allowed)})")
    return list(dict.fromkeys(names))


# --- ASVspoof 2019 LA -----------------------------------------------------------------------------

def find_la_dir(root: Path) -> Path:
    """The ``LA/`` directory of the release (``root/LA`` or ``root`` itself)."""
    for candidate in (root / "LA", root):
        if (candidate / PROTOCOL_DIR).is_dir():
            return candidate
    raise SpkpeftError(f"{root}: no LA/{PROTOCOL_DIR}/ directory (expected the ASVspoof 2019 LA release layout: "
                       "LA/ASVspoof2019_LA_{train,dev,eval}/flac, LA/ASVspoof2019_LA_cm_protocols, "
                       "LA/ASVspoof2019_LA_asv_scores)")


def read_cm_protocol_2019(path: Path, audio: Mapping[str, str], audio_dir: Path) -> CmSet:
    """``SPEAKER UTT - ATTACK KEY`` lines -> a CmSet."""
    s = CmSet()
    for number, fields in read_lines(path):
        if len(fields) != 5:
            raise file_error(path, f"expected 'SPEAKER UTT - ATTACK KEY', got {' '.join(fields)!r}", number)
        spk, utt, _, attack, key = fields
        check_key(key, path, number)
        if key == SPOOF and attack == NO_ATTACK:
            raise file_error(path, f"spoofed utterance '{utt}' has no attack id", number)
        s.add(utt, audio_of(audio, utt, path, number, audio_dir, ".flac"), spk, key, attack, path, number)
    if not s.wav:
        raise file_error(path, "protocol is empty")
    return s


def read_asv_scores_2019(path: Path) -> list[str]:
    """``SOURCE KEY SCORE`` lines, checked."""
    rows = []
    for number, fields in read_lines(path):
        if len(fields) != 3:
            raise file_error(path, f"expected 'SOURCE KEY SCORE', got {' '.join(fields)!r}", number)
        rows.append(score_line(*fields, path, number))
    if not rows:
        raise file_error(path, "ASV score file is empty")
    return rows


def read_sasv_2019(asv_dir: Path, name: str, cm: CmSet, audio: Mapping[str, str], audio_dir: Path) -> SasvSet:
    """The enrollment lists (female, then male) and the gender-independent trials of set ``name``."""
    sasv = SasvSet()
    for gender, code in GENDERS.items():
        read_enrollment_list(asv_dir / ENROLL_LISTS.format(set=name, gender=gender), sasv, audio, audio_dir,
                             ".flac", code)
    trials = asv_dir / SASV_TRIALS.format(set=name)
    if not trials.is_file():
        raise file_error(trials, "SASV trial protocol does not exist")
    sasv.add_trials(trials, cm)
    return sasv


def prepare(root: Path, out: Path, sets: Sequence[str] = SETS) -> str:
    la = find_la_dir(root)
    asv_dir = la / ASV_PROTOCOL_DIR
    prepared: dict[str, CmSet] = {}
    sasv: dict[str, SasvSet] = {}
    for name in sets:
        audio_dir = la / AUDIO_DIR.format(set=name)
        protocol = la / PROTOCOL_DIR / PROTOCOLS[name]
        if not protocol.is_file():
            raise file_error(protocol, "CM protocol does not exist")
        audio = audio_files(audio_dir, ".flac")
        s = read_cm_protocol_2019(protocol, audio, audio_dir)
        if name in ASV_SCORES:
            scores = la / ASV_SCORE_DIR / ASV_SCORES[name]
            if not scores.is_file():
                raise file_error(scores, "ASV score file does not exist (needed for t-DCF)")
            s.asv_scores = read_asv_scores_2019(scores)
        prepared[name] = s
        if name in SASV_SETS and asv_dir.is_dir():
            sasv[name] = read_sasv_2019(asv_dir, name, s, audio, audio_dir)
    write_cm_corpus(out, prepared, sasv)
    return summarize(out, prepared, sasv)


def prepare_main(argv: Sequence[str] | None, prepare_fn, description: str, root_help: str, out_example: str,
                 sets: Sequence[str] = SETS) -> int:
    """The command line of a release preparation: ``ROOT OUT [--sets a,b,c]`` -> ``prepare_fn(root, out, sets)``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("root", type=Path, help=root_help)
    parser.add_argument("out", type=Path, help=f"output corpus directory, e.g. {out_example}")
    parser.add_argument("--sets", default=",".join(sets), help=f"comma-separated sets (default {','.join(sets)})")
    args = parser.parse_args(argv)
    print(prepare_fn(args.root, args.out, parse_list(args.sets, sets, "sets", parser)))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return prepare_main(argv, prepare, "ASVspoof 2019 LA release -> CM data directories, protocols, ASV scores "
                        "and (with the ASV protocols) the SASV enrollment and trials.",
                        "directory holding LA/ (the unpacked LA.zip)", "data/asvspoof2019_la")


if __name__ == "__main__":
    run_main(main)
