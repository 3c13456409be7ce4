"""The frozen-upstream classic back-end for speaker verification: the floor that fine-tuning
must beat (issue 23; the "frozen pretrained Whisper with a classic back-end" rows of
egs/mini/RESULTS.md).

Run by hand (a smoke test in tests/test_bench.py)::

    .venv/bin/python bench/frozen_lda_sv.py --data data/voxceleb1 --trials vox1_o \
        --type whisper --upstream pretrained:whisper_base --out exp/cmp/T/whisper_base_lda

``--from-exp EXP`` instead of ``--upstream``: the same back-end on the upstream of a trained
experiment (its PEFT modules merged or applied, as stage 4 loads it; the aggregation and head
are not used), so that "PEFT + LDA" and "frozen + LDA" differ only in the fine-tuning.

Each utterance of ``DATA/train`` and ``DATA/test`` (``wav.scp``) goes alone through the frozen
upstream (eval mode, no gradient); its vector is the concatenation over all hidden states
(the stem's output and every block's) of the mean over frames.  The vectors are standardised
with the training utterances' mean and standard deviation and projected by linear discriminant
analysis trained on the training speakers (``--lda-dim``, default number of speakers - 1):
the leading generalised eigenvectors of ``S_b w = lambda (S_w + r I) w`` with ``S_b`` the
between-speaker and ``S_w`` the within-speaker scatter (Fisher, 1936; as in the i-vector /
x-vector back-ends, e.g. Dehak et al. 2011, Snyder et al. 2018), ``r = --ridge * trace(S_w) / d``.
The projected test vectors are written as ``OUT/embeddings/test.scp`` and scored by stage 5's
tool (:mod:`spkpeft.bin.score`: length-normalised cosine, EER, minDCF, speaker-bootstrap 95 %
intervals), so ``OUT`` is an experiment directory that :mod:`spkpeft.bin.compare` reads
(``results.json``, ``scores/``, ``config.yaml``; ``train_done.json`` with 0 trainable parameters
and the extraction time as ``train_seconds``).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

import kaldiio
import numpy as np
import scipy.linalg
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]  # run as a script from anywhere
from spkpeft.bin import score  # noqa: E402
from spkpeft.io.audio import read_audio  # noqa: E402
from spkpeft.upstream.base import UPSTREAMS, build_upstream  # noqa: E402


def read_map(path: Path) -> dict[str, str]:
    """A Kaldi two-column file ``key value`` as a dict."""
    return dict(line.split(maxsplit=1) for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


@torch.no_grad()
def frame_means(upstream: torch.nn.Module, wav_scp: dict[str, str]) -> dict[str, np.ndarray]:
    """``[mean_t h_0, ..., mean_t h_L]`` of every utterance, encoded alone (float64)."""
    out = {}
    for utt, path in wav_scp.items():
        wav = torch.from_numpy(read_audio(path)).float()[None]
        hidden, lengths = upstream(wav, torch.tensor([wav.shape[1]]))
        n = int(lengths[0])
        out[utt] = np.concatenate([h[0, :n].double().mean(0).numpy() for h in hidden])
    return out


def lda(x: np.ndarray, labels: list[str], dim: int, ridge: float) -> np.ndarray:
    """The ``(d, dim)`` LDA projection of rows ``x`` with classes ``labels`` (module docstring)."""
    mean = x.mean(0)
    s_w = np.zeros((x.shape[1], x.shape[1]))
    s_b = np.zeros_like(s_w)
    for spk in sorted(set(labels)):
        rows = x[[i for i, label in enumerate(labels) if label == spk]]
        centred = rows - rows.mean(0)
        s_w += centred.T @ centred
        diff = (rows.mean(0) - mean)[:, None]
        s_b += len(rows) * diff @ diff.T
    s_w += ridge * np.trace(s_w) / x.shape[1] * np.eye(x.shape[1])
    values, vectors = scipy.linalg.eigh(s_b, s_w)
    return vectors[:, np.argsort(values)[::-1][:dim]]


def source_upstream(args: argparse.Namespace) -> tuple[torch.nn.Module, int, Any]:
    """``(upstream in eval mode, trainable parameters of its training, its upstream config)``."""
    if args.from_exp is None:
        cfg = UPSTREAMS.get(args.type).config(type=args.type, name=args.upstream)
        return build_upstream(cfg).eval(), 0, cfg
    from spkpeft.inference.package import load_any

    loaded = load_any(args.from_exp)
    done = json.loads((args.from_exp / "train_done.json").read_text(encoding="utf-8"))
    return loaded.model.upstream.eval(), int(done["trainable_params"]), loaded.cfg.upstream


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, type=Path, help="data directory with train/, test/, trials/")
    parser.add_argument("--trials", nargs="+", default=["vox1_o"], help="trial lists under DATA/trials")
    parser.add_argument("--type", default="whisper", help="upstream.type (default whisper)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--upstream", help="upstream.name")
    source.add_argument("--from-exp", type=Path, help="a trained experiment whose (fine-tuned) upstream to use")
    parser.add_argument("--out", required=True, type=Path, help="experiment directory to write")
    parser.add_argument("--lda-dim", type=int, default=None, help="LDA dimensions (default speakers - 1)")
    parser.add_argument("--ridge", type=float, default=1e-3, help="within-class scatter regulariser (default 1e-3)")
    args = parser.parse_args()
    torch.manual_seed(0)
    upstream, trainable, upstream_cfg = source_upstream(args)
    upstream_name = upstream_cfg.name
    start = time.monotonic()
    train_spk = read_map(args.data / "train" / "utt2spk")
    train = frame_means(upstream, read_map(args.data / "train" / "wav.scp"))
    test = frame_means(upstream, read_map(args.data / "test" / "wav.scp"))
    x = np.stack([train[u] for u in train])
    mu, sd = x.mean(0), x.std(0) + 1e-8
    labels = [train_spk[u] for u in train]
    dim = args.lda_dim or len(set(labels)) - 1
    proj = lda((x - mu) / sd, labels, dim, args.ridge)
    seconds = time.monotonic() - start
    (args.out / "embeddings").mkdir(parents=True, exist_ok=True)
    for name, vectors in (("train", train), ("test", test)):
        with kaldiio.WriteHelper(f"ark,scp:{args.out}/embeddings/{name}.ark,{args.out}/embeddings/{name}.scp") as w:
            for utt in sorted(vectors):
                w(utt, (((vectors[utt] - mu) / sd) @ proj).astype(np.float32))
    (args.out / "config.yaml").write_text(yaml.safe_dump({
        "upstream": {"type": upstream_cfg.type, "name": upstream_name},
        "backend": {"features": "frame means of all hidden states", "lda_dim": dim, "ridge": args.ridge}}))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    n_params = sum(p.numel() for p in upstream.parameters())
    (args.out / "train_done.json").write_text(json.dumps({
        "task": "sv", "config": f"lda:{args.from_exp or upstream_name}", "upstream": upstream_name, "trainable_params": trainable,
        "total_params": n_params, "train_seconds": round(seconds, 1), "peak_memory_mb": round(peak_mb, 1)}, indent=2))
    return score.main(["--embeddings", str(args.out / "embeddings/test.scp"),
                       "--trials", *[str(args.data / "trials" / t) for t in args.trials],
                       "--score-dir", str(args.out / "scores"), "--results", str(args.out / "results.json"),
                       "--mean", str(args.out / "embeddings/train.scp"),
                       "--utt2spk", str(args.data / "test" / "utt2spk"),
                       "--info", str(args.out / "train_done.json")])


if __name__ == "__main__":
    sys.exit(main())
