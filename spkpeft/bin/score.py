"""Cosine scoring of trial lists and their metrics (stage 5).

Usage::

    python -m spkpeft.bin.score --embeddings test.scp [...] --trials T [T ...] \
        --score-dir EXP/scores --results EXP/results.json [--mean train.scp]

Writes ``<score-dir>/<trials name>.score`` (``utt1 utt2 score``, sorted) for
every trial list and ``results.json``: one object per trial list with
``trials``, ``n_trials``, ``eer_pct``, ``mindcf_p0.01``, ``mindcf_p0.05``, then
with ``--info`` the experiment's ``config``, ``upstream``, ``trainable_params``,
``total_params``, ``train_seconds`` and ``peak_memory_mb``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

from spkpeft.bin._cli import run_main
from spkpeft.metrics import compute_metrics
from spkpeft.report import INFO_KEYS, read_experiment_info, results_table, write_json_atomic
from spkpeft.score import cosine_scores, embedding_mean, load_embeddings
from spkpeft.trials import read_trials, write_scores


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--embeddings", nargs="+", required=True, type=Path, help="Kaldi scp file(s) of embeddings")
    parser.add_argument("--trials", nargs="+", required=True, type=Path, help="Kaldi trials file(s)")
    parser.add_argument("--score-dir", required=True, type=Path)
    parser.add_argument("--results", required=True, type=Path, help="results.json to write")
    parser.add_argument("--mean", type=Path, default=None, help="scp of training embeddings to subtract the mean of")
    parser.add_argument("--info", type=Path, default=None,
                        help="train_done.json of the experiment: its " + ", ".join(INFO_KEYS) + " join every row")
    args = parser.parse_args(argv)
    info = read_experiment_info(args.info) if args.info else {}

    embeddings = load_embeddings(args.embeddings)
    mean = embedding_mean(load_embeddings([args.mean])) if args.mean else None
    results = []
    for trials_path in args.trials:
        utt1, utt2, labels = read_trials(trials_path)
        scores = cosine_scores(embeddings, utt1, utt2, mean=mean, trials_path=trials_path)
        write_scores(args.score_dir / f"{trials_path.name}.score", utt1, utt2, scores)
        metrics = compute_metrics(scores, labels)
        results.append({
            "trials": trials_path.name,
            "n_trials": metrics["n_trials"],
            "eer_pct": metrics["eer_pct"],
            "mindcf_p0.01": metrics["mindcf_p0.01"],
            "mindcf_p0.05": metrics["mindcf_p0.05"],
            **info,
        })
    write_json_atomic(args.results, results)
    print(results_table(results))
    return 0


if __name__ == "__main__":
    run_main(main)
