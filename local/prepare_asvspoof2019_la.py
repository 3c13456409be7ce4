#!/usr/bin/env python3
"""ASVspoof 2019 LA release -> spoofing-countermeasure data directories, CM protocols and ASV scores.

Input layout (the released ``LA.zip``; ROOT is the directory holding ``LA/``, or ``LA/`` itself)::

    ROOT/LA/ASVspoof2019_LA_{train,dev,eval}/flac/<utt>.flac
    ROOT/LA/ASVspoof2019_LA_cm_protocols/ASVspoof2019.LA.cm.{train.trn,dev.trl,eval.trl}.txt
        "SPEAKER UTT - ATTACK KEY"   e.g. "LA_0079 LA_T_1138215 - - bonafide", "LA_0079 LA_T_1271820 - A01 spoof"
    ROOT/LA/ASVspoof2019_LA_asv_scores/ASVspoof2019.LA.asv.{dev,eval}.gi.trl.scores.txt
        "SOURCE KEY SCORE"           e.g. "bonafide target 1.23", "A07 spoof -2.1"

Output (``OUT`` is replaced as a whole, so a half-written preparation is never left behind)::

    OUT/<set>/{wav.scp,utt2spk,spk2utt,utt2label,utt2attack}   set = train, dev, eval
        utt = protocol UTT, spk = protocol SPEAKER, label bonafide|spoof, attack Axx or "-" (bona fide)
    OUT/protocols/<set>.txt     "SPEAKER UTT - ATTACK KEY", sorted (LC_ALL=C) by UTT
    OUT/asv/<set>.scores        "SOURCE KEY SCORE" (the organisers' ASV scores, for t-DCF): dev, eval

Every malformed protocol or score line is an error naming file:line; a protocol
utterance without its audio file is an error naming the protocol line; audio
files without a protocol line are ignored.

The helpers here are shared by ``prepare_asvspoof2021.py`` and ``prepare_in_the_wild.py``.
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


def write_cm_corpus(out: Path, sets: Mapping[str, CmSet]) -> None:
    """Write ``out/<set>/``, ``out/protocols/<set>.txt`` and ``out/asv/<set>.scores``, replacing ``out``."""
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


def summarize(out: Path, sets: Mapping[str, CmSet]) -> str:
    return f"{out}: " + ", ".join(s.summary(name) for name, s in sets.items())


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


def prepare(root: Path, out: Path, sets: Sequence[str] = SETS) -> str:
    la = find_la_dir(root)
    prepared: dict[str, CmSet] = {}
    for name in sets:
        audio_dir = la / AUDIO_DIR.format(set=name)
        protocol = la / PROTOCOL_DIR / PROTOCOLS[name]
        if not protocol.is_file():
            raise file_error(protocol, "CM protocol does not exist")
        s = read_cm_protocol_2019(protocol, audio_files(audio_dir, ".flac"), audio_dir)
        if name in ASV_SCORES:
            scores = la / ASV_SCORE_DIR / ASV_SCORES[name]
            if not scores.is_file():
                raise file_error(scores, "ASV score file does not exist (needed for t-DCF)")
            s.asv_scores = read_asv_scores_2019(scores)
        prepared[name] = s
    write_cm_corpus(out, prepared)
    return summarize(out, prepared)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="ASVspoof 2019 LA release -> CM data directories, "
                                                 "protocols and ASV scores.")
    parser.add_argument("root", type=Path, help="directory holding LA/ (the unpacked LA.zip)")
    parser.add_argument("out", type=Path, help="output corpus directory, e.g. data/asvspoof2019_la")
    parser.add_argument("--sets", default=",".join(SETS), help=f"comma-separated sets (default {','.join(SETS)})")
    args = parser.parse_args(argv)
    sets = parse_list(args.sets, SETS, "sets", parser)
    print(prepare(args.root, args.out, sets))
    return 0


if __name__ == "__main__":
    run_main(main)
