#!/usr/bin/env python3
"""In-the-Wild (Müller et al., Interspeech 2022) release -> a spoofing-countermeasure evaluation set.

Input layout (the released ``release_in_the_wild.zip``; ROOT is the directory holding
``release_in_the_wild/``, or that directory itself)::

    ROOT/release_in_the_wild/meta.csv    header "file,speaker,label", rows e.g.
                                         "0.wav,Alec Guinness,spoof", "4.wav,Christopher Hitchens,bona-fide"
    ROOT/release_in_the_wild/<n>.wav     the audio, beside meta.csv

Output (``OUT`` is replaced as a whole)::

    OUT/eval/{wav.scp,utt2spk,spk2utt,utt2label,utt2attack}
        utt = file name without .wav, spk = the speaker with whitespace runs turned into "_",
        label bonafide|spoof, attack "spoof" for spoofed files (the release names no attack) or "-"
    OUT/protocols/eval.txt   "SPEAKER UTT - ATTACK KEY", sorted (LC_ALL=C) by UTT

There are no ASV scores for this corpus (no t-DCF; EER only).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from spkpeft.bin._cli import run_main  # noqa: E402
from spkpeft.errors import SpkpeftError, file_error  # noqa: E402
from spkpeft.io.corpora import csv_rows  # noqa: E402
from prepare_asvspoof2019_la import BONAFIDE, SPOOF, CmSet, audio_files, summarize, write_cm_corpus  # noqa: E402

RELEASE_DIR = "release_in_the_wild"
HEADER = ["file", "speaker", "label"]
LABELS = {"bona-fide": BONAFIDE, "spoof": SPOOF}
SET = "eval"


def find_release_dir(root: Path) -> Path:
    for candidate in (root / RELEASE_DIR, root):
        if (candidate / "meta.csv").is_file():
            return candidate
    raise SpkpeftError(f"{root}: no {RELEASE_DIR}/meta.csv (expected the In-the-Wild release layout: "
                       f"{RELEASE_DIR}/meta.csv and {RELEASE_DIR}/<n>.wav)")


def read_meta(path: Path, audio: dict[str, str]) -> CmSet:
    s = CmSet()
    for number, row in csv_rows(path, HEADER):
        if len(row) != 3:
            raise file_error(path, f"expected 'file,speaker,label', got {','.join(row)!r}", number)
        name, speaker, label = (field.strip() for field in row)
        if not name.endswith(".wav") or "/" in name or len(name) <= 4 or any(c.isspace() for c in name):
            raise file_error(path, f"file '{name}' is not a <name>.wav file name", number)
        if label not in LABELS:
            raise file_error(path, f"label must be bona-fide or spoof, found '{label}'", number)
        spk = "_".join(speaker.split())
        if not spk:
            raise file_error(path, "speaker is empty", number)
        utt = name[:-4]
        if utt not in audio:
            raise file_error(path, f"'{name}' not found in {path.parent}", number)
        key = LABELS[label]
        s.add(utt, audio[utt], spk, key, SPOOF, path, number)
    if not s.wav:
        raise file_error(path, "meta.csv lists no file")
    return s


def prepare(root: Path, out: Path) -> str:
    release = find_release_dir(root)
    sets = {SET: read_meta(release / "meta.csv", audio_files(release, ".wav"))}
    write_cm_corpus(out, sets)
    return summarize(out, sets)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="In-the-Wild release -> CM evaluation data directory.")
    parser.add_argument("root", type=Path, help=f"directory holding {RELEASE_DIR}/ (meta.csv and the wav files)")
    parser.add_argument("out", type=Path, help="output corpus directory, e.g. data/in_the_wild")
    args = parser.parse_args(argv)
    print(prepare(args.root, args.out))
    return 0


if __name__ == "__main__":
    run_main(main)
