#!/usr/bin/env python3
"""Import your own corpus: Kaldi data directories, plus a trials file (``--task sv``) or
class labels (``--task cls``).

Input (``--task sv``, the default)::

    SRC_DIR/wav.scp    "<utt> <path>"  the path is the rest of the line (spaces allowed), a file
                       soundfile reads (16 kHz mono for the recipe); no pipes ("cmd |"), no segments
    SRC_DIR/utt2spk    "<utt> <spk>"   every utterance of wav.scp, and only those
    SRC_DIR/spk2utt    optional; ignored (derived again from utt2spk)
    TRIALS             either Kaldi   "<utt1> <utt2> target|nontarget"
                       or VoxCeleb    "1|0 <utt1> <utt2>"   (1 = same speaker)

Files may be unsorted; ids must be unique and free of whitespace.  Relative
audio paths are relative to the current directory (the recipe root when run
through ``local/prepare_kaldi_dir.sh``, the Kaldi convention) and are written
absolute.  In the trials, a token that is not an utterance id but becomes one
without a trailing ``.wav``/``.flac`` is accepted (VoxCeleb lists name files);
with ``--enroll-dir`` the first token may also be a speaker of that directory
(an enrollment id, scored against the mean of its utterances' embeddings).

Output (``OUT`` is replaced as a whole)::

    OUT/test/{wav.scp,utt2spk,spk2utt}     from SRC_DIR, sorted (LC_ALL=C)
    OUT/train/...                          from --train-dir (optional)
    OUT/enroll/...                         from --enroll-dir (optional)
    OUT/trials/<NAME>                      "<utt1> <utt2> target|nontarget", sorted, unique

With ``--task cls`` (utterance classification) there is no trials file: ``SRC_DIR`` (the
test set), ``--train-dir`` and ``--dev-dir`` each hold ``wav.scp`` and
``utt2label`` (``"<utt> <class>"``, every utterance of wav.scp); ``utt2spk`` is optional
(absent: each utterance is its own speaker, Kaldi's convention)::

    OUT/{test,train,dev}/{wav.scp,utt2spk,spk2utt,utt2label}

Every problem is one error line naming the file and line.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Mapping, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from spkpeft.bin._cli import run_main  # noqa: E402
from spkpeft.io.corpora import (  # noqa: E402
    KALDI_LABELS, LABELS, Trial, add_trial, has_both_labels, sorted_trials, strip_audio_ext, write_corpus,
)
from spkpeft.errors import SpkpeftError, file_error  # noqa: E402

NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
UNSUPPORTED_FILES = ("segments",)


def read_table(path: Path, rest_of_line: bool) -> dict[str, tuple[str, int]]:
    """A two-column Kaldi file in any order -> {key: (value, line)}; unique keys required."""
    if not path.is_file():
        raise file_error(path, "file does not exist")
    table: dict[str, tuple[str, int]] = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.strip().split(maxsplit=1) if rest_of_line else line.split()
            if len(parts) != 2:
                expected = "'<utt> <path>'" if rest_of_line else "'<utt> <spk>'"
                raise file_error(path, f"expected {expected}, got {line.strip()!r}", number)
            key, value = parts
            if key in table:
                raise file_error(path, f"duplicate id '{key}' (first on line {table[key][1]})", number)
            table[key] = (value, number)
    if not table:
        raise file_error(path, "file is empty")
    return table


def audio_path(scp: Path, value: str, number: int) -> str:
    """Absolute path of a wav.scp entry; pipes and missing files are errors."""
    if value.rstrip().endswith("|"):
        raise file_error(scp, "pipe commands are not supported: convert the audio to files first", number)
    path = Path(value).expanduser().absolute()
    if not path.is_file():
        raise file_error(scp, f"audio file '{value}' does not exist", number)
    return str(path)


def read_matching(path: Path, wav_table: Mapping[str, tuple[str, int]], scp: Path) -> dict[str, str]:
    """A per-utterance table (utt2spk, utt2label) for exactly the utterances of wav.scp."""
    table = read_table(path, rest_of_line=False)
    for utt, (_, number) in wav_table.items():
        if utt not in table:
            raise file_error(scp, f"utterance '{utt}' is missing from {path.name}", number)
    for utt, (_, number) in table.items():
        if utt not in wav_table:
            raise file_error(path, f"utterance '{utt}' is missing from wav.scp", number)
    return {utt: value for utt, (value, _) in table.items()}


def import_dir(src: Path, labels: bool = False) -> tuple:
    """Read and check one Kaldi data directory -> ``(wav, utt2spk)``, or with ``labels``
    ``(wav, utt2spk, utt2label)`` (utt2spk then optional: each utterance its own speaker)."""
    if not src.is_dir():
        raise SpkpeftError(f"{src}: data directory does not exist")
    for name in UNSUPPORTED_FILES:
        if (src / name).exists():
            raise file_error(src / name, "segments are not supported: cut the utterances into files first")
    scp, u2s_path = src / "wav.scp", src / "utt2spk"
    wav_table = read_table(scp, rest_of_line=True)
    if labels and not u2s_path.is_file():
        utt2spk = {utt: utt for utt in wav_table}
    else:
        utt2spk = read_matching(u2s_path, wav_table, scp)
    wav = {utt: audio_path(scp, value, number) for utt, (value, number) in wav_table.items()}
    if not labels:
        return wav, utt2spk
    return wav, utt2spk, read_matching(src / "utt2label", wav_table, scp)


def trial_format(fields: list[str]) -> str | None:
    """``"kaldi"`` for ``utt1 utt2 target|nontarget``, ``"vox"`` for ``1|0 utt1 utt2``, else None."""
    if len(fields) != 3:
        return None
    if fields[2] in KALDI_LABELS:
        return "kaldi"
    if fields[0] in LABELS:
        return "vox"
    return None


def resolve_token(token: str, known: Mapping[str, object] | set[str]) -> str | None:
    """``token`` or ``token`` without a trailing .wav/.flac, whichever is in ``known``."""
    for candidate in (token, strip_audio_ext(token)):
        if candidate in known:
            return candidate
    return None


def read_any_trials(path: Path, eval_utts: set[str], enroll_ids: set[str]) -> list[Trial]:
    """Kaldi or VoxCeleb trials (the first line decides) -> sorted, unique Kaldi trials.

    Both tokens must be utterances of an evaluation directory (test, enroll);
    the first may also be an enrollment id (a speaker of the enroll directory).
    """
    if not path.is_file():
        raise file_error(path, "trials file does not exist")
    trials: dict[tuple[str, str], str] = {}
    fmt = None
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            this = trial_format(fields)
            if this is None or (fmt is not None and this != fmt):
                expected = {"kaldi": "'utt1 utt2 target|nontarget'", "vox": "'1|0 utt1 utt2'"}.get(
                    fmt or "", "'utt1 utt2 target|nontarget' or '1|0 utt1 utt2'")
                raise file_error(path, f"expected {expected}, got {line.strip()!r}", number)
            fmt = this
            a, b, label = (fields if fmt == "kaldi" else [fields[1], fields[2], LABELS[fields[0]]])
            utt1 = resolve_token(a, eval_utts) or resolve_token(a, enroll_ids)
            utt2 = resolve_token(b, eval_utts)
            for token, found in ((a, utt1), (b, utt2)):
                if found is None:
                    what = "an utterance of the test/enroll directories"
                    if enroll_ids and token == a:
                        what += " nor an enrollment id"
                    raise file_error(path, f"'{token}' is not {what}", number)
            add_trial(trials, utt1, utt2, label, path, number)
    rows = sorted_trials(trials)
    if not rows:
        raise file_error(path, "trials file is empty")
    if not has_both_labels(rows):
        raise file_error(path, "needs both target and nontarget trials (EER and minDCF use both)")
    return rows


def check_disjoint(dirs: Mapping[str, tuple[Mapping[str, str], Mapping[str, str]]],
                   sources: Mapping[str, Path]) -> list[str]:
    """Utterance ids must differ across directories; returns notes on speakers shared with train."""
    owner: dict[str, str] = {}
    for name, (wav, _) in dirs.items():
        for utt in wav:
            if utt in owner:
                raise SpkpeftError(f"{sources[name] / 'wav.scp'}: utterance '{utt}' is also in "
                                   f"{sources[owner[utt]] / 'wav.scp'}: ids must be unique across directories")
            owner[utt] = name
    notes = []
    if "train" in dirs:
        train_spks = set(dirs["train"][1].values())
        for name in ("test", "enroll"):
            if name in dirs:
                shared = train_spks & set(dirs[name][1].values())
                if shared:
                    notes.append(f"NOTE: {len(shared)} speaker(s) of {name} are also training speakers "
                                 f"(e.g. '{sorted(shared)[0]}')")
    return notes


def prepare(src: Path, trials_path: Path, out: Path, name: str,
            train_dir: Path | None = None, enroll_dir: Path | None = None) -> str:
    """Import the directories and the trials; returns a summary (one line, plus notes)."""
    sources = {"test": src}
    for part, path in (("train", train_dir), ("enroll", enroll_dir)):
        if path is not None:
            sources[part] = path
    dirs = {part: import_dir(path) for part, path in sources.items()}
    notes = check_disjoint(dirs, sources)
    eval_utts = set(dirs["test"][0]) | (set(dirs["enroll"][0]) if "enroll" in dirs else set())
    enroll_ids = set(dirs["enroll"][1].values()) if "enroll" in dirs else set()
    rows = read_any_trials(trials_path, eval_utts, enroll_ids)
    write_corpus(out, dirs, {name: rows})
    counts = ", ".join(f"{part} {len(w)} utts / {len(set(u.values()))} spks" for part, (w, u) in dirs.items())
    return "\n".join([f"{out}: {counts}, trials {name} ({len(rows)})", *notes])


def prepare_labelled(src: Path, out: Path, train_dir: Path | None, dev_dir: Path | None) -> str:
    """``--task cls``: import labelled directories (no trials); returns a one-line summary."""
    sources = {"test": src}
    for part, path in (("train", train_dir), ("dev", dev_dir)):
        if path is not None:
            sources[part] = path
    dirs = {part: import_dir(path, labels=True) for part, path in sources.items()}
    check_disjoint({part: contents[:2] for part, contents in dirs.items()}, sources)
    write_corpus(out, dirs, {})
    counts = ", ".join(f"{part} {len(c[0])} utts / {len(set(c[2].values()))} classes" for part, c in dirs.items())
    return f"{out}: {counts}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Import Kaldi data directories with a trials file (sv) or labels (cls).")
    parser.add_argument("paths", nargs="+", type=Path,
                        help="sv: SRC_DIR TRIALS OUT; cls: SRC_DIR OUT (SRC_DIR: the data directory to evaluate on)")
    parser.add_argument("--task", choices=("sv", "cls"), default="sv")
    parser.add_argument("--dev-dir", type=Path, default=None, help="cls: Kaldi data directory to validate on")
    parser.add_argument("--name", default=None,
                        help="trial list name (default: the trials file name without extension)")
    parser.add_argument("--train-dir", type=Path, default=None, help="Kaldi data directory to train on")
    parser.add_argument("--enroll-dir", type=Path, default=None,
                        help="Kaldi data directory whose speakers are enrollment ids (first trial field)")
    args = parser.parse_args(argv)
    if args.task == "cls":
        if len(args.paths) != 2 or args.enroll_dir is not None or args.name is not None:
            parser.error("--task cls takes SRC_DIR OUT (and --train-dir, --dev-dir)")
        print(prepare_labelled(args.paths[0], args.paths[1], args.train_dir, args.dev_dir))
        return 0
    if len(args.paths) != 3 or args.dev_dir is not None:
        parser.error("--task sv takes SRC_DIR TRIALS OUT (and --train-dir, --enroll-dir, --name)")
    src, trials, out = args.paths
    name = args.name or trials.name.split(".", 1)[0]
    if not NAME_RE.match(name):
        parser.error(f"trial list name {name!r} must use only letters, digits, '_', '.' and '-' (use --name)")
    print(prepare(src, trials, out, name, args.train_dir, args.enroll_dir))
    return 0


if __name__ == "__main__":
    run_main(main)
