"""The spoof-aware speaker verification task (``task: sasv``): two trained experiments fused.

A SASV experiment trains no upstream: it consumes a trained speaker-verification (``sv``) and a
trained countermeasure (``cm``) experiment, or exported packages of either (the components,
loaded by the caller: :class:`Component`), runs both on the SASV sets
(:class:`~spkpeft.tasks.sasv.inference.SasvOutputs`, one shared upstream forward when their
upstreams are frozen and identical), fits the fusions on the development trials and scores
every trial.  Its stages, as :mod:`spkpeft.bin.sasv` runs them (``task.*`` keys:
:class:`SASVTaskConfig`):

=======  ===============================================================================
stage 2  :meth:`SASVTask.check_corpus`: the SASV sets (:mod:`spkpeft.tasks.sasv.data`) and,
         for the embedding fusion, ``train/`` with labels
stage 3  :meth:`SASVTask.fit`: the components' outputs on ``train`` (embedding fusion only),
         the development set and its enrollment (``EXP/outputs/<dir>/sasv.scp``); the fusions
         fitted on the development trials (``EXP/fusions/<name>.json``; the embedding fusion's
         network ``EXP/fusions/embedding.pt``); ``EXP/components.json`` names the components,
         ``EXP/train_done.json`` marks the end
stage 4  :meth:`SASVTask.infer`: the outputs on the evaluation sets, then per set and system the
         scores of every trial ``EXP/sasv_scores/<set>/<system>.txt`` (``SPEAKER UTT SCORE``,
         protocol order); systems: ``asv_only`` (the cosine), ``cm_only`` (the CM score) and
         each fusion
stage 5  :meth:`SASVTask.evaluate` (:mod:`spkpeft.tasks.sasv.evaluate`): the metrics of every
         set and system, 95 % speaker-bootstrap intervals, per-attack SPF-EER;
         ``EXP/results.json`` rows ``task, set, fusion, sasv_eer_pct, sv_eer_pct, spf_eer_pct,
         min_adcf, t_eer_pct, min_tdcf, ...``
stage 6  :meth:`SASVTask.report` (:mod:`spkpeft.tasks.sasv.report`): the table per set, DET
         plots with the three curves (target against nontarget, against spoof, against both)
=======  ===============================================================================

The ASV score of a trial is the ``sv`` task's raw cosine (stage 5 of ``sv``): the enrollment
model (mean of the enrollment embeddings) against the test embedding, both less the SV
experiment's training-embedding mean when it has one.  The CM score is the test utterance's.
Nothing is fitted on an evaluation set: the fusions see the development trials only
(:mod:`spkpeft.tasks.sasv.fusion`), and stage 4 applies them with their stored parameters.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import kaldiio
import numpy as np
import torch

from spkpeft.engine.extract import ExtractConfig, extract_data_dir
from spkpeft.errors import SpkpeftError, file_error
from spkpeft.eval.sasv_metrics import SasvProtocol
from spkpeft.io.atomic import write_bytes_atomic, write_json_atomic, write_text_atomic
from spkpeft.io.datadir import DataDir
from spkpeft.tasks.base import TASKS, Task
from spkpeft.tasks.sasv.data import SasvSet, check_training_dir
from spkpeft.tasks.sasv.embedding_fusion import (Baseline2Net, DevEmbeddingTrials, EmbeddingFusionConfig,
                                                 FittedEmbeddingFusion, TrainingPool, fit_embedding_fusion)
from spkpeft.tasks.sasv.fusion import COMPONENTS, FUSIONS, DevTrials, FittedFusion
from spkpeft.tasks.sasv.inference import SasvOutputs, can_share, split_outputs
from spkpeft.tasks.sv.scoring import cosine_scores, model_embeddings

EMBEDDING = "embedding"
ALL_FUSIONS = (*FUSIONS, EMBEDDING)
SHARE_CHOICES = ("auto", "never")


@dataclass
class SASVTaskConfig:
    """``task: sasv``: which fusions, which sets, and Baseline 2's training length."""

    type: str = "sasv"
    fusions: list[str] = field(default_factory=lambda: list(ALL_FUSIONS), metadata={"choices": ALL_FUSIONS})
    share_upstream: str = field(default="auto", metadata={"choices": SHARE_CHOICES})
    dev_set: str = "dev"
    eval_sets: list[str] = field(default_factory=lambda: ["eval"])
    embedding_epochs: int = field(default=10, metadata={"check": lambda v: None if v > 0 else f"must be > 0, got {v}"})
    embedding_lr: float = field(default=1.0e-4, metadata={"check": lambda v: None if v > 0 else f"must be > 0, got {v}"})
    embedding_batch_size: int = field(default=24, metadata={"check": lambda v: None if v > 0 else f"must be > 0, got {v}"})
    embedding_seed: int = 1234


@dataclass
class Component:
    """A trained model the task consumes (an experiment or an exported package), loaded by the caller."""

    model: torch.nn.Module          # merged, eval mode
    task: str                       # its config's task.type
    path: Path
    source: dict                    # identifies its weights
    mean: np.ndarray | None = None  # sv: the training embeddings' mean (subtracted before the cosine)


Loader = Callable[[str], Component]


def _check_component(component: Component, want: str, role: str) -> Component:
    if component.task != want:
        raise SpkpeftError(f"{component.path}: the {role} component must be a '{want}' model, this one is "
                           f"'{component.task}'")
    return component


# ---------------------------------------------------------------- outputs of the components


class Outputs:
    """The components' outputs stored in ``EXP/outputs/<dir>/sasv.scp`` (:class:`SasvOutputs` rows)."""

    def __init__(self, exp: Path, extract: ExtractConfig, device) -> None:
        self.exp, self.extract, self.device = Path(exp), extract, torch.device(device)
        self.meta_path = self.exp / "components.json"

    def meta(self) -> dict:
        if not self.meta_path.is_file():
            raise file_error(self.meta_path, "missing (stage 3 of the SASV task writes it)")
        return json.loads(self.meta_path.read_text())

    def compute(self, sv: Component, cm: Component, share: str, dirs: Sequence[Path]) -> dict:
        """Run both components on ``dirs`` (resumable per shard; other components' outputs are redone)."""
        sv, cm = _check_component(sv, "sv", "speaker-verification"), _check_component(cm, "cm", "countermeasure")
        reason = can_share(sv.model, cm.model)
        shared = share == "auto" and reason is None
        module = SasvOutputs(sv.model, cm.model, share=shared)
        source = {"sv": sv.source, "cm": cm.source, "shared": shared}
        meta = {"sv": str(sv.path), "cm": str(cm.path), "source": source, "dims": list(module.dims),
                "shared_upstream": shared, "not_shared_because": None if shared else (reason or "share_upstream: never"),
                "sv_mean": None if sv.mean is None else np.asarray(sv.mean, dtype=np.float64).tolist()}
        write_json_atomic(self.meta_path, meta)
        for d in dirs:
            extract_data_dir(module, d, self.dir_of(d), self.extract, self.device, source, name="sasv")
        return meta

    def dir_of(self, data_dir: Path) -> Path:
        name = Path(data_dir).name
        return self.exp / "outputs" / name

    def load(self, data_dir: Path, utts: Sequence[str] | None = None):
        """``(utts, SplitOutputs)`` of a data directory (all its utterances, in ``wav.scp`` order)."""
        scp = self.dir_of(data_dir) / "sasv.scp"
        if not scp.is_file():
            raise file_error(scp, "missing (the SASV task's stage 3 or 4 computes it)")
        table = {u: np.asarray(v, dtype=np.float64) for u, v in kaldiio.load_scp_sequential(str(scp))}
        names = list(table) if utts is None else list(utts)
        missing = next((u for u in names if u not in table), None)
        if missing is not None:
            raise file_error(scp, f"no output for utterance '{missing}' (rerun stage 3/4)")
        return names, split_outputs(np.stack([table[u] for u in names]), tuple(self.meta()["dims"]))


@dataclass
class TrialInputs:
    """What the fusions need of one set's trials, in protocol order."""

    protocol: SasvProtocol
    asv: np.ndarray
    cm: np.ndarray
    enroll_emb: np.ndarray    # (N, D_sv) the claimed speaker's model
    test_emb: np.ndarray      # (N, D_sv)
    test_cm_emb: np.ndarray   # (N, D_cm)


def trial_inputs(outputs: Outputs, sasv_set: SasvSet, protocol: SasvProtocol, enroll: DataDir) -> TrialInputs:
    """Per trial: the ASV cosine (enrollment model vs test embedding, less the SV training mean), the CM
    score and the embeddings."""
    test_utts = sorted(set(protocol.utts))
    _, test = outputs.load(sasv_set.test_dir, test_utts)
    enroll_utts, enr = outputs.load(sasv_set.enroll_dir)
    sv_table = {u: e for u, e in zip(enroll_utts, enr.sv)}
    models = model_embeddings(sv_table, enroll.spk2utt, sasv_set.enroll_dir / "spk2utt")
    embeddings = {**models, **{f"test:{u}": e for u, e in zip(test_utts, test.sv)}}
    mean = outputs.meta()["sv_mean"]
    asv = cosine_scores(embeddings, protocol.speakers, [f"test:{u}" for u in protocol.utts],
                        None if mean is None else np.asarray(mean), sasv_set.protocol_path)
    row = {u: i for i, u in enumerate(test_utts)}
    index = np.array([row[u] for u in protocol.utts], dtype=np.int64)
    return TrialInputs(protocol, asv, test.cm_score[index], np.stack([models[s] for s in protocol.speakers]),
                       test.sv[index], test.cm_embedding[index])


# ---------------------------------------------------------------- the task


class SASVTask(Task):
    """Fusion of a trained ``sv`` and a trained ``cm`` experiment (module docstring)."""

    name = "sasv"
    result_keys = ("set", "fusion", "sasv_eer_pct", "sv_eer_pct", "spf_eer_pct", "min_adcf", "t_eer_pct", "min_tdcf")

    def _no_model(self, *_args, **_kwargs):
        raise SpkpeftError("task sasv trains no model of its own: it fuses a trained sv and a trained cm "
                           "experiment (python -m spkpeft.bin.sasv fit, steps/sasv_pipeline.sh)")

    training_data = build_model = inference_model = build_loss = validate = _no_model

    # ---------------------------------------------------------------- stage 2
    def check_corpus(self, cfg, corpus: Path) -> dict[str, tuple]:
        """Check the development and evaluation SASV sets (and ``train/`` for the embedding fusion);
        returns ``{set: (protocol, enroll, test)}``."""
        task = cfg.task
        if task.dev_set in task.eval_sets:
            raise SpkpeftError(f"task.dev_set '{task.dev_set}' is also in task.eval_sets: the fusions are "
                               "fitted on the development set, which cannot also be an evaluation set")
        out = {name: SasvSet(Path(corpus), name).read() for name in (task.dev_set, *task.eval_sets)}
        if EMBEDDING in task.fusions:
            check_training_dir(Path(corpus))
        return out

    # ---------------------------------------------------------------- stage 3
    def fit(self, cfg, exp: Path, corpus: Path, load: Loader, sv: str, cm: str, device="cpu") -> dict:
        """Outputs on the training and development data, then every fusion fitted on the development
        trials only; returns what ``EXP/train_done.json`` records."""
        start = time.time()
        exp, corpus = Path(exp), Path(corpus)
        sets = self.check_corpus(cfg, corpus)
        dev_set = SasvSet(corpus, cfg.task.dev_set)
        dirs = [dev_set.test_dir, dev_set.enroll_dir]
        if EMBEDDING in cfg.task.fusions:
            dirs.insert(0, corpus / "train")
        outputs = Outputs(exp, cfg.extract, device)
        meta = outputs.compute(load(sv), load(cm), cfg.task.share_upstream, dirs)
        protocol, enroll, _ = sets[cfg.task.dev_set]
        inputs = trial_inputs(outputs, dev_set, protocol, enroll)
        dev = DevTrials(inputs.asv, inputs.cm, tuple(protocol.keys), cfg.task.dev_set)
        fitted = {}
        for name in cfg.task.fusions:
            if name == EMBEDDING:
                fitted[name] = self._fit_embedding(cfg, exp, corpus, outputs, inputs)
            else:
                fitted[name] = FUSIONS[name].fit(dev).params
                write_json_atomic(exp / "fusions" / f"{name}.json", {"fusion": name, "params": fitted[name],
                                                                     "fitted_on": cfg.task.dev_set})
        done = {"task": "sasv", "sv": meta["sv"], "cm": meta["cm"], "shared_upstream": meta["shared_upstream"],
                "not_shared_because": meta["not_shared_because"], "fusions": list(cfg.task.fusions),
                "train_seconds": time.time() - start}
        write_json_atomic(exp / "train_done.json", done)
        return done

    def _fit_embedding(self, cfg, exp: Path, corpus: Path, outputs: Outputs, dev: TrialInputs) -> dict:
        train = check_training_dir(corpus)
        utts, out = outputs.load(corpus / "train")
        pool = TrainingPool.from_labels(dict(zip(utts, out.sv)), dict(zip(utts, out.cm_embedding)),
                                        train.utt2spk, train.utt2label)
        ecfg = EmbeddingFusionConfig(lr=cfg.task.embedding_lr, epochs=cfg.task.embedding_epochs,
                                     batch_size=cfg.task.embedding_batch_size, seed=cfg.task.embedding_seed)
        trials = DevEmbeddingTrials(dev.enroll_emb, dev.test_emb, dev.test_cm_emb, tuple(dev.protocol.keys),
                                    cfg.task.dev_set)
        fitted = fit_embedding_fusion(pool, trials, ecfg)
        dims = outputs.meta()["dims"]
        write_bytes_atomic(exp / "fusions" / "embedding.pt", lambda handle: torch.save(
            {"state": fitted.net.state_dict(), "dims": dims, "config": vars(ecfg)}, handle))
        write_json_atomic(exp / "fusions" / "embedding.json", {"fusion": EMBEDDING, "params": fitted.params,
                                                               "fitted_on": cfg.task.dev_set})
        return fitted.params

    # ---------------------------------------------------------------- stage 4
    def infer(self, cfg, exp: Path, corpus: Path, load: Loader, device="cpu") -> dict[str, int]:
        """Outputs on the evaluation sets, then the scores of every system on every set (dev included);
        returns the trials scored per set."""
        exp, corpus = Path(exp), Path(corpus)
        done = exp / "train_done.json"
        if not done.is_file():
            raise file_error(done, "missing (stage 3 of the SASV task fits the fusions first)")
        info = json.loads(done.read_text())
        sets = self.check_corpus(cfg, corpus)
        outputs = Outputs(exp, cfg.extract, device)
        dirs = [d for name in cfg.task.eval_sets for d in (SasvSet(corpus, name).test_dir,
                                                            SasvSet(corpus, name).enroll_dir)]
        outputs.compute(load(info["sv"]), load(info["cm"]), cfg.task.share_upstream, dirs)
        fusions = self.load_fusions(cfg, exp)
        counts = {}
        for name, (protocol, enroll, _) in sets.items():
            inputs = trial_inputs(outputs, SasvSet(corpus, name), protocol, enroll)
            for system, scores in self.system_scores(fusions, inputs).items():
                write_text_atomic(exp / "sasv_scores" / name / f"{system}.txt",
                                  (f"{s} {u} {float(v)!r}" for s, u, v in zip(protocol.speakers, protocol.utts, scores)))
            counts[name] = len(protocol.utts)
        return counts

    def load_fusions(self, cfg, exp: Path) -> dict:
        """The fitted fusions of stage 3: ``{name: FittedFusion | FittedEmbeddingFusion}``."""
        fusions = {}
        for name in cfg.task.fusions:
            path = Path(exp) / "fusions" / f"{name}.json"
            if not path.is_file():
                raise file_error(path, "missing (stage 3 of the SASV task fits it)")
            params = json.loads(path.read_text())["params"]
            if name == EMBEDDING:
                stored = torch.load(Path(exp) / "fusions" / "embedding.pt", map_location="cpu", weights_only=True)
                net = Baseline2Net(*stored["dims"], EmbeddingFusionConfig(**{**stored["config"], "layers": tuple(
                    stored["config"]["layers"]), "class_weights": tuple(stored["config"]["class_weights"])}))
                net.load_state_dict(stored["state"])
                fusions[name] = FittedEmbeddingFusion(net, params)
            else:
                fusions[name] = FittedFusion(name, params)
        return fusions

    @staticmethod
    def system_scores(fusions: dict, inputs: TrialInputs) -> dict[str, np.ndarray]:
        """Scores of the components alone and of every fusion (no key involved)."""
        out = {name: f(inputs.asv, inputs.cm) for name, f in COMPONENTS.items()}
        for name, fusion in fusions.items():
            if isinstance(fusion, FittedEmbeddingFusion):
                out[name] = fusion.score(inputs.enroll_emb, inputs.test_emb, inputs.test_cm_emb)
            else:
                out[name] = fusion.score(inputs.asv, inputs.cm)
        return out

    # ---------------------------------------------------------------- stages 5 and 6
    def evaluate(self, cfg, exp: Path, corpus: Path, bootstrap: int = 1000) -> list[dict]:
        from spkpeft.tasks.sasv.evaluate import evaluate_sets

        return evaluate_sets(cfg, Path(exp), Path(corpus), bootstrap)

    def report(self, exp: Path, corpus: Path, plot_dir: Path | None = None) -> tuple[str, list[Path]]:
        from spkpeft.tasks.sasv.report import report

        return report(Path(exp), Path(corpus), plot_dir)


TASKS.register("sasv", SASVTaskConfig, SASVTask, description="spoof-aware speaker verification (fusion)")
