"""Every reader a user feeds, under property-based fuzzing (hypothesis).

For each parser, two properties:

* **arbitrary input** (random bytes, random text): the reader returns, or raises a
  :class:`SpkpeftError` of one line that names the file (and, for a line's problem, a line
  of that file) -- never any other exception;
* **mutated valid input**: a valid file drawn at random, written with the variants users'
  tools produce (CRLF line ends, a UTF-8 BOM, tabs or several blanks between fields, no final
  newline), must parse to exactly what was drawn; then mutated (lines swapped -- unsorted --,
  duplicated, blanked, truncated, a field replaced, a byte such as ``\\xff`` (non-UTF-8), NUL
  or ``\\r`` inserted) it must parse or fail as above, and where the format has a simple
  reference (Kaldi tables, trials, scores) a successful parse must equal the reference's.

Examples are derandomized (the same cases on every run); ``FUZZ_EXAMPLES`` sets how many per
parser and property (``SPKPEFT_FUZZ_EXAMPLES`` overrides it, e.g. for a longer run by hand).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import REPO
from spkpeft.errors import SpkpeftError

sys.path.insert(0, str(REPO / "local"))
import prepare_asvspoof2019_la as a19  # noqa: E402
import prepare_asvspoof2021 as a21  # noqa: E402
import prepare_esc50  # noqa: E402
import prepare_in_the_wild  # noqa: E402
import prepare_speechcommands  # noqa: E402

FUZZ_EXAMPLES = int(os.environ.get("SPKPEFT_FUZZ_EXAMPLES", "50"))
FUZZ = settings(max_examples=FUZZ_EXAMPLES, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large, HealthCheck.filter_too_much])
#: cases run per parser and property (printed at the end of the module with -s)
CASES: dict[str, int] = {}


# ------------------------------------------------------------------ drawing tokens and files

def _token_ok(t: str) -> bool:
    return t.split() == [t] and "\0" not in t and "\r" not in t


#: a Kaldi id or label: no whitespace; ASCII and beyond (accents, CJK, emoji)
TOKEN = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")), min_size=1, max_size=6
                ).filter(_token_ok)
#: a path: spaces inside allowed
PATH = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), min_size=1, max_size=12).map(
    lambda t: "/d/" + " ".join(t.split())).filter(lambda p: not p.endswith("|") and p.strip() == p)


def unique_sorted(tokens: list[str]) -> list[str]:
    return sorted(set(tokens), key=lambda t: t.encode())


@dataclass
class Style:
    """How a user's tool wrote a file."""

    sep: str = " "
    eol: str = "\n"
    bom: bool = False
    final_newline: bool = True


STYLE = st.builds(Style, st.sampled_from([" ", "\t", "  ", " \t "]), st.sampled_from(["\n", "\r\n"]),
                  st.booleans(), st.booleans())


def render(rows: list[list[str]], style: Style, sep_fields: bool = True) -> bytes:
    text = style.eol.join(style.sep.join(r) if sep_fields else r[0] for r in rows)
    if rows and style.final_newline:
        text += style.eol
    return (b"\xef\xbb\xbf" if style.bom else b"") + text.encode("utf-8")


MUTATIONS = ("swap", "duplicate", "blank", "byte", "delete", "truncate", "field")


@st.composite
def mutated(draw, content: bytes) -> tuple[bytes, bool]:
    """``content`` with 0-3 mutations; ``(bytes, whether any was applied)``."""
    n = draw(st.integers(0, 3))
    data = content
    for _ in range(n):
        kind = draw(st.sampled_from(MUTATIONS))
        lines = data.split(b"\n")
        i = draw(st.integers(0, max(0, len(lines) - 1)))
        if kind == "swap" and len(lines) > 1:
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif kind == "duplicate":
            lines.insert(i, lines[i])
        elif kind == "blank":
            lines.insert(i, draw(st.sampled_from([b"", b" ", b"\t", b"\r"])))
        elif kind == "field" and lines[i]:
            fields = re.split(rb"([ \t,]+)", lines[i])
            k = draw(st.integers(0, len(fields) - 1))
            fields[k] = draw(st.text(max_size=5)).encode("utf-8")
            lines[i] = b"".join(fields)
        data = b"\n".join(lines)
        if kind == "byte":
            at = draw(st.integers(0, len(data)))
            data = data[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\x00", b"\r", b"\t", b"\xef\xbb\xbf",
                                                     b"\xe2\x80\xa8", b"#", b"'", b'"', b","])) + data[at:]
        elif kind == "delete" and data:
            at = draw(st.integers(0, len(data) - 1))
            data = data[:at] + data[at + draw(st.integers(1, 8)):]
        elif kind == "truncate":
            data = data[: draw(st.integers(0, len(data)))]
    return data, data != content


ARBITRARY = st.one_of(st.binary(max_size=300), st.text(max_size=200).map(lambda t: t.encode("utf-8")),
                      st.lists(st.lists(st.text(max_size=6), max_size=6).map(" ".join), max_size=8).map(
                          lambda ls: "\n".join(ls).encode("utf-8")))


# ------------------------------------------------------------------ reference parsers

def ref_lines(data: bytes) -> list[str] | None:
    """The lines of a file as :mod:`spkpeft.textfile` defines them (None: undecodable)."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if "\0" in text:
        return None
    lines = text.replace("\r\n", "\n").split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def ref_table(data: bytes, rest_of_line: bool = False) -> dict | None:
    """A Kaldi table (``wav.scp``: value = rest of line): unique keys in byte order, no blank line."""
    lines = ref_lines(data)
    if not lines:
        return None
    table, previous = {}, None
    for line in lines:
        parts = line.strip().split(maxsplit=1) if rest_of_line else line.split()
        if len(parts) != 2 or parts[0] in table or (previous is not None and parts[0].encode() < previous.encode()):
            return None
        table[parts[0]] = parts[1]
        previous = parts[0]
    return table


def ref_datadir(files: dict[str, bytes]) -> dict | None:
    """The tables of a Kaldi data directory as ``read_data_dir`` must accept it (None: refused)."""
    wav, utt2spk = ref_table(files["wav.scp"], rest_of_line=True), ref_table(files["utt2spk"])
    if wav is None or utt2spk is None or set(wav) != set(utt2spk):
        return None
    if any(v.rstrip().endswith("|") for v in wav.values()):
        return None
    expected: dict[str, list[str]] = {}
    for utt, spk in utt2spk.items():
        expected.setdefault(spk, []).append(utt)
    spk2utt, previous = {}, None
    for line in ref_lines(files["spk2utt"]) or [None]:
        if line is None:
            return None
        fields = line.split()
        if not fields:
            continue  # blank lines are skipped in spk2utt
        spk, utts = fields[0], fields[1:]
        if spk not in expected or utts != sorted(expected[spk], key=lambda u: u.encode()) or \
                (previous is not None and spk.encode() <= previous.encode()):
            return None
        spk2utt[spk], previous = utts, spk
    if set(spk2utt) != set(expected):
        return None
    out = {"wav.scp": wav, "utt2spk": utt2spk, "spk2utt": spk2utt}
    for name in ("utt2label", "utt2attack", "utt2condition"):
        if name in files:
            table = ref_table(files[name])
            if table is None or set(table) != set(wav):
                return None
            out[name] = table
    return out


NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def ref_records(data: bytes, n: int) -> list[list[str]] | None:
    lines = ref_lines(data)
    if not lines or any(len(line.split()) != n for line in lines):
        return None
    return [line.split() for line in lines]


def ref_trials(data: bytes):
    rows = ref_records(data, 3)
    if rows is None or any(r[2] not in ("target", "nontarget") for r in rows) or \
            len({(r[0], r[1]) for r in rows}) != len(rows):
        return None
    return [r[0] for r in rows], [r[1] for r in rows], [r[2] == "target" for r in rows]


def ref_scores(data: bytes):
    rows = ref_records(data, 3)
    if rows is None or len({(r[0], r[1]) for r in rows}) != len(rows):
        return None
    if not all(NUMBER.fullmatch(r[2]) and abs(float(r[2])) != float("inf") for r in rows):
        return None
    return {(r[0], r[1]): float(r[2]) for r in rows}


# ------------------------------------------------------------------ the parsers

class AnyAudio(dict):
    """An audio directory that holds every file asked for (the protocol readers check names only here)."""

    def get(self, key, default=None):
        return f"/audio/{key}.flac"

    def __contains__(self, key) -> bool:
        return True

    def __getitem__(self, key):
        return f"/audio/{key}.wav"


@dataclass
class Parser:
    """One reader: the file it reads in a scratch directory, its companions, how to call it,
    valid content (and what it must parse to), and a reference for mutated content."""

    name: str
    file: str                                          # relative to the scratch directory
    parse: Callable[[Path], Any]                       # the scratch directory -> a comparable parse
    valid: Callable[[Any], tuple[bytes, Any, dict]]    # draw -> (content, expected parse, companion files)
    companions: dict[str, bytes] | None = None         # the other files, for arbitrary content
    reference: Callable[[bytes, dict], Any] | None = None  # (content, companions) -> expected parse (None: must fail)


def datadir_parser(name: str, rest_of_line: bool = False) -> Parser:
    """A file of a Kaldi data directory, read with the whole directory by ``read_data_dir``."""
    from spkpeft.io.datadir import read_data_dir

    def draw_dir(draw):
        utts = unique_sorted(draw(st.lists(TOKEN, min_size=1, max_size=6)))
        spks = {u: draw(TOKEN) for u in utts}
        files = {"wav.scp": [[u, draw(PATH)] for u in utts], "utt2spk": [[u, spks[u]] for u in utts]}
        spk2utt: dict[str, list[str]] = {}
        for u in utts:
            spk2utt.setdefault(spks[u], []).append(u)
        files["spk2utt"] = [[s, *spk2utt[s]] for s in unique_sorted(list(spk2utt))]
        if name in ("utt2label", "utt2attack", "utt2condition"):
            files[name] = [[u, draw(TOKEN)] for u in utts]
        rows = files.pop(name)
        expected = {r[0]: r[1:] if name == "spk2utt" else r[1] for r in rows}
        return render(rows, draw(STYLE)), expected, {f: render(r, Style()) for f, r in files.items()}

    def parse(d: Path):
        data = read_data_dir(d)
        if name == "spk2utt":
            return dict(data.spk2utt)
        table = {"wav.scp": data.wav, "utt2spk": data.utt2spk}.get(name) or getattr(data, name)
        return dict(table)

    base = {"wav.scp": b"a /d/a.wav\nb /d/b.wav\n", "utt2spk": b"a s\nb t\n", "spk2utt": b"s a\nt b\n",
            "utt2label": b"a x\nb y\n", "utt2attack": b"a -\nb A01\n", "utt2condition": b"a LA-C1\nb LA-C2\n"}
    companions = {f: c for f, c in base.items() if f != name and (f in ("wav.scp", "utt2spk", "spk2utt"))}
    def reference(content: bytes, others: dict[str, bytes]):
        files = {**others, name: content}
        return (ref_datadir(files) or {}).get(name)

    return Parser(name, name, parse, st.composite(lambda draw: draw_dir(draw))(), companions, reference)


def records_parser(name: str, file: str, read, rows_of, expected_of, reference=None) -> Parser:
    """A one-file record reader: ``rows_of(draw)`` draws the records, ``expected_of(rows)`` the parse."""

    @st.composite
    def valid(draw):
        rows = draw(rows_of())
        return render(rows, draw(STYLE)), expected_of(rows), {}

    return Parser(name, file, lambda d: read(d / file), valid(), {},
                  (lambda content, _others: reference(content)) if reference else None)


def trial_rows():
    return st.lists(st.tuples(TOKEN, TOKEN, st.sampled_from(["target", "nontarget"])), min_size=1, max_size=8,
                    unique_by=lambda r: (r[0], r[1])).map(lambda rs: [list(r) for r in rs])


def score_text():
    return st.one_of(st.floats(allow_nan=False, allow_infinity=False, width=64).map(repr).filter(
        lambda t: "inf" not in t), st.integers(-10**6, 10**6).map(str),
        st.floats(-1e3, 1e3).map(lambda x: f"{x:.6f}"))


def score_rows():
    return st.lists(st.tuples(TOKEN, TOKEN, score_text()), min_size=1, max_size=8,
                    unique_by=lambda r: (r[0], r[1])).map(lambda rs: [list(r) for r in rs])


def sasv_protocol_rows():
    """SASV trial protocol rows ``SPEAKER UTT [GENDER] SOURCE KEY`` (one layout per file), with a target,
    a nontarget and a spoof trial (:func:`spkpeft.eval.sasv_metrics.read_sasv_protocol`)."""
    keys = st.lists(st.sampled_from(["target", "nontarget", "spoof"]), min_size=0, max_size=5).map(
        lambda ks: ["target", "nontarget", "spoof"] + ks)
    return st.tuples(keys, st.booleans(), st.data()).map(lambda args: _sasv_rows(*args))


def _sasv_rows(keys, gendered, data):
    pairs = data.draw(st.lists(st.tuples(TOKEN, TOKEN), min_size=len(keys), max_size=len(keys), unique=True))
    rows = []
    for (speaker, utt), key in zip(pairs, keys):
        source = data.draw(st.sampled_from(["A07", "A19", "A11"])) if key == "spoof" else "bonafide"
        rows.append([speaker, utt] + ([data.draw(st.sampled_from(["F", "M"]))] if gendered else []) + [source, key])
    return data.draw(st.permutations(rows))


def _sasv_protocol(path):
    from spkpeft.eval.sasv_metrics import read_sasv_protocol

    p = read_sasv_protocol(path)
    return p.speakers, p.utts, p.sources, p.keys


def protocol_rows(n_extra: int = 0):
    """ASVspoof CM protocol rows ``SPEAKER UTT - ATTACK KEY``."""
    row = st.tuples(TOKEN, TOKEN, st.sampled_from(["bonafide", "spoof"]), st.sampled_from(["A01", "A07", "A19"]))
    return st.lists(row, min_size=1, max_size=8, unique_by=lambda r: r[1]).map(
        lambda rs: [[s, u, "-", "-" if k == "bonafide" else a, k] for s, u, k, a in rs])


def asv_rows():
    row = st.tuples(st.sampled_from(["target", "nontarget", "spoof"]), st.sampled_from(["A07", "A08"]), score_text())
    return st.lists(row, min_size=3, max_size=9).filter(lambda rs: {r[0] for r in rs} == {"target", "nontarget", "spoof"}
                                                        ).map(lambda rs: [["bonafide" if k != "spoof" else a, k, s]
                                                                          for k, a, s in rs])


def cm_set(s) -> dict:
    return {"wav": dict(s.wav), "spk": dict(s.utt2spk), "label": dict(s.utt2label), "attack": dict(s.utt2attack),
            **({"condition": dict(s.utt2condition)} if s.utt2condition is not None else {})}


def la2021_rows():
    codecs = list(a21.CONDITIONS["la"])
    row = st.tuples(TOKEN, TOKEN, st.sampled_from(codecs), st.sampled_from(["bonafide", "spoof"]),
                    st.sampled_from(["A07", "A10"]), st.sampled_from(["eval", "progress"]))
    return st.lists(row, min_size=1, max_size=8, unique_by=lambda r: r[1]).map(
        lambda rs: [[s, u, c, "tx", "bonafide" if k == "bonafide" else a, k, "notrim", sub]
                    for s, u, c, k, a, sub in rs])


def read_2021_keys(d: Path):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(a21, "audio_files", lambda directory, ext: AnyAudio())
        return {name: cm_set(s) for name, s in a21.read_cm_keys("la", d, ["eval", "progress"]).items()}


def expected_2021(rows):
    out = {"la_eval": {"wav": {}, "spk": {}, "label": {}, "attack": {}, "condition": {}},
           "la_progress": {"wav": {}, "spk": {}, "label": {}, "attack": {}, "condition": {}}}
    for s, u, c, _t, a, k, _trim, sub in rows:
        t = out[f"la_{sub}"]
        t["wav"][u], t["spk"][u], t["label"][u] = f"/audio/{u}.flac", s, k
        t["attack"][u], t["condition"][u] = "-" if k == "bonafide" else a, f"LA-{a21.CONDITIONS['la'][c]}"
    return out


ASV_KEYS_2021 = "keys/LA/ASV/trial_metadata.txt"
ASV_SCORES_2021 = "keys/LA/ASV/ASVTorch_Kaldi/score.txt"


def asv2021_parser(fuzzed: str) -> Parser:
    """The LA ASV keys and scores, read together line by line; one of the two is fuzzed."""

    @st.composite
    def valid(draw):
        rows = draw(st.lists(st.tuples(TOKEN, st.sampled_from(["target", "nontarget", "spoof"]), score_text()),
                             min_size=1, max_size=8))
        keys = [["LA_0001", u, "none", "tx", "A07" if k == "spoof" else "bonafide", k, "notrim", "eval"]
                for u, k, _ in rows]
        scores = [["LA_0001", u, s] for u, _, s in rows]
        style = draw(STYLE)
        files = {ASV_KEYS_2021: keys, ASV_SCORES_2021: scores}
        content = render(files.pop(fuzzed), style)
        expected = [f"{'A07' if k == 'spoof' else 'bonafide'} {k} {s}" for _, k, s in rows]
        return content, {"eval": expected}, {f: render(r, Style()) for f, r in files.items()}

    other = ASV_SCORES_2021 if fuzzed == ASV_KEYS_2021 else ASV_KEYS_2021
    companion = {ASV_KEYS_2021: b"LA_0001 LA_E_1 none tx bonafide target notrim eval\n",
                 ASV_SCORES_2021: b"LA_0001 LA_E_1 0.5\n"}[other]
    return Parser(f"ASVspoof 2021 LA ASV {'keys' if fuzzed == ASV_KEYS_2021 else 'scores'}", fuzzed,
                  lambda d: a21.read_asv(d, ["eval"]), valid(), {other: companion})


def csv_text(header: list[str], rows: list[list[str]], style: Style) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=style.eol)
    writer.writerow(header)
    writer.writerows(rows)
    text = out.getvalue()
    if not style.final_newline:
        text = text[: -len(style.eol)]
    return (b"\xef\xbb\xbf" if style.bom else b"") + text.encode("utf-8")


@st.composite
def itw_valid(draw):
    rows = draw(st.lists(st.tuples(st.integers(0, 999), st.text(st.characters(blacklist_categories=("Cs", "Cc")),
                                                                min_size=1, max_size=10).filter(lambda t: t.split()),
                                   st.sampled_from(["spoof", "bona-fide"])), min_size=1, max_size=6,
                         unique_by=lambda r: r[0]))
    body = [[f"{n}.wav", spk, label] for n, spk, label in rows]
    expected = {"wav": {str(n): f"/audio/{n}.wav" for n, _, _ in rows},
                "spk": {str(n): "_".join(spk.strip().split()) for n, spk, _ in rows},
                "label": {str(n): "spoof" if lab == "spoof" else "bonafide" for n, _, lab in rows},
                "attack": {str(n): "spoof" if lab == "spoof" else "-" for n, _, lab in rows}}
    return csv_text(["file", "speaker", "label"], body, draw(STYLE)), expected, {}


@st.composite
def esc50_valid(draw):
    targets = draw(st.lists(st.tuples(st.integers(0, 49), TOKEN.filter(lambda t: "," not in t and '"' not in t)),
                            min_size=1, max_size=3, unique_by=lambda t: t[0]))
    rows, names = [], []
    for fold in range(1, 6):
        target, category = draw(st.sampled_from(targets))
        clip = draw(st.integers(1, 999999))
        take = draw(st.sampled_from("ABC"))
        name = f"{fold}-{clip}-{take}-{target}.wav"
        if name in names:
            continue
        names.append(name)
        rows.append([name, str(fold), str(target), category, draw(st.sampled_from(["True", "False"])), str(clip), take])
    categories = {}
    for r in rows:
        categories.setdefault(r[2], r[3])
    rows = [r for r in rows if categories[r[2]] == r[3]]
    expected = sorted((r[0][:-4], int(r[1]), r[3]) for r in rows)
    if {int(r[1]) for r in rows} != {1, 2, 3, 4, 5}:
        expected = None  # a fold without clips: refused
    return csv_text(prepare_esc50.HEADER, rows, draw(STYLE)), expected, \
        {f"audio/{r[0]}": b"" for r in rows}


def read_esc50(d: Path):
    return sorted((c.utt, c.fold, c.category) for c in prepare_esc50.read_meta(d))


@st.composite
def sc_list_valid(draw):
    rows = draw(st.lists(st.tuples(st.sampled_from(prepare_speechcommands.WORDS), st.integers(0, 16**8 - 1),
                                   st.integers(0, 9)), min_size=1, max_size=8, unique_by=lambda r: r))
    lines = [[f"{w}/{h:08x}_nohash_{n}.wav"] for w, h, n in rows]
    return render(lines, draw(STYLE), sep_fields=False), {line[0]: i for i, line in enumerate(lines, 1)}, {}


class AnyFiles(dict):
    def __contains__(self, key) -> bool:
        return True


def config_parser(overlay: bool) -> Parser:
    from spkpeft.tasks.config import load_config
    from spkpeft.tasks.experiment import prepare_experiment

    base = REPO / "conf" / "sv" / "mini.yaml"

    @st.composite
    def valid(draw):
        values = {"train": {"epochs": draw(st.integers(1, 50)), "lr_peft": draw(st.integers(1, 10000)) / 1e6},
                  "data": {"batch_size": draw(st.integers(2, 64))}}
        style = draw(STYLE)
        lines = [] if overlay else [f"base: {json.dumps(str(base))}"]
        lines += ["train:", f"  epochs: {values['train']['epochs']}", f"  lr_peft: {values['train']['lr_peft']:.6f}",
                  f"data: {{batch_size: {values['data']['batch_size']}}}  # a comment"]
        text = style.eol.join(lines) + (style.eol if style.final_newline else "")
        return (b"\xef\xbb\xbf" if style.bom else b"") + text.encode("utf-8"), values, {}

    def parse(d: Path):
        if overlay:
            cfg = prepare_experiment(base, d / "exp", overlays=[d / "overlay.yaml"], write=False)
        else:
            cfg = load_config(d / "config.yaml")
        return {"train": {"epochs": cfg.train.epochs, "lr_peft": cfg.train.lr_peft},
                "data": {"batch_size": cfg.data.batch_size}}

    name = "YAML overlay" if overlay else "YAML config"
    return Parser(name, "overlay.yaml" if overlay else "config.yaml", parse, valid(), {})


@st.composite
def package_valid(draw):
    files = {name: draw(st.binary(max_size=20)) for name in draw(st.lists(
        st.sampled_from(["config.yaml", "trainable.pt", "mean.npy", "upstream/config.json"]), min_size=1,
        unique=True))}
    info = {"format": "spkpeft-package", "version": 1, "kind": draw(st.sampled_from(["full", "adapter-only"])),
            "task": draw(st.sampled_from(["sv", "cls", "cm"])), "method": "lora",
            "upstream": {"type": "s3prl", "name": draw(TOKEN), "sha256": "0" * 64},
            "checkpoint": "/exp/checkpoints/best.pt",
            "files": {n: {"bytes": len(b), "sha256": hashlib.sha256(b).hexdigest()} for n, b in files.items()}}
    style = draw(STYLE)
    text = json.dumps(info, indent=draw(st.sampled_from([None, 2]))).replace("\n", style.eol)
    return (b"\xef\xbb\xbf" if style.bom else b"") + text.encode("utf-8"), info, files


def read_package(d: Path):
    from spkpeft.inference.package import read_package_info

    return read_package_info(d)


PARSERS = [
    datadir_parser("wav.scp", rest_of_line=True),
    datadir_parser("utt2spk"),
    datadir_parser("spk2utt"),
    datadir_parser("utt2label"),
    datadir_parser("utt2attack"),
    datadir_parser("utt2condition"),
    records_parser("trials", "trials", lambda p: _trials(p), trial_rows,
                   lambda rows: ([r[0] for r in rows], [r[1] for r in rows], [r[2] == "target" for r in rows]),
                   ref_trials),
    records_parser("score file", "vox1_o.score", lambda p: _scores(p), score_rows,
                   lambda rows: {(r[0], r[1]): float(r[2]) for r in rows}, ref_scores),
    records_parser("CM score file", "scores.txt", lambda p: _cm_scores(p),
                   lambda: st.lists(st.tuples(TOKEN, score_text()), min_size=1, max_size=8,
                                    unique_by=lambda r: r[0]).map(lambda rs: [list(r) for r in rs]),
                   lambda rows: {r[0]: float(r[1]) for r in rows}),
    records_parser("SASV protocol", "sasv.trl", lambda p: _sasv_protocol(p), sasv_protocol_rows,
                   lambda rows: ([r[0] for r in rows], [r[1] for r in rows], [r[-2] for r in rows],
                                 [r[-1] for r in rows])),
    records_parser("ASVspoof 2019 CM protocol (stage 1)", "protocol.txt",
                   lambda p: cm_set(a19.read_cm_protocol_2019(p, AnyAudio(), p.parent)), protocol_rows,
                   lambda rows: {"wav": {r[1]: f"/audio/{r[1]}.flac" for r in rows}, "spk": {r[1]: r[0] for r in rows},
                                 "label": {r[1]: r[4] for r in rows}, "attack": {r[1]: r[3] for r in rows}}),
    records_parser("ASVspoof 2019 CM protocol (stage 5)", "protocol.txt", lambda p: _cm_protocol(p), protocol_rows,
                   lambda rows: [[r[1] for r in rows], [r[4] for r in rows], [r[3] for r in rows],
                                 [r[0] for r in rows]]),
    records_parser("ASVspoof 2019 ASV scores (stage 1)", "asv.txt", lambda p: a19.read_asv_scores_2019(p), asv_rows,
                   lambda rows: [" ".join(r) for r in rows]),
    records_parser("ASVspoof 2019 ASV scores (stage 5)", "asv.txt", lambda p: _asv_scores(p), asv_rows,
                   lambda rows: [[float(r[2]) for r in rows if r[1] == k] for k in ("target", "nontarget", "spoof")]),
    Parser("ASVspoof 2021 LA CM keys", "keys/LA/CM/trial_metadata.txt", read_2021_keys,
           st.composite(lambda draw: (lambda rows, style: (render(rows, style), expected_2021(rows), {}))(
               draw(la2021_rows()), draw(STYLE)))(), {}),
    asv2021_parser(ASV_KEYS_2021),
    asv2021_parser(ASV_SCORES_2021),
    Parser("In-the-Wild meta.csv", "meta.csv", lambda d: cm_set(prepare_in_the_wild.read_meta(d / "meta.csv",
                                                                                               AnyAudio())),
           itw_valid(), {}),
    Parser("ESC-50 esc50.csv", "meta/esc50.csv", read_esc50, esc50_valid(), {}),
    Parser("Speech Commands list", "validation_list.txt",
           lambda d: prepare_speechcommands.read_list(d / "validation_list.txt", AnyFiles()), sc_list_valid(), {}),
    config_parser(overlay=False),
    config_parser(overlay=True),
    Parser("package.json", "package.json", read_package, package_valid(), {}),
]


def _trials(path):
    from spkpeft.io.trials import read_trials

    u1, u2, labels = read_trials(path)
    return u1, u2, labels.tolist()


def _scores(path):
    from spkpeft.io.trials import read_scores

    return read_scores(path)


def _cm_scores(path):
    from spkpeft.eval.cm_metrics import read_cm_scores

    return read_cm_scores(path)


def _cm_protocol(path):
    from spkpeft.eval.cm_metrics import read_cm_protocol

    return [list(x) for x in read_cm_protocol(path)]


def _asv_scores(path):
    from spkpeft.eval.cm_metrics import read_asv_scores

    return [x.tolist() for x in read_asv_scores(path)]


# ------------------------------------------------------------------ the properties

_CASE = [0]


def write_case(root: Path, parser: Parser, content: bytes, companions: dict[str, bytes]) -> Path:
    """A fresh scratch directory holding the fuzzed file and its companions."""
    _CASE[0] += 1
    case = root / f"case{_CASE[0]}"
    for name, data in {**companions, parser.file: content}.items():
        (case / name).parent.mkdir(parents=True, exist_ok=True)
        (case / name).write_bytes(data)
    return case


def check_error(err: SpkpeftError, case: Path) -> None:
    """One line naming a file of ``case`` (or ``case`` itself), and a line of it that exists."""
    message = str(err)
    assert "\n" not in message, message
    match = re.match(rf"^((?:{re.escape(str(case))}|{re.escape(str(REPO / 'conf'))})[^:]*?)(?::(\d+))?: ", message)
    assert match, f"the error does not name a file of the case: {message}"
    named = Path(match.group(1))
    assert named == case or case in named.parents or REPO / "conf" in named.parents, message
    if match.group(2) is not None:
        assert named.is_file(), message
        n_lines = named.read_bytes().count(b"\n") + 1
        assert 1 <= int(match.group(2)) <= n_lines, message


def attempt(parser: Parser, case: Path) -> tuple[bool, Any]:
    try:
        return True, parser.parse(case)
    except SpkpeftError as err:
        check_error(err, case)
        return False, None


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    yield tmp_path_factory.mktemp("fuzz")
    print("\nfuzz cases per parser and property: " + json.dumps(CASES, indent=1, ensure_ascii=False))


@pytest.mark.parametrize("parser", PARSERS, ids=[p.name for p in PARSERS])
@FUZZ
@given(data=st.data())
def test_arbitrary_input_parses_or_names_file_and_line(scratch, parser, data):
    CASES[f"{parser.name} / arbitrary"] = CASES.get(f"{parser.name} / arbitrary", 0) + 1
    content = data.draw(ARBITRARY)
    case = write_case(scratch, parser, content, parser.companions or {})
    ok, parsed = attempt(parser, case)
    if ok and parser.reference is not None:
        assert parsed == parser.reference(content, parser.companions or {})


@pytest.mark.parametrize("parser", PARSERS, ids=[p.name for p in PARSERS])
@FUZZ
@given(data=st.data())
def test_valid_input_in_any_style_then_mutated(scratch, parser, data):
    CASES[f"{parser.name} / mutated valid"] = CASES.get(f"{parser.name} / mutated valid", 0) + 1
    content, expected, companions = data.draw(parser.valid)
    case = write_case(scratch, parser, content, companions)
    ok, parsed = attempt(parser, case)
    if expected is not None:
        assert ok and parsed == expected, (content, parsed, expected)
    else:
        assert not ok
    changed, was_mutated = data.draw(mutated(content))
    case = write_case(scratch, parser, changed, companions)
    ok, parsed = attempt(parser, case)
    if ok and parser.reference is not None:
        assert parsed == parser.reference(changed, companions), (changed, parsed)
    if not was_mutated and expected is not None:
        assert ok and parsed == expected


#: inputs that ended in a traceback before the one text reader (each is also within the fuzzers' reach)
FOUND = [
    ("wav.scp", b"a /x\xff.wav\nb /y.wav\n", "wav.scp:1: text file is not UTF-8 text (byte 0xff at column 5)"),
    ("spk2utt", b"s a\nt b\xc3\n", "spk2utt:2: text file is not UTF-8 text"),
    ("In-the-Wild meta.csv", b"file,speaker,label\n0.wav," + b"x" * 200_000 + b",spoof\n",
     "meta.csv:2: malformed csv (field larger than field limit"),
    ("In-the-Wild meta.csv", b"file,speaker,label\n0.wav,a\0b,spoof\n", "meta.csv:2: csv file holds a NUL byte"),
    ("Speech Commands list", b"yes/0123abcd_nohash_0.wav\n\xe9\n", "validation_list.txt:2: list file is not UTF-8"),
    ("YAML config", b"train: {epochs: 2001-13-45}\n", "config.yaml: invalid YAML value (ValueError: month must be"),
    ("YAML config", b"train: \x01\n", "config.yaml:1: invalid YAML: special characters are not allowed"),
    ("YAML overlay", b"train: [\n", "overlay.yaml:2: invalid YAML: expected the node content"),
    ("YAML overlay", b"train: {epochs: x}\n", "overlay.yaml: key 'train.epochs' must be int, got str"),
    ("package.json", b'{"format": "spkpeft-package", "version": 1, "kind": "full", "task": "sv", '
                     b'"upstream": {"name": "u", "sha256": "0"}, "files": [1]}', "package.json: key 'files' must be"),
    ("package.json", b'{"format": "spkpeft-package", "version": 1, "kind": "full", "task": "sv", '
                     b'"upstream": {"name": "u", "sha256": "0"}, "files": {"config.yaml": 1}}',
     "package.json: key 'files.config.yaml' must be a mapping"),
    ("package.json", b'{"format": "spkpeft-package", "version": 1, "kind": "full", "task": "sv", '
                     b'"upstream": {"name": "u", "sha256": "0"}, "files": {"../../etc/passwd": '
                     b'{"bytes": 1, "sha256": "0"}}}', "key 'files.../../etc/passwd' must be a relative path"),
]


@pytest.mark.parametrize("name, content, message", FOUND, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(FOUND)])
def test_inputs_that_raised_tracebacks_are_one_line_errors(scratch, name, content, message):
    parser = next(p for p in PARSERS if p.name == name)
    companions = {**(parser.companions or {}), **({"config.yaml": b"{}"} if name == "package.json" else {})}
    case = write_case(scratch, parser, content, companions)
    with pytest.raises(SpkpeftError) as caught:
        parser.parse(case)
    check_error(caught.value, case)
    assert message in str(caught.value), caught.value
