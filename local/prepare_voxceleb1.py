#!/usr/bin/env python3
"""VoxCeleb1 root -> Kaldi data directories and trial lists.

Input layout (the official release, dev and test audio merged under one
``wav/``; ``vox1_dev_wav/wav`` and ``vox1_test_wav/wav`` side by side also work)::

    ROOT/wav/<spk>/<session>/<utt>.wav        e.g. wav/id10270/5r0dWxy17C8/00001.wav
    ROOT/veri_test.txt, veri_test2.txt, list_test_all.txt, list_test_all2.txt,
         list_test_hard.txt, list_test_hard2.txt   lines "1|0 spk/sess/utt.wav spk/sess/utt.wav"

Output (``OUT`` is replaced as a whole, so a half-written preparation is never
left behind)::

    OUT/test/{wav.scp,utt2spk,spk2utt}   every utterance of the speakers in the trial lists in use
    OUT/train/{...}                      every utterance of the other speakers (if any)
    OUT/trials/<name>                    "utt1 utt2 target|nontarget", sorted (LC_ALL=C)

Utterance id = ``spk/session/utt`` (the path under ``wav/`` without ``.wav``).
Trial names: vox1_o (veri_test.txt), vox1_o_clean (veri_test2.txt), vox1_e
(list_test_all.txt), vox1_e_clean (list_test_all2.txt), vox1_h
(list_test_hard.txt), vox1_h_clean (list_test_hard2.txt).

Note: Vox1-E and Vox1-H are drawn from all 1,251 VoxCeleb1 speakers, so when
they are in use no training speaker remains: a model scored on them must be
trained on another corpus (e.g. VoxCeleb2 dev).  Use ``--lists vox1_o,vox1_o_clean``
to train on VoxCeleb1 dev and evaluate on Vox1-O.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from spkpeft.bin._cli import run_main  # noqa: E402
from spkpeft.io.corpora import LABELS, walk_speaker_sessions  # noqa: E402
from spkpeft.io.atomic import new_directory, write_text_atomic  # noqa: E402
from spkpeft.io.datadir import c_sort_key, write_data_dir  # noqa: E402
from spkpeft.errors import SpkpeftError, file_error  # noqa: E402

TRIAL_LISTS = {
    "vox1_o": "veri_test.txt",
    "vox1_o_clean": "veri_test2.txt",
    "vox1_e": "list_test_all.txt",
    "vox1_e_clean": "list_test_all2.txt",
    "vox1_h": "list_test_hard.txt",
    "vox1_h_clean": "list_test_hard2.txt",
}


def find_wav_dirs(root: Path) -> list[Path]:
    """The ``wav/`` directories of a VoxCeleb1 root."""
    candidates = [root / "wav", root / "vox1_dev_wav" / "wav", root / "vox1_test_wav" / "wav"]
    found = [d for d in candidates if d.is_dir()]
    if not found:
        raise SpkpeftError(f"{root}: no wav/ directory (expected ROOT/wav/<spk>/<session>/<utt>.wav)")
    return found


def scan_utterances(root: Path) -> dict[str, str]:
    """Map ``spk/session/utt`` -> absolute wav path for every wav of the corpus."""
    wav: dict[str, str] = {}
    for wav_dir in find_wav_dirs(root):
        for utt_id, path in walk_speaker_sessions(wav_dir, ".wav"):
            if utt_id in wav:
                raise SpkpeftError(f"{path}: utterance {utt_id} appears in two wav/ directories")
            wav[utt_id] = path
    if not wav:
        raise SpkpeftError(f"{root}: no .wav files under wav/<spk>/<session>/")
    return wav


def read_voxceleb_list(path: Path, known: dict[str, str]) -> list[tuple[str, str, str]]:
    """Parse an official list ("1|0 a.wav b.wav") into sorted, unique Kaldi trials."""
    trials: dict[tuple[str, str], str] = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 3 or fields[0] not in LABELS:
                raise file_error(path, f"expected '1|0 spk/sess/utt.wav spk/sess/utt.wav', got {line.strip()!r}", number)
            pair = []
            for rel in fields[1:]:
                if not rel.endswith(".wav") or rel.count("/") != 2:
                    raise file_error(path, f"'{rel}' is not of the form spk/session/utt.wav", number)
                utt = rel[:-4]
                if utt not in known:
                    raise file_error(path, f"'{rel}' not found under wav/", number)
                pair.append(utt)
            key = (pair[0], pair[1])
            label = LABELS[fields[0]]
            if trials.get(key, label) != label:
                raise file_error(path, f"pair {key[0]} {key[1]} listed with both labels", number)
            trials[key] = label
    if not trials:
        raise file_error(path, "trial list is empty")
    lines = sorted(trials, key=lambda k: c_sort_key(f"{k[0]} {k[1]}"))
    return [(a, b, trials[(a, b)]) for a, b in lines]


def speaker_of(utt: str) -> str:
    return utt.split("/", 1)[0]


def prepare(root: Path, out: Path, lists: Sequence[str] | None) -> str:
    """Write the data directories and trials; returns a one-line summary."""
    wav = scan_utterances(root)
    present = {name: root / fname for name, fname in TRIAL_LISTS.items() if (root / fname).is_file()}
    if lists is None:
        lists = sorted(present)
    missing = [name for name in lists if name not in present]
    if missing:
        raise SpkpeftError(f"{root}: trial list {missing[0]} ({TRIAL_LISTS.get(missing[0], '?')}) not found")
    if not lists:
        raise SpkpeftError(f"{root}: none of the official trial lists ({', '.join(TRIAL_LISTS.values())}) found")
    trials = {name: read_voxceleb_list(present[name], wav) for name in lists}
    test_spks = {speaker_of(u) for rows in trials.values() for a, b, _ in rows for u in (a, b)}
    test = {u: p for u, p in wav.items() if speaker_of(u) in test_spks}
    train = {u: p for u, p in wav.items() if speaker_of(u) not in test_spks}

    with new_directory(out) as tmp:
        write_data_dir(tmp / "test", test, {u: speaker_of(u) for u in test})
        if train:
            write_data_dir(tmp / "train", train, {u: speaker_of(u) for u in train})
        for name, rows in trials.items():
            write_text_atomic(tmp / "trials" / name, (" ".join(row) for row in rows))

    summary = (f"{out}: test {len(test)} utts / {len(test_spks)} spks, "
               f"train {len(train)} utts / {len({speaker_of(u) for u in train})} spks, "
               f"trials {', '.join(f'{n} ({len(r)})' for n, r in trials.items())}")
    if not train:
        summary += ("\nNOTE: the trial lists in use cover every speaker, so there is no training set: "
                    "Vox1-E/H span all VoxCeleb1 speakers; train on another corpus (VoxCeleb2) "
                    "or use --lists vox1_o,vox1_o_clean")
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="VoxCeleb1 root -> Kaldi data directories and trials.")
    parser.add_argument("root", type=Path, help="VoxCeleb1 root (wav/ and the official lists)")
    parser.add_argument("out", type=Path, help="output corpus directory, e.g. data/voxceleb1")
    parser.add_argument("--lists", default=None,
                        help="comma-separated trial lists in use (default: every official list present)")
    args = parser.parse_args(argv)
    lists = None
    if args.lists:
        lists = [name.strip() for name in args.lists.split(",") if name.strip()]
        unknown = [n for n in lists if n not in TRIAL_LISTS]
        if unknown:
            parser.error(f"unknown trial list {unknown[0]!r} (expected some of {', '.join(TRIAL_LISTS)})")
    print(prepare(args.root, args.out, lists))
    return 0


if __name__ == "__main__":
    run_main(main)
