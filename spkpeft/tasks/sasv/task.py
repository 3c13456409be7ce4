"""The spoof-aware speaker verification task (``task: sasv``): two trained experiments fused.

A SASV experiment trains no upstream: it consumes a trained speaker-verification (``sv``) and a
trained countermeasure (``cm``) experiment, or exported packages of either (``task.sv``,
``task.cm``; :mod:`spkpeft.tasks.sasv.components`), runs both on the SASV sets
(:class:`~spkpeft.tasks.sasv.inference.SasvOutputs`, one shared upstream forward when their
upstreams are frozen and identical), fits the fusions on the development trials and scores
every trial.  Its stages are the hooks of :class:`~spkpeft.tasks.base.Task`, run by the shared
tools of ``steps/pipeline.sh`` (``task.*`` keys: :class:`SASVTaskConfig`):

=======  ===============================================================================
stage 2  :meth:`SASVTask.check_corpus`: every SASV set (:mod:`spkpeft.tasks.sasv.data`);
         :meth:`SASVTask.check_data_dir`: the CM labels; :meth:`SASVTask.check_sets` (stages
         3-4): the sets of the config and, for the embedding fusion, ``train/`` with labels
stage 3  :meth:`SASVTask.train` (no trainer) -> :meth:`SASVTask.fit`: the components' outputs
         on ``train`` (embedding fusion only), the development set and its enrollment
         (``EXP/outputs/<dir>/sasv.scp``); the fusions fitted on the development trials
         (``EXP/fusions/<name>.json``; the embedding fusion's network
         ``EXP/fusions/embedding.pt``); ``EXP/components.json`` names the components,
         ``EXP/train_done.json`` marks the end
stage 4  :meth:`SASVTask.extract` -> :meth:`SASVTask.score_trials`: the outputs on the
         evaluation sets, then per set and system the scores of every trial
         ``EXP/sasv_scores/<set>/<system>.txt`` (``SPEAKER UTT SCORE``, protocol order);
         systems: ``asv_only`` (the cosine), ``cm_only`` (the CM score) and each fusion
stage 5  :meth:`SASVTask.evaluate` (:mod:`spkpeft.tasks.sasv.evaluate`): the metrics of every
         set and system, 95 % speaker-bootstrap intervals, per-attack SPF-EER;
         ``results.json`` rows ``task, set, fusion, sasv_eer_pct, sv_eer_pct, spf_eer_pct,
         min_adcf, t_eer_pct, min_tdcf, ...``
stage 6  :meth:`SASVTask.report_sections`, :meth:`SASVTask.plots`
         (:mod:`spkpeft.tasks.sasv.report`): the table per set, DET plots with the three
         curves (target against nontarget, against spoof, against both)
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
from typing import Any, Callable, Sequence

import kaldiio
import numpy as np
import torch

from spkpeft.engine.extract import ExtractConfig, extract_data_dir
from spkpeft.errors import SpkpeftError, file_error
from spkpeft.eval.sasv_metrics import SasvProtocol
from spkpeft.io.atomic import write_bytes_atomic, write_json_atomic, write_text_atomic
from spkpeft.io.datadir import DataDir
from spkpeft.tasks.base import TASKS, EvaluateOptions, Progress, ReportContext, Task, TrainedLoader
from spkpeft.tasks.cm.task import check_cm_labels
from spkpeft.tasks.sasv.components import Loader, check_component, component_loader
from spkpeft.tasks.sasv.data import SASV_DIR, SasvSet, check_training_dir
from spkpeft.tasks.sasv.embedding_fusion import (Baseline2Net, DevEmbeddingTrials, EmbeddingFusionConfig,
                                                 FittedEmbeddingFusion, TrainingPool, fit_embedding_fusion)
from spkpeft.tasks.sasv.evaluate import evaluate_sets
from spkpeft.tasks.sasv.fusion import COMPONENTS, FUSIONS, DevTrials, FittedFusion
from spkpeft.tasks.sasv.inference import SasvOutputs, can_share, split_outputs
from spkpeft.tasks.sasv.report import det_plots, set_tables
from spkpeft.tasks.sv.scoring import model_embeddings, score_trial_lists

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
    sv: str = ""   # the trained speaker-verification experiment or package (stage 3; recipes: EXP/components.yaml)
    cm: str = ""   # the trained countermeasure experiment or package


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
        sv, cm = check_component(sv, "sv", "speaker-verification"), check_component(cm, "cm", "countermeasure")
        reason = can_share(sv.model, cm.model)
        shared = share == "auto" and reason is None
        module = SasvOutputs(sv.model, cm.model, share=shared)
        source = {"sv": sv.source, "cm": cm.source, "shared": shared}
        meta = {"sv": str(sv.path), "cm": str(cm.path), "source": source, "dims": list(module.dims),
                "component_params": sum(p.numel() for c in (sv, cm) for p in c.model.parameters()),
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
    trials = (protocol.speakers, [f"test:{u}" for u in protocol.utts], sasv_set.protocol_path)
    asv = score_trial_lists(embeddings, [trials], None if mean is None else np.asarray(mean))[0]["none"]
    row = {u: i for i, u in enumerate(test_utts)}
    index = np.array([row[u] for u in protocol.utts], dtype=np.int64)
    return TrialInputs(protocol, asv, test.cm_score[index], np.stack([models[s] for s in protocol.speakers]),
                       test.sv[index], test.cm_embedding[index])


# ---------------------------------------------------------------- the task


class SASVTask(Task):
    """Fusion of a trained ``sv`` and a trained ``cm`` experiment (module docstring)."""

    name = "sasv"
    result_keys = ("set", "fusion", "sasv_eer_pct", "sv_eer_pct", "spf_eer_pct", "min_adcf", "t_eer_pct", "min_tdcf")
    result_titles = {"sasv_eer_pct": "SASV-EER (%)", "sv_eer_pct": "SV-EER (%)", "spf_eer_pct": "SPF-EER (%)",
                     "min_adcf": "min a-DCF", "t_eer_pct": "t-EER (%)", "min_tdcf": "min t-DCF (ASVspoof 5)"}

    def _no_model(self, *_args, **_kwargs):
        raise SpkpeftError("task sasv trains no model of its own: it fuses a trained sv and a trained cm "
                           "experiment (task.sv, task.cm; steps/sasv_recipe.sh)")

    training_data = build_model = inference_model = build_loss = validate = infer = _no_model

    # ---------------------------------------------------------------- stage 2
    def check_corpus(self, corpus: Path) -> None:
        """Every SASV set of the corpus (``sasv/<set>.trl``, its enrollment and test directories)
        agrees (:func:`~spkpeft.tasks.sasv.data.check_sasv_set`); the sets a config uses are checked
        again, with the training directory, by :meth:`check_sets`."""
        for s in sasv_sets(Path(corpus)):
            s.read()

    def check_data_dir(self, data: DataDir) -> None:
        """The countermeasure sets' labels, as ``task: cm`` checks them."""
        check_cm_labels(data)

    def check_sets(self, cfg, corpus: Path) -> dict[str, tuple]:
        """The development and evaluation SASV sets of ``cfg`` (and ``train/`` for the embedding
        fusion); returns ``{set: (protocol, enroll, test)}``."""
        task = cfg.task
        if task.dev_set in task.eval_sets:
            raise SpkpeftError(f"task.dev_set '{task.dev_set}' is also in task.eval_sets: the fusions are "
                               "fitted on the development set, which cannot also be an evaluation set")
        out = {name: SasvSet(Path(corpus), name).read() for name in (task.dev_set, *task.eval_sets)}
        if EMBEDDING in task.fusions:
            check_training_dir(Path(corpus))
        return out

    # ---------------------------------------------------------------- stage 3
    def train(self, cfg, train_dir: Path, exp: Path, device: str = "cpu", config_name: str = "",
              dev_dir: Path | None = None, ddp: bool = False,
              load_trained: TrainedLoader | None = None) -> None:
        """Stage 3 in the shared pipeline: :meth:`fit` on the corpus of ``train_dir``, with the
        components ``task.sv`` and ``task.cm`` loaded by ``load_trained``.  The fusions are fitted
        in one process: ``ddp`` (``spkpeft.bin.train --ddp``) is refused; it belongs to the
        components' own training."""
        if ddp:
            raise SpkpeftError(f"{exp}: task sasv fits its fusions in one process; --ddp applies to "
                               "the components' training (task.sv, task.cm), not to sasv's")
        self.fit(cfg, exp, Path(train_dir).parent, component_loader(load_trained, device), device, config_name)

    def fit(self, cfg, exp: Path, corpus: Path, load: Loader, device="cpu", config_name: str = "") -> dict:
        """Outputs on the training and development data, then every fusion fitted on the development
        trials only; returns what ``EXP/train_done.json`` records: the components, the experiment
        info of every task (``trainable_params``: the embedding fusion network's weights, the score
        fusions' few scalars not counted; ``total_params``: with
        the two components'; ``upstream``: the components' paths)."""
        start = time.time()
        exp, corpus = Path(exp), Path(corpus)
        sets = self.check_sets(cfg, corpus)
        dev_set = SasvSet(corpus, cfg.task.dev_set)
        dirs = [dev_set.test_dir, dev_set.enroll_dir]
        if EMBEDDING in cfg.task.fusions:
            dirs.insert(0, corpus / "train")
        outputs = Outputs(exp, cfg.extract, device)
        meta = outputs.compute(load(cfg.task.sv), load(cfg.task.cm), cfg.task.share_upstream, dirs)
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
        trainable = fitted.get(EMBEDDING, {}).get("parameters", 0)
        done = {"task": self.name, "sv": meta["sv"], "cm": meta["cm"], "shared_upstream": meta["shared_upstream"],
                "not_shared_because": meta["not_shared_because"], "fusions": list(cfg.task.fusions),
                "config": config_name, "upstream": f"sv={Path(meta['sv']).name} cm={Path(meta['cm']).name}",
                "trainable_params": trainable, "total_params": meta["component_params"] + trainable,
                "train_seconds": time.time() - start, "peak_memory_mb": None}
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
    def inference_sets(self, corpus: Path) -> list[Path]:
        """The test and enrollment directories of every SASV set of ``corpus``."""
        return [d for s in sasv_sets(Path(corpus)) for d in (s.test_dir, s.enroll_dir)]

    def extract(self, cfg, exp: Path, data_dirs: Sequence[Path], load_model, device,
                progress: Callable[[Path], Progress] | None = None,
                load_trained: TrainedLoader | None = None) -> dict[Path, int]:
        """Stage 4 in the shared pipeline: the experiment has no model of its own (``load_model`` is
        not called); :meth:`score_trials` on the corpus of ``data_dirs``.  Returns the trials scored
        per set's test directory."""
        corpus = corpus_of(data_dirs)
        return {SasvSet(corpus, name).test_dir: n
                for name, n in self.score_trials(cfg, exp, corpus, component_loader(load_trained, device),
                                                 device).items()}

    def score_trials(self, cfg, exp: Path, corpus: Path, load: Loader, device="cpu") -> dict[str, int]:
        """Outputs on the evaluation sets, then the scores of every system on every set (dev included);
        returns the trials scored per set."""
        exp, corpus = Path(exp), Path(corpus)
        done = exp / "train_done.json"
        if not done.is_file():
            raise file_error(done, "missing (stage 3 of the SASV task fits the fusions first)")
        info = json.loads(done.read_text())
        sets = self.check_sets(cfg, corpus)
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
    def evaluate(self, cfg, exp: Path, data_dirs: Sequence[Path], results: Path, info: dict[str, Any],
                 options: EvaluateOptions) -> list[dict[str, Any]]:
        """Stage 5 (:mod:`spkpeft.tasks.sasv.evaluate`) on the corpus of ``data_dirs``."""
        return evaluate_sets(cfg, Path(exp), corpus_of(data_dirs), options.bootstrap, Path(results), info)

    def report_sections(self, rows: Sequence[dict[str, Any]], context: ReportContext) -> list[str]:
        """One table per set (:func:`spkpeft.tasks.sasv.report.set_tables`)."""
        return set_tables(rows)

    def plots(self, rows: Sequence[dict[str, Any]], context: ReportContext) -> list[Path]:
        """Three-curve DET plots of every set and system (needs the corpus: ``--corpus-dir``)."""
        return det_plots(rows, context.exp, context_corpus(context), context.plot_dir)


def sasv_sets(corpus: Path) -> list[SasvSet]:
    """The SASV sets of a corpus directory (``sasv/<set>.trl``), sorted; an error naming the folder
    when there is none."""
    found = sorted(corpus.glob(f"{SASV_DIR}/*.trl"))
    if not found:
        raise file_error(corpus / SASV_DIR, "no SASV trial list <set>.trl (stage 1 of a SASV recipe writes them)")
    return [SasvSet(corpus, p.stem) for p in found]


def corpus_of(data_dirs: Sequence[Path]) -> Path:
    """The one corpus directory that the SASV test (``CORPUS/<set>``) and enrollment
    (``CORPUS/sasv/<set>_enroll``) directories ``data_dirs`` belong to."""
    corpora = {Path(d).parent.parent if Path(d).parent.name == SASV_DIR else Path(d).parent for d in data_dirs}
    if len(corpora) != 1:
        raise SpkpeftError(f"task sasv runs on the SASV sets of one corpus directory, got {sorted(map(str, corpora))}")
    corpus = corpora.pop()
    sasv_sets(corpus)
    return corpus


def context_corpus(context: ReportContext) -> Path:
    """The first ``--corpus-dir`` of a report that holds SASV sets."""
    for corpus in context.corpus_dirs:
        if any(Path(corpus).glob(f"{SASV_DIR}/*.trl")):
            return Path(corpus)
    raise SpkpeftError("the SASV report draws its DET plots from the trial lists: give the corpus directory "
                       "(--corpus-dir data/<corpus>)")


TASKS.register("sasv", SASVTaskConfig, SASVTask, description="spoof-aware speaker verification (fusion)")
