"""Compare experiments: one results table (Markdown and CSV) and DET plots across variants.

Usage::

    python -m spkpeft.bin.compare EXP [EXP ...] --out DIR [--data data/C] [--seeds N] [--bootstrap 1000] \
        [--trials-dir data/C/trials] [--utt2spk data/C/test/utt2spk ...] [--enroll data/C/enroll/spk2utt]

Each ``EXP`` is an experiment directory holding ``results.json`` (stage 5) and
``config.yaml`` (stage 3); its variant name is the directory name. All experiments
must be of one task (``task`` of their rows; none means ``sv``), whose columns and extras the
table has (:mod:`spkpeft.tasks.compare`; ``--data``: the corpus directory the experiments were
evaluated on, where speaker verification finds its trial lists, the evaluation sets'
``utt2spk`` and the enrollment ``spk2utt``; ``--trials-dir``, ``--utt2spk``, ``--enroll`` give
them explicitly). Writes

* ``DIR/results.csv`` and ``DIR/results.md``. Speaker verification: one row per
  variant x trial list x normalisation, grouped by trial list and normalisation
  (variants in the order given), columns :data:`COLUMNS`: variant, upstream,
  trainable parameters, trainable % (``100 * trainable_params / total_params``),
  trials, norm, EER (%), minDCF at p = 0.01 and 0.05, training time (s), peak
  memory (MB), with the 95 % bootstrap intervals of EER and minDCF@0.01, actDCF@0.01
  and Cllr where stage 5 computed them, and, with ``--trials-dir``, the paired
  comparison of each variant with the first one of its trial list and norm (``vs``):
  ``P(EER < vs)`` and the 95 % interval of ``EER - EER(vs)``, over the same
  speaker-bootstrap draws of the trials (:func:`add_paired_comparison`).
  Classification: one row per variant x evaluated set, grouped by set, columns
  :data:`CLS_COLUMNS` (``set``, ``n``, accuracy (%) and macro-F1 in place of
  trials, norm, EER and minDCF); countermeasures likewise with the bona fide and spoof counts,
  EER and the min t-DCFs. Values an experiment does not record are left
  empty. The CSV uses the keys as column names and full precision; the Markdown
  table (also printed) uses the titles and rounded values.
* ``--seeds N`` (verification): the experiments come in groups of ``N`` runs of one
  variant (named after the first); the table (:data:`SEED_COLUMNS`) has the mean and
  sample sd over the runs of EER and minDCF and the paired comparison of the
  run-averaged EER (:func:`seed_rows`).
* with the trial lists (verification only): ``DIR/det_<trials>.png`` (raw scores)
  and ``DIR/det_<trials>.<norm>.png`` (normalised) with one DET curve per variant,
  from each experiment's ``scores/`` files. Classification draws no DET plots.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from spkpeft.bin._cli import run_main
from spkpeft.eval.bootstrap import DEFAULT_DRAWS, DEFAULT_SEED
from spkpeft.io.atomic import write_text_atomic
from spkpeft.tasks.base import CompareOptions
from spkpeft.tasks.compare import comparison_rows, comparison_table, csv_lines, rows_task, seed_rows, variant_groups


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("exps", nargs="+", type=Path, help="experiment directories (results.json, config.yaml)")
    parser.add_argument("--out", required=True, type=Path, help="where to write results.{md,csv} and the plots")
    parser.add_argument("--data", type=Path, default=None,
                        help="the corpus directory the experiments were evaluated on (data/<corpus>)")
    parser.add_argument("--trials-dir", type=Path, default=None,
                        help="directory of the trial lists (default <data>/trials); enables the DET plots and "
                             "the paired comparison")
    parser.add_argument("--seeds", type=int, default=1,
                        help="runs per variant: the experiments come in consecutive groups of this many (default 1)")
    parser.add_argument("--utt2spk", nargs="+", type=Path, default=[],
                        help="utt2spk of the evaluation sets (the speakers the paired bootstrap resamples; "
                             "default: those of --data)")
    parser.add_argument("--enroll", type=Path, default=None,
                        help="spk2utt of enrollment models, as in stage 5 (default: <data>/enroll/spk2utt)")
    parser.add_argument("--bootstrap", type=int, default=DEFAULT_DRAWS,
                        help=f"bootstrap draws of the paired comparison (default {DEFAULT_DRAWS}; 0: none)")
    parser.add_argument("--bootstrap-seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    groups = variant_groups(args.exps, args.seeds)
    rows = seed_rows(groups) if args.seeds > 1 else comparison_rows(args.exps)
    task = rows_task(rows)
    options = CompareOptions(corpus=args.data, trials_dir=args.trials_dir, utt2spk=args.utt2spk, enroll=args.enroll,
                             bootstrap=args.bootstrap, bootstrap_seed=args.bootstrap_seed)
    written = task.compare_extras(rows, {group[0].name: group for group in groups}, options, args.out) if task else []
    table = comparison_table(rows)
    write_text_atomic(args.out / "results.md", table.splitlines())
    write_text_atomic(args.out / "results.csv", csv_lines(rows))
    print(table)
    if written:
        print(f"compare: wrote {len(written)} DET plots in {args.out}", file=sys.stderr)
    elif args.trials_dir is not None:
        print(f"compare: no DET plots for {task.name if task else 'these'} results (--trials-dir ignored)",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    run_main(main)
