"""Use a trained model (an experiment directory or an exported package) on your own audio.

Usage::

    python -m spkpeft.bin.infer --model PATH [--checkpoint C] [--device cpu|cuda] COMMAND ...

    embed     (FILE ... | --wav-scp SCP) [--out PREFIX]       sv: embeddings
    score     (A B | --trials T --wav-scp SCP) [--out FILE]   sv: trial scores
    verify    (A B | --trials T --wav-scp SCP) [--threshold X] [--out FILE]
    cm-score  (FILE ... | --wav-scp SCP) [--out FILE]         cm: bona fide scores
    classify  (FILE ... | --wav-scp SCP) [--out FILE] [--posteriors PREFIX]   cls

Inputs: audio files (their path is their id) or a Kaldi ``wav.scp`` (``<id> <path>``); any
sample rate (resampled to 16 kHz), mono only.  Lists show a tqdm progress bar on stderr.
Outputs (``--out FILE``: written atomically; default stdout):

* ``embed``: Kaldi ``PREFIX.ark`` + ``PREFIX.scp`` (the ``.scp`` written last), or Kaldi text
  vectors ``<id>  [ v1 v2 ... ]`` on stdout;
* ``score``: ``<id1> <id2> <score>`` lines (trials: sorted as ``LC_ALL=C sort``, the score-file
  format of stage 5); the score is the calibrated LLR when the model has a
  ``calibration.json``, else the raw cosine (stderr says which);
* ``verify``: ``<id1> <id2> <score> accept|reject``; the threshold is ``--threshold`` (on the
  score above) or the calibration's ``threshold_llr`` (without either: an error);
* ``cm-score``: ``<id> <score>`` (higher = more bona fide);
* ``classify``: ``<id> <label>``, and with ``--posteriors PREFIX`` the class posteriors as
  Kaldi ``PREFIX.ark``/``PREFIX.scp`` (classes in ``classes.txt`` order).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from spkpeft.bin._cli import run_main
from spkpeft.errors import SpkpeftError, file_error
from spkpeft.io.atomic import write_text_atomic
from spkpeft.io.audio import SAMPLE_RATE, audio_info
from spkpeft.io.datadir import read_key_value
from spkpeft.io.trials import read_trials


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, type=Path, help="experiment directory or exported package")
    parser.add_argument("--checkpoint", default=None, help="experiments: best | last | avg | a path")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("embed", "cm-score", "classify"):
        sub = commands.add_parser(name)
        sub.add_argument("files", nargs="*", type=Path)
        sub.add_argument("--wav-scp", type=Path, default=None)
        sub.add_argument("--out", type=Path, default=None,
                         help="embed: Kaldi ark/scp prefix; otherwise a text file (default stdout)")
        if name == "classify":
            sub.add_argument("--posteriors", type=Path, default=None, help="Kaldi ark/scp prefix for the posteriors")
    for name in ("score", "verify"):
        sub = commands.add_parser(name)
        sub.add_argument("pair", nargs="*", type=Path, help="two audio files: enrollment, test")
        sub.add_argument("--trials", type=Path, default=None, help="'utt1 utt2 [target|nontarget]' lines")
        sub.add_argument("--wav-scp", type=Path, default=None)
        sub.add_argument("--out", type=Path, default=None)
        if name == "verify":
            sub.add_argument("--threshold", type=float, default=None)
    return parser


# ---------------------------------------------------------------- inputs


def file_inputs(files: Sequence[Path], wav_scp: Path | None) -> tuple[list[str], list[str]]:
    """``(ids, paths)`` from files on the command line or a ``wav.scp``."""
    if bool(files) == (wav_scp is not None):
        raise SpkpeftError("give audio files or --wav-scp (one of the two)")
    if wav_scp is not None:
        table = read_key_value(wav_scp, rest_of_line=True)
        if not table:
            raise file_error(wav_scp, "file is empty")
        return list(table), list(table.values())
    for path in files:
        if str(path).split() != [str(path)]:
            raise SpkpeftError(f"{path}: a file path with whitespace cannot be an id; list it in a wav.scp")
    return [str(p) for p in files], [str(p) for p in files]


def trial_inputs(args) -> tuple[list[str], list[str], list[str], list[str]]:
    """``(utt1, utt2, ids to embed, their paths)`` of a pair or a trials file + wav.scp."""
    if args.trials is None:
        if len(args.pair) != 2 or args.wav_scp is not None:
            raise SpkpeftError("give two audio files, or --trials with --wav-scp")
        ids, paths = file_inputs(args.pair, None)
        return [ids[0]], [ids[1]], ids, paths
    if args.pair or args.wav_scp is None:
        raise SpkpeftError("--trials goes with --wav-scp and no audio files")
    utt1, utt2 = read_trial_pairs(args.trials)
    table = read_key_value(args.wav_scp, rest_of_line=True)
    for number, (a, b) in enumerate(zip(utt1, utt2), 1):
        for utt in (a, b):
            if utt not in table:
                raise file_error(args.trials, f"utterance '{utt}' is not in {args.wav_scp}", number)
    wanted = set(utt1) | set(utt2)
    ids = [u for u in table if u in wanted]  # wav.scp order: stage 4's batches
    return utt1, utt2, ids, [table[u] for u in ids]


def read_trial_pairs(path: Path) -> tuple[list[str], list[str]]:
    """Pairs of a trials file: ``utt1 utt2 target|nontarget`` (Kaldi) or ``utt1 utt2`` lines."""
    first = path.read_text(encoding="utf-8").split("\n", 1)[0].split() if path.is_file() else []
    if len(first) == 3:
        utt1, utt2, _ = read_trials(path)
        return utt1, utt2
    utt1, utt2 = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines() if path.is_file() else [], 1):
        fields = line.split()
        if len(fields) != 2:
            raise file_error(path, f"expected 'utt1 utt2' or 'utt1 utt2 target|nontarget', found {len(fields)} fields", number)
        utt1.append(fields[0])
        utt2.append(fields[1])
    if not utt1:
        raise file_error(path, "trials file is missing or empty")
    return utt1, utt2


def count_chunks(paths: Sequence[str], chunk_seconds: float) -> int:
    """Chunks stage 4 cuts the files into (from their headers, at 16 kHz after resampling)."""
    size = int(chunk_seconds * SAMPLE_RATE)
    total = 0
    for path in paths:
        info = audio_info(path)
        total += max(1, math.ceil(math.ceil(info.frames * SAMPLE_RATE / info.samplerate) / size))
    return total


def run_model(model, paths: Sequence[str]) -> np.ndarray:
    """Stage-4 outputs of ``paths``, with a progress bar for more than one file."""
    if len(paths) < 2:
        return model.outputs(list(paths))
    from tqdm import tqdm

    with tqdm(total=count_chunks(paths, model.config.extract.chunk_seconds), unit="chunk", file=sys.stderr,
              dynamic_ncols=True) as bar:
        return model.outputs(list(paths), progress=bar.update)


# ---------------------------------------------------------------- outputs


def write_lines(out: Path | None, lines: Sequence[str]) -> None:
    """Lines to ``out`` (atomically) or stdout."""
    if out is None:
        sys.stdout.writelines(line + "\n" for line in lines)
        return
    write_text_atomic(out, lines)


def write_matrix(prefix: Path, ids: Sequence[str], rows: np.ndarray) -> None:
    from spkpeft.engine.extract import write_ark_scp

    prefix.parent.mkdir(parents=True, exist_ok=True)
    write_ark_scp(Path(f"{prefix}.ark"), Path(f"{prefix}.scp"), ids, rows.astype(np.float32))


def kaldi_text(utt: str, vec: np.ndarray) -> str:
    return f"{utt}  [ {' '.join(repr(float(v)) for v in vec)} ]"


def trial_lines(utt1, utt2, values, extra=None) -> list[str]:
    """``utt1 utt2 score [extra]`` lines in ``LC_ALL=C`` order of the pair."""
    order = sorted(range(len(utt1)), key=lambda i: (utt1[i], utt2[i]))
    tail = (lambda i: f" {extra[i]}") if extra is not None else (lambda i: "")
    return [f"{utt1[i]} {utt2[i]} {repr(float(values[i]))}{tail(i)}" for i in order]


# ---------------------------------------------------------------- commands


def scored(model, args) -> tuple[list[str], list[str], np.ndarray, bool]:
    utt1, utt2, ids, paths = trial_inputs(args)
    emb = dict(zip(ids, run_model(model, paths)))
    values, calibrated = model.score_embeddings(np.stack([emb[u] for u in utt1]), np.stack([emb[u] for u in utt2]))
    what = f"calibrated log-likelihood ratios ({Path(model.path) / 'calibration.json'})" if calibrated else "raw cosine scores"
    print(f"infer: scores are {what}", file=sys.stderr)
    return utt1, utt2, values, calibrated


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from spkpeft.inference import load
    from spkpeft.inference.model import tasks_answering
    from spkpeft.inference.decision import decide

    model = load(args.model, checkpoint=args.checkpoint, device=args.device)
    if not model.answers(args.command):
        raise SpkpeftError(f"{args.model}: '{args.command}' needs {tasks_answering(args.command)} model, "
                           f"this one is '{model.task}'")
    if args.command == "verify":
        decide([], model.calibration, args.threshold, model.path)  # a missing threshold fails before any work
    if args.command in ("score", "verify"):
        utt1, utt2, values, _ = scored(model, args)
        extra = None
        if args.command == "verify":
            accept, threshold = decide(values, model.calibration, args.threshold, model.path)
            extra = ["accept" if a else "reject" for a in accept]
            print(f"infer: threshold {threshold!r}", file=sys.stderr)
        write_lines(args.out, trial_lines(utt1, utt2, values, extra))
        return 0
    ids, paths = file_inputs(args.files, args.wav_scp)
    rows = run_model(model, paths)
    if args.command == "embed":
        if args.out is not None:
            write_matrix(args.out, ids, rows)
        else:
            write_lines(None, [kaldi_text(u, v) for u, v in zip(ids, rows)])
    elif args.command == "cm-score":
        write_lines(args.out, [f"{u} {float(v[0]):.6f}" for u, v in zip(ids, rows)])
    else:
        if args.posteriors is not None:
            write_matrix(args.posteriors, ids, rows)
        write_lines(args.out, [f"{u} {model.classification(v).label}" for u, v in zip(ids, rows)])
    return 0


if __name__ == "__main__":
    run_main(main)
