"""Self-supervised pre-training of an s3prl upstream on unlabelled audio (BEST-RQ), resumable.

The objective is :mod:`spkpeft.upstream.s3prl.bestrq`.  The run reads only ``wav.scp`` of a
data directory and writes into ``out_dir``:

* ``last.pt``     the resumable state (model, softmax layer, mask embedding, target statistics, optimizer,
                  RNG, per-step history, configuration), written every ``save_every`` steps
                  and at the end through the atomic writer;
* ``loss.csv``    the loss curve: ``step,loss,accuracy,lr`` per optimizer step (rewritten
                  from the history with each ``last.pt``);
* ``upstream.pt`` when all steps are done: the trained model in its s3prl local format
                  (``wavlm_local`` / ``hubert_local`` / ``wav2vec2_local``, the format of
                  the initial upstream), loadable as ``--upstream out_dir/upstream.pt``.

Batches are a function of ``(seed, step)`` alone: step ``s`` takes positions
``[sB, (s+1)B)`` of the concatenated per-epoch permutations of the utterances
(``default_rng([seed, 1, epoch])``), a random ``crop_seconds`` window of each
(``default_rng([seed, 2, s, i])``), and its masks from ``default_rng([seed, 3, s])``; with
the torch RNG (dropout) restored from ``last.pt``, a resumed run gives the same weights as
an uninterrupted one.  The learning rate warms up linearly over ``warmup_steps`` and decays
by a cosine to 1 % (:func:`spkpeft.engine.trainer.lr_factor`); AdamW; gradient clipping.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from spkpeft.data.crops import crop_or_pad, load_utterance
from spkpeft.engine.checkpoint import load_checkpoint, remove_partial_writes, save_atomic
from spkpeft.engine.trainer import lr_factor, rng_state, set_rng_state
from spkpeft.errors import SpkpeftError, file_error
from spkpeft.io.atomic import write_text_atomic
from spkpeft.io.audio import SAMPLE_RATE
from spkpeft.io.datadir import read_key_value
from spkpeft.upstream.s3prl import sources
from spkpeft.upstream.s3prl.bestrq import BestRqModel
from spkpeft.upstream.s3prl.wrapper import load_upstream

STATE = "last.pt"
CURVE = "loss.csv"
RESULT = "upstream.pt"


@dataclass
class PretrainConfig:
    """What a run is; a resumed run must have the same values."""

    init: str = "random:tiny_wavlm"   # random:<arch> or an s3prl local checkpoint path
    steps: int = 600                   # defaults: the run of egs/mini/RESULTS.md (8 minutes on a shared CPU core)
    batch_size: int = 8
    crop_seconds: float = 2.0
    lr: float = 1.0e-3
    warmup_steps: int = 60
    weight_decay: float = 0.01
    grad_clip: float = 5.0
    mask_prob: float = 0.05            # probability that a frame starts a masked span
    mask_span: int = 10                # frames (200 ms at 50 Hz)
    codebook_size: int = 512
    codebook_dim: int = 16
    normalization: str = "global"      # target features: global statistics | per utterance
    stats_utts: int = 200              # utterances (a seeded sample) for the global statistics
    seed: int = 0

    def validate(self) -> None:
        """Range checks; errors name the option."""
        positive = ("steps", "batch_size", "crop_seconds", "lr", "mask_span", "codebook_dim")
        for key in positive:
            if not getattr(self, key) > 0:
                raise SpkpeftError(f"pretrain: {key} must be > 0, got {getattr(self, key)}")
        if self.normalization not in ("global", "utterance") or self.stats_utts < 1:
            raise SpkpeftError(f"pretrain: normalization must be global or utterance and stats_utts >= 1, "
                               f"got {self.normalization!r}, {self.stats_utts}")
        if not 0 < self.mask_prob <= 1:
            raise SpkpeftError(f"pretrain: mask_prob must be in (0, 1], got {self.mask_prob}")
        if self.codebook_size < 2 or self.warmup_steps < 0 or self.weight_decay < 0 or self.grad_clip <= 0:
            raise SpkpeftError("pretrain: need codebook_size >= 2, warmup_steps >= 0, weight_decay >= 0, grad_clip > 0")


def read_wav_list(data_dir: str | Path) -> list[str]:
    """Audio paths of ``data_dir/wav.scp`` in file order (no label file is needed)."""
    scp = Path(data_dir) / "wav.scp"
    if not scp.is_file():
        raise file_error(scp, "not found (pre-training reads the wav.scp of a data directory)")
    paths = list(read_key_value(scp, rest_of_line=True).values())
    if not paths:
        raise file_error(scp, "no utterance")
    return paths


def batch_indices(step: int, batch_size: int, num_utts: int, seed: int) -> list[int]:
    """Utterances of optimizer step ``step`` (see the module docstring)."""
    out = []
    for position in range(step * batch_size, (step + 1) * batch_size):
        epoch, offset = divmod(position, num_utts)
        out.append(int(np.random.default_rng([seed, 1, epoch]).permutation(num_utts)[offset]))
    return out


def load_batch(paths: list[str], step: int, cfg: PretrainConfig) -> torch.Tensor:
    """``(B, S)`` float32 crops of the step's utterances."""
    length = int(round(cfg.crop_seconds * SAMPLE_RATE))
    crops = [crop_or_pad(load_utterance(paths[u]), length, np.random.default_rng([cfg.seed, 2, step, i]))
             for i, u in enumerate(batch_indices(step, cfg.batch_size, len(paths), cfg.seed))]
    return torch.from_numpy(np.stack(crops).astype(np.float32))


def build_model(cfg: PretrainConfig) -> tuple[BestRqModel, str, dict]:
    """The BEST-RQ model around ``cfg.init`` loaded like any upstream, its format and checkpoint."""
    fmt, template = sources.source_checkpoint(cfg.init)
    weights = template[sources.weights_key(fmt)]
    if "mask_emb" not in weights:
        raise SpkpeftError(f"{cfg.init}: the checkpoint has no mask_emb (not a masked-prediction model)")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = BestRqModel(load_upstream(cfg.init), weights["mask_emb"], cfg.codebook_size,
                            cfg.codebook_dim, cfg.seed, cfg.normalization)
    return model, fmt, template


def export_checkpoint(model: BestRqModel, fmt: str, template: dict) -> dict:
    """The trained upstream in the template's s3prl local format (pre-training-only entries
    other than ``mask_emb``, e.g. HuBERT's label head, keep their initial values)."""
    state = dict(template[sources.weights_key(fmt)])
    state.update(model.upstream.model.state_dict())
    state["mask_emb"] = model.mask_emb.detach()
    return sources.with_weights(fmt, template, state)


def write_curve(path: Path, history: list[tuple[int, float, float, float]]) -> None:
    """``loss.csv``: ``step,loss,accuracy,lr``."""
    write_text_atomic(path, ["step,loss,accuracy,lr"] + [f"{s},{l:.6f},{a:.6f},{r:.6g}" for s, l, a, r in history])


class Pretrainer:
    """One pre-training run in ``out_dir``; :meth:`run` resumes from ``last.pt`` when present."""

    def __init__(self, cfg: PretrainConfig, data_dir: str | Path, out_dir: str | Path, device: str = "cpu",
                 save_every: int = 100, log: Callable[[str], None] = print) -> None:
        cfg.validate()
        self.cfg, self.out, self.log = cfg, Path(out_dir), log
        self.paths = read_wav_list(data_dir)
        self.device = torch.device(device)
        self.save_every = max(1, save_every)
        self.model, self.fmt, self.template = build_model(cfg)
        self.model.to(self.device)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.step = 0
        self.history: list[tuple[int, float, float, float]] = []

    def _state(self) -> dict:
        return {"config": dataclasses.asdict(self.cfg), "step": self.step, "history": self.history,
                "model": {k: v.cpu() for k, v in self.model.state_dict().items()},
                "optimizer": self.optimizer.state_dict(), "rng": rng_state()}

    def _save(self) -> None:
        save_atomic(self._state(), self.out / STATE)
        write_curve(self.out / CURVE, self.history)

    def _resume(self) -> None:
        path = self.out / STATE
        state = load_checkpoint(path)
        saved = state.get("config", {})
        for key, value in dataclasses.asdict(self.cfg).items():
            if saved.get(key) != value:
                raise file_error(path, f"was made with {key}={saved.get(key)!r}, now {value!r}; "
                                       f"use another output directory")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        set_rng_state(state["rng"])
        self.step, self.history = int(state["step"]), [tuple(h) for h in state["history"]]
        self.log(f"pretrain: resuming {path} at step {self.step}/{self.cfg.steps}")

    def _fit_statistics(self) -> None:
        """Global target statistics over ``stats_utts`` utterances (``default_rng([seed, 4])``)."""
        chosen = np.random.default_rng([self.cfg.seed, 4]).permutation(len(self.paths))[: self.cfg.stats_utts]
        self.model.quantizer.fit_statistics([torch.from_numpy(load_utterance(self.paths[i])) for i in sorted(chosen)])

    def train_step(self) -> None:
        """One optimizer step on the batch of ``self.step``."""
        cfg = self.cfg
        lr = cfg.lr * lr_factor(self.step, cfg.warmup_steps, cfg.steps, "cosine", 0.01)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        wavs = load_batch(self.paths, self.step, cfg).to(self.device)
        lens = torch.full((wavs.shape[0],), wavs.shape[1], dtype=torch.long)  # on the host: the masks are drawn there
        loss, accuracy = self.model(wavs, lens, cfg.mask_prob, cfg.mask_span,
                                    np.random.default_rng([cfg.seed, 3, self.step]))
        if not torch.isfinite(loss):
            raise SpkpeftError(f"pretrain: non-finite loss at step {self.step}")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.optimizer.step()
        self.history.append((self.step, float(loss.detach()), float(accuracy), lr))
        self.step += 1

    def run(self) -> Path:
        """Train up to ``cfg.steps`` (resuming), then write ``upstream.pt``; returns its path."""
        self.out.mkdir(parents=True, exist_ok=True)
        remove_partial_writes(self.out)
        torch.manual_seed(self.cfg.seed)  # dropout; a resume restores the saved state instead
        if (self.out / STATE).is_file():
            self._resume()
        elif self.cfg.normalization == "global":
            self._fit_statistics()
        self.model.train()
        start, first = time.perf_counter(), self.step
        while self.step < self.cfg.steps:
            self.train_step()
            if self.step % self.save_every == 0 or self.step == self.cfg.steps:
                self._save()
                recent = self.history[-self.save_every:]
                self.log(f"pretrain: step {self.step}/{self.cfg.steps} loss {np.mean([h[1] for h in recent]):.3f} "
                         f"acc {np.mean([h[2] for h in recent]):.3f} "
                         f"({(time.perf_counter() - start) / max(1, self.step - first):.2f} s/step)")
        result = self.out / RESULT
        save_atomic(export_checkpoint(self.model, self.fmt, self.template), result)
        return result


def curve_summary(history: list[tuple[int, float, float, float]], window: int) -> tuple[float, float]:
    """Mean loss of the first and of the last ``window`` steps."""
    window = max(1, min(window, math.ceil(len(history) / 2)))
    return float(np.mean([h[1] for h in history[:window]])), float(np.mean([h[1] for h in history[-window:]]))
