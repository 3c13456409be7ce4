"""The speaker-verification task (``task: sv``); see :mod:`spkpeft.tasks.base` for the interface."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from spkpeft.data.augment import num_classes_multiplier
from spkpeft.engine.extract import extract_data_dir
from spkpeft.errors import SpkpeftError, file_error
from spkpeft.io.atomic import write_bytes_atomic
from spkpeft.io.datadir import DataDir, find_data_dirs
from spkpeft.nn.losses import build_loss
from spkpeft.nn.model import build_model
from spkpeft.tasks.base import TASKS, TRAIN_DIR, InferenceExtras, Progress, ReportContext, Task, TrainingData
from spkpeft.tasks.sv import evaluate, report
from spkpeft.tasks.sv.data import single_utterance_warning, split_training_data
from spkpeft.tasks.sv.scoring import NORMS, embedding_mean, load_embeddings
from spkpeft.tasks.sv.validation import validate

log = logging.getLogger("spkpeft.train")

MARGIN_LOSSES = ("aam", "am")
#: stage 4's training embeddings of an experiment (stage 5 subtracts their mean)
TRAIN_EMBEDDINGS = Path("embeddings") / TRAIN_DIR / evaluate.EMBEDDINGS
#: the training embeddings' mean in an exported package
MEAN_FILE = "mean.npy"


def _non_negative(value: int) -> str | None:
    return None if value >= 0 else f"must be >= 0, got {value}"


def load_mean(path: Path) -> np.ndarray:
    """``mean.npy``: a float vector, loaded without pickles; anything else is one error naming it."""
    try:
        mean = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise file_error(path, f"cannot load the embedding mean ({err})") from None
    if mean.ndim != 1 or not np.issubdtype(mean.dtype, np.floating):
        raise file_error(path, f"expected a float vector, found {mean.dtype} of shape {mean.shape}")
    return mean


@dataclass
class SVTaskConfig:
    """``task: sv``: which training data validates (never the test trials)."""

    type: str = "sv"
    val_speakers: int = field(default=20, metadata={"check": _non_negative})
    val_utts_per_speaker: int = field(default=1, metadata={"check": _non_negative})
    val_max_seconds: float = field(default=6.0, metadata={"check": lambda v: None if v > 0 else f"must be > 0, got {v}"})


class SVTask(Task):
    """Speakers of ``utt2spk``; embeddings; EER of held-out speakers picks ``best.pt``."""

    name = "sv"
    metrics = ("val_loss", "val_eer_pct")
    selection = ("val_eer_pct", "min")
    result_keys = evaluate.RESULT_KEYS
    infer_commands = ("embed", "score", "verify")
    compare_columns = report.COMPARE_COLUMNS
    compare_seed_columns = report.SEED_COLUMNS
    compare_group_keys = ("trials", "norm")
    compare_key_order = {"norm": NORMS}
    compare_defaults = {"norm": "none"}
    seed_metrics = report.SEED_METRICS

    # ---------------------------------------------------------------- stage 2
    def check_corpus(self, corpus: Path) -> None:
        """The test set and the trial lists."""
        for path in (Path(corpus) / "test" / "wav.scp", Path(corpus) / "trials"):
            if not path.exists():
                raise file_error(path, "missing (run the earlier stages first)")

    def data_dir_warning(self, data: DataDir) -> str | None:
        return single_utterance_warning(data)

    # ---------------------------------------------------------------- stage 3

    def training_data(self, cfg, data_dir, seed: int, dev_dir=None) -> TrainingData:
        if dev_dir is not None:
            raise SpkpeftError("task sv validates on held-out training speakers (task.val_speakers); it takes no dev directory")
        split = split_training_data(data_dir, cfg.task, seed)
        few = [s for s in split.speakers if len(data_dir.spk2utt[s]) <= cfg.task.val_utts_per_speaker]
        if few and cfg.task.val_utts_per_speaker:
            log.info("%d training speaker(s) (e.g. '%s') have too few utterances to hold %d out for the "
                     "validation loss; all of theirs train", len(few), few[0], cfg.task.val_utts_per_speaker)
        counts = [0] * len(split.speakers)
        for _, _, label in split.train_utts:
            counts[label] += 1
        return TrainingData(items=split.train_utts, class_names=list(split.speakers),
                            num_classes=len(split.speakers) * num_classes_multiplier(cfg.data.augment),
                            class_counts=counts, speed_changes_label=True, validation=split)

    def build_model(self, cfg, data: TrainingData):
        return build_model(cfg)

    def inference_model(self, cfg, exp):
        return build_model(cfg)

    def build_loss(self, cfg, model, data: TrainingData):
        if cfg.loss.type not in MARGIN_LOSSES:
            raise SpkpeftError(f"loss.type '{cfg.loss.type}' does not train speaker embeddings "
                               f"(task sv expects one of: {', '.join(MARGIN_LOSSES)})")
        return build_loss(cfg.loss, model.head.embed_dim, data.num_classes)

    def validate(self, trainee, data: TrainingData, cfg, device) -> dict[str, float]:
        return validate(trainee, data.validation, cfg.task, device)

    # ---------------------------------------------------------------- stage 4
    def inference_sets(self, corpus: Path) -> list[Path]:
        """Every data directory, ``train`` included: stage 5 subtracts the training embeddings'
        mean and normalises scores against the training speakers."""
        return find_data_dirs(corpus)

    def infer(self, model, cfg, exp, data_dir, device, source, progress: Progress | None = None) -> int:
        """Embeddings of every utterance of ``data_dir`` -> ``EXP/embeddings/<name>/xvector.scp``."""
        out = Path(exp) / "embeddings" / Path(data_dir).name
        return extract_data_dir(model, data_dir, out, cfg.extract, device, source, progress=progress)

    # ---------------------------------------------------------------- stages 5-6
    def evaluation_sets(self, corpus: Path) -> list[Path]:
        return find_data_dirs(corpus)

    def evaluate(self, cfg, exp, data_dirs, results, info, options) -> list[dict]:
        return evaluate.evaluate_sv(cfg, Path(exp), evaluate.corpus_of(data_dirs), Path(results), info, options)

    def plots(self, rows, context: ReportContext) -> list[Path]:
        from spkpeft.eval.plots import plot_experiment

        trials_dir = report.trials_dir_of(context.trials_dir, context.corpus_dirs)
        if trials_dir is None:
            return []
        return plot_experiment(rows, context.score_dir, trials_dir, context.plot_dir)

    # ---------------------------------------------------------------- inference and export
    def inference_extras(self, directory: Path, source: dict | None) -> InferenceExtras:
        """The mean of the training embeddings: a package's ``mean.npy``; an experiment's stage-4
        training embeddings (an error when they come from another checkpoint than ``source``)."""
        if source is None:
            path = Path(directory) / MEAN_FILE
            return InferenceExtras(mean=load_mean(path) if path.is_file() else None)
        return InferenceExtras(mean=training_mean(Path(directory), source))

    def package_extras(self, exp: Path, source: dict, out: Path) -> None:
        mean = training_mean(Path(exp), source)
        if mean is not None:
            write_bytes_atomic(Path(out) / MEAN_FILE, lambda handle: np.save(handle, mean))

    def compare_extras(self, rows, runs, options, out: Path) -> list[Path]:
        return report.compare_extras(rows, runs, options, out)


def training_mean(exp: Path, source: dict) -> np.ndarray | None:
    """Mean of ``EXP/embeddings/train/xvector.scp`` when it exists (stage 5 subtracts it);
    an error when those embeddings were extracted with another checkpoint than ``source``."""
    scp = exp / TRAIN_EMBEDDINGS
    if not scp.is_file():
        return None
    stamp = scp.parent / "source.json"
    if stamp.is_file() and json.loads(stamp.read_text()) != source:
        raise file_error(stamp, f"the training embeddings come from another checkpoint than "
                                f"{source['checkpoint']}; run stage 4 (python -m spkpeft.bin.extract) for it")
    return embedding_mean(load_embeddings([scp]))


TASKS.register("sv", SVTaskConfig, SVTask, description="speaker verification")
