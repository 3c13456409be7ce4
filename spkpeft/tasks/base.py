"""What a task decides, for all six stages, and the registry of tasks.

A task (``task.type`` in a config: ``sv`` speaker verification, ``cls`` utterance
classification, ``cm`` spoofing countermeasures) is a :class:`Task` registered in
:data:`TASKS` with the dataclass of its ``task:`` section.  It lives in
``spkpeft/tasks/<name>/``, and only that folder knows what its stages check, train, infer,
evaluate, report and package: the tools of :mod:`spkpeft.bin`, the corpus-free pipeline
(``steps/pipeline.sh``), :mod:`spkpeft.inference` and :mod:`spkpeft.eval.plots` ask the
task through the hooks below and never test its name (``tests/test_task_names.py``).

=========  ================================================================================
stage 2    :meth:`Task.check_corpus` (the files a corpus directory must hold),
           :meth:`Task.check_data_dir` / :meth:`Task.check_data_dirs` (labels of one data
           directory / across them), :meth:`Task.data_dir_warning`
stage 3    :meth:`Task.dev_dir` (the validation directory of a corpus, if any) and
           :meth:`Task.train`: by default the shared trainer (:mod:`spkpeft.engine.trainer`),
           which asks for :meth:`~Task.training_data`, :meth:`~Task.prepare_exp`,
           :meth:`~Task.build_model`, :meth:`~Task.build_loss`, :meth:`~Task.validate`,
           :attr:`~Task.metrics` and :attr:`~Task.selection`.  A task that trains no
           upstream (e.g. fusing two experiments) overrides :meth:`Task.train`.
stage 4    :meth:`Task.inference_sets`, :meth:`Task.output_module` (what one chunk gives),
           :meth:`Task.infer` (one data directory) and :meth:`Task.extract` (all of them;
           a task without a model of its own overrides it)
stage 5    :meth:`Task.evaluate`: metrics, files under ``EXP/scores/`` and the rows of
           ``results.json`` (each with ``task`` and :attr:`~Task.result_keys`)
stage 6    :meth:`Task.report_sections` (Markdown after the results table) and
           :meth:`Task.plots`
use        :attr:`Task.infer_commands` (``spkpeft infer`` subcommands it answers),
           :meth:`Task.inference_extras` / :meth:`Task.package_extras` (what inference needs
           besides the weights: sv the training-embedding mean, cls the class names)
compare    :attr:`Task.compare_columns`, :attr:`Task.compare_group_keys`, :meth:`Task.compare_extras`
=========  ================================================================================

Task objects are cheap and stateless: :func:`get_task` (of a config) and
:func:`spkpeft.tasks.registered.task_named` (of a ``task`` value, e.g. a results row's) build
one; :mod:`spkpeft.tasks.registered` imports every task, so that each registers itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from spkpeft.eval.bootstrap import DEFAULT_DRAWS, DEFAULT_SEED
from spkpeft.io.datadir import DataDir, find_data_dirs
from spkpeft.registry import Registry, tagged_section

#: ``task.type`` -> the task's config dataclass and its :class:`Task` class (``build()``)
TASKS = Registry("task", tag_key="type")

#: stage 4 progress: ``progress(finished shards, all shards)`` of one data directory
Progress = Callable[[int, int], None]

#: ``load_trained(path, device)``: another trained experiment directory or exported package, loaded
#: for inference (:func:`spkpeft.inference.package.load_any`: an object with ``model``, ``cfg``,
#: ``directory``, ``kind``, ``info``, ``mean``).  The tools of stages 3 and 4 hand it to
#: :meth:`Task.train` and :meth:`Task.extract` for tasks that consume trained models (fusions);
#: tasks cannot import the inference layer themselves.
TrainedLoader = Callable[[Any, Any], Any]

#: the training data directory of a corpus directory
TRAIN_DIR = "train"

#: a column of ``spkpeft.bin.compare``: ``(key, Markdown title, Markdown format)``
Column = tuple[str, str, str]
#: the first and last comparison columns of every task (:mod:`spkpeft.tasks.compare`)
LEAD_COLUMNS: tuple[Column, ...] = (
    ("variant", "variant", "{}"),
    ("upstream", "upstream", "{}"),
    ("trainable_params", "trainable params", "{:,}"),
    ("trainable_pct", "trainable %", "{:.2f}"),
)
TAIL_COLUMNS: tuple[Column, ...] = (
    ("train_seconds", "train time (s)", "{:.1f}"),
    ("peak_memory_mb", "peak memory (MB)", "{:.0f}"),
)


@tagged_section(TASKS)
@dataclass
class TaskConfig:
    """``task:`` section (``task: sv`` is short for ``task: {type: sv}``)."""

    type: str = "sv"


@dataclass
class TrainingData:
    """A training data directory as a task sees it.

    ``items``: ``(utt, path, label)`` training utterances; ``class_names[label]``;
    ``num_classes``: outputs of the classifier / loss (speaker verification with speed
    perturbation: 3 per speaker); ``class_counts``: training utterances per class;
    ``speed_changes_label``: a speed-perturbed crop is a new class (speakers) or not;
    ``validation``: whatever :meth:`Task.validate` needs.
    """

    items: list[tuple[str, str, int]]
    class_names: list[str]
    num_classes: int
    class_counts: list[int] = field(default_factory=list)
    speed_changes_label: bool = False
    validation: Any = None


@dataclass
class EvaluateOptions:
    """Stage 5 options of the recipe (``run.sh --calibrate --bootstrap --asnorm-top-n``); a task
    uses those that apply to it (speaker verification: all three; ``top_n`` None: the task's
    default)."""

    calibrate: bool = True
    bootstrap: int = DEFAULT_DRAWS
    top_n: int | None = None


@dataclass
class ReportContext:
    """Where stage 6 finds an experiment's files: its directory, its score files (stage 5),
    the corpus directories of its sets (``data/<corpus>``, first match wins), where plots
    go, and a trial-list directory given explicitly (else ``<corpus>/trials``)."""

    exp: Path
    score_dir: Path
    plot_dir: Path
    corpus_dirs: list[Path] = field(default_factory=list)
    trials_dir: Path | None = None


@dataclass
class CompareOptions:
    """Inputs of a comparison besides the experiments: the corpus directory they were evaluated
    on (``data/<corpus>``), or explicit trial lists, evaluation ``utt2spk`` files and enrollment
    ``spk2utt``; bootstrap draws (0: none) and their seed."""

    corpus: Path | None = None
    trials_dir: Path | None = None
    utt2spk: list[Path] = field(default_factory=list)
    enroll: Path | None = None
    bootstrap: int = DEFAULT_DRAWS
    bootstrap_seed: int = DEFAULT_SEED


@dataclass
class InferenceExtras:
    """What inference needs besides the weights (:meth:`Task.inference_extras`)."""

    mean: np.ndarray | None = None    # sv: the training embeddings' mean, subtracted before scoring
    classes: list[str] | None = None  # cls: the class names, in output order


class Task:
    """The interface of a task (see the module docstring).  Hooks without a default raise
    :class:`NotImplementedError`; the defaults suit a task that trains a model with the
    shared trainer and validates on held-out training data."""

    name: str = ""
    #: validation metrics of ``train_epochs.csv`` (``val_*``), in column order
    metrics: Sequence[str] = ()
    #: ``(metric, "min" | "max")``: the metric that picks ``best.pt``
    selection: tuple[str, str] = ("val_loss", "min")
    #: the class names when the task fixes them (countermeasures: spoof, bona fide), else None
    fixed_classes: tuple[str, ...] | None = None
    #: keys every ``results.json`` row of the task has, in table order (after ``task``)
    result_keys: tuple[str, ...] = ()
    #: column titles of the task's keys in the results table, where they differ from the shared
    #: ones (:data:`spkpeft.eval.report.TITLES`, e.g. ``min_tdcf``: the 2019 t-DCF of ``cm``)
    result_titles: dict[str, str] = {}
    #: the ``spkpeft infer`` subcommands (and :class:`~spkpeft.inference.TrainedModel`
    #: methods, ``-`` read as ``_``) that a model of this task answers
    infer_commands: tuple[str, ...] = ()
    #: ``(key, Markdown title, Markdown format)`` columns of ``spkpeft.bin.compare``
    #: (:mod:`spkpeft.tasks.compare`); ``compare_seed_columns``: with ``--seeds N > 1``
    compare_columns: tuple[Column, ...] = ()
    compare_seed_columns: tuple[Column, ...] = ()
    #: the keys that group comparison rows (one row per variant and group)
    compare_group_keys: tuple[str, ...] = ("set",)
    #: group keys whose groups follow a fixed order (others: order of first appearance)
    compare_key_order: dict[str, Sequence[str]] = {}
    #: values of columns a results row may lack
    compare_defaults: dict[str, Any] = {}
    #: metrics averaged over the runs of a variant by ``compare --seeds N`` (empty: refused)
    seed_metrics: tuple[str, ...] = ()

    # ---------------------------------------------------------------- stage 2
    def check_corpus(self, corpus: Path) -> None:
        """Refuse a corpus directory (``data/<corpus>``) that lacks what the later stages
        need, naming the missing file; default: nothing beyond its data directories."""

    def check_data_dir(self, data: DataDir) -> None:
        """Task checks of one data directory (e.g. its labels), before its audio is read: the
        first problem is a :class:`SpkpeftError` naming the file and line; default none."""

    def check_data_dirs(self, dirs: Sequence[DataDir]) -> None:
        """Task checks across the data directories of a corpus (e.g. every evaluation label
        occurs in training), after each passed :meth:`check_data_dir`; default none."""

    def data_dir_warning(self, data: DataDir) -> str | None:
        """A warning (one line) about a valid data directory, or None (default)."""
        return None

    # ---------------------------------------------------------------- stage 3
    def dev_dir(self, corpus: Path) -> Path | None:
        """The data directory of ``corpus`` that validates training (never the test set), or
        None to validate on held-out training data (default)."""
        return None

    def train(self, cfg, train_dir: Path, exp: Path, device: str = "cpu", config_name: str = "",
              dev_dir: Path | None = None, ddp: bool = False, load_trained: TrainedLoader | None = None) -> None:
        """Stage 3: train ``cfg`` on ``train_dir`` into ``exp`` (checkpoints, ``train_done.json``);
        default: the shared trainer, resuming from ``EXP/checkpoints/last.pt``. ``ddp``: a process
        group and DistributedDataParallel even with one process (``spkpeft.bin.train --ddp``);
        ``load_trained`` unused (:data:`TrainedLoader`)."""
        from spkpeft.engine.trainer import Trainer

        Trainer(cfg, self, train_dir, exp, device, config_name=config_name, dev_dir=dev_dir, ddp=ddp).run()

    def training_data(self, cfg, data_dir: DataDir, seed: int, dev_dir: Path | None = None) -> TrainingData:
        raise NotImplementedError

    def prepare_exp(self, exp: Path, data: TrainingData) -> None:
        """Write what inference needs besides the weights (e.g. the class names); default none."""

    def build_model(self, cfg, data: TrainingData):
        raise NotImplementedError

    def inference_model(self, cfg, exp: Path):
        """The model of a trained experiment ``exp``, before its weights are loaded."""
        raise NotImplementedError

    def build_loss(self, cfg, model, data: TrainingData):
        raise NotImplementedError

    def validate(self, trainee, data: TrainingData, cfg, device) -> dict[str, float]:
        raise NotImplementedError

    def better(self, value: float, best: float) -> bool:
        """Whether ``value`` of :attr:`selection`'s metric beats ``best``.  Until a real value
        has been seen (``best`` not finite), every epoch counts as the best one, so that a run
        without validation data still keeps its latest epoch as ``best.pt``."""
        if not math.isfinite(best):
            return True
        if value != value:  # NaN
            return False
        return value < best if self.selection[1] == "min" else value > best

    def worst(self) -> float:
        """The starting 'best' value of the selection metric."""
        return float("inf") if self.selection[1] == "min" else float("-inf")

    # ---------------------------------------------------------------- stage 4
    def inference_sets(self, corpus: Path) -> list[Path]:
        """The data directories of ``corpus`` that stage 4 runs on; default every one but
        ``train``."""
        return [d for d in find_data_dirs(corpus) if d.name != TRAIN_DIR]

    def output_module(self, model):
        """``forward(wavs, wav_lens) -> (B, D)``: what stage 4 computes per chunk (and what
        the Python API and ONNX export give); default the model's own output."""
        return model

    def infer(self, model, cfg, exp: Path, data_dir: Path, device, source: dict,
              progress: Progress | None = None) -> int:
        """Stage 4 for one data directory; returns how many utterances were processed.
        ``source`` identifies the checkpoint (outputs of another one are redone)."""
        raise NotImplementedError

    def extract(self, cfg, exp: Path, data_dirs: Sequence[Path], load_model: Callable[[], tuple[Any, dict]],
                device, progress: Callable[[Path], Progress] | None = None,
                load_trained: TrainedLoader | None = None) -> dict[Path, int]:
        """Stage 4 of the experiment ``exp`` (config ``cfg``) on ``data_dirs``: by default
        ``load_model()`` (its trained model and the checkpoint's identity) and :meth:`infer`
        on every directory; ``progress(data_dir)`` gives one directory's progress callback
        (``load_trained``, other trained models, unused: :data:`TrainedLoader`).
        Returns the utterances processed per directory."""
        model, source = load_model()
        return {Path(d): self.infer(model, cfg, exp, Path(d), device, source,
                                    progress=progress(Path(d)) if progress else None) for d in data_dirs}

    # ---------------------------------------------------------------- stage 5
    def evaluation_sets(self, corpus: Path) -> list[Path]:
        """The data directories of ``corpus`` that stage 5 evaluates; default those of
        :meth:`inference_sets`."""
        return self.inference_sets(corpus)

    def evaluate(self, cfg, exp: Path, data_dirs: Sequence[Path], results: Path, info: dict[str, Any],
                 options: EvaluateOptions) -> list[dict[str, Any]]:
        """Stage 5 of the experiment ``exp`` (config ``cfg``): the metrics of ``data_dirs`` (sets
        of one corpus), their files under ``EXP/scores/``, and ``results`` (``results.json``)
        written; returns the rows, each with ``task`` and :attr:`result_keys`, then ``info``
        (the experiment's summary)."""
        raise NotImplementedError

    # ---------------------------------------------------------------- stage 6
    def report_sections(self, rows: Sequence[dict[str, Any]], context: ReportContext) -> list[str]:
        """Markdown sections printed after the results table (e.g. per-class tables); read
        before anything is printed, so a missing file fails without output.  Default none."""
        return []

    def plots(self, rows: Sequence[dict[str, Any]], context: ReportContext) -> list[Path]:
        """Stage 6 plots of the task's ``rows`` in ``context.plot_dir``; returns the files
        written.  Default none."""
        return []

    # ---------------------------------------------------------------- inference and export
    def inference_extras(self, directory: Path, source: dict | None) -> InferenceExtras:
        """What inference needs besides the weights, read from an experiment (``source``: the
        checkpoint in use) or an exported package (``source`` None); default nothing."""
        return InferenceExtras()

    def package_extras(self, exp: Path, source: dict, out: Path) -> None:
        """Write into the package directory ``out`` what :meth:`inference_extras` reads from a
        package; default nothing."""

    # ---------------------------------------------------------------- compare
    def compare_extras(self, rows: list[dict[str, Any]], runs: dict[str, Sequence[Path]],
                       options: CompareOptions, out: Path) -> list[Path]:
        """Add task-specific columns to the comparison ``rows`` (``runs``: variant -> its
        experiment directories) and draw comparison plots in ``out``; returns the plots.
        Default nothing."""
        return []


def stratified_split(utts: list[str], labels: list[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices ``(train, held_out)``: ``round(fraction n_c)`` of every class ``c`` held out
    (at least one when the class has two or more utterances and ``fraction > 0``)."""
    rng = np.random.default_rng([seed, 7])
    held: set[int] = set()
    by_class: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        by_class.setdefault(label, []).append(index)
    for label in sorted(by_class):
        members = by_class[label]
        k = int(round(fraction * len(members)))
        if fraction > 0 and len(members) >= 2:
            k = min(max(k, 1), len(members) - 1)
        held.update(rng.choice(members, size=k, replace=False).tolist() if k else [])
    return [i for i in range(len(utts)) if i not in held], sorted(held)


def get_task(cfg) -> Task:
    """The task object of ``cfg.task`` (a read config: its task is registered)."""
    return TASKS.get(cfg.task.type).build()
