"""Embedding fusion: SASV 2022 Baseline 2 (a small DNN on the enrollment, test and CM embeddings).

As ``models/baseline2.py``, ``systems/baseline2.py`` and ``dataloaders/backend_fusion.py`` of
``sasv-challenge/SASVC2022_Baseline`` and ``configs/baseline2.conf``:

* input: ``[e_enroll, e_test, c_test]``, the speaker embedding of the enrollment side, the
  speaker embedding of the test utterance and the CM embedding of the test utterance (the CM
  model's embedding before its 2-class layer), concatenated;
* network: ``Linear -> LeakyReLU(0.3)`` layers of 256, 128 and 64 units, then a 2-way
  ``Linear`` without bias (class 1 = target bona fide);
* training trials, drawn afresh in every epoch from the **training set** (its speakers' bona
  fide and spoofed utterances, ``utt2spk`` + ``utt2label``; single utterances as enrollment), as
  many per epoch as the set has utterances: with probability 1/2 a target pair (two different
  bona fide utterances of one speaker), 1/4 a zero-effort nontarget (bona fide of speaker A as
  enrollment, bona fide of another speaker B as test), 1/4 a spoof (bona fide of A, a spoof of A);
* loss: cross-entropy with class weights ``[0.1, 0.9]``; Adam, learning rate ``1e-4``, weight
  decay ``1e-3``, Keras-style decay ``lr / (1 + 1e-4 step)``; batches of 24 (the last
  incomplete one dropped); 10 epochs; the epoch with the lowest **development** SASV-EER is kept
  (the baseline's checkpoint monitor ``sasv_eer_dev``).
* score: the baseline takes ``softmax(logits)[:, 1]``; here the logit difference ``z_1 - z_0``,
  its logit (the same order, without the ties of a saturated softmax).

Departures: speakers with fewer than two bona fide utterances cannot give a target pair and are
not drawn for one (the baseline's ``random.sample`` would fail on them); draws come from a
seeded ``numpy`` generator (``seed``), the network's initial weights from ``torch`` seeded the
same way (PyTorch's default ``Linear`` initialisation; the baseline's
``set_init_weights`` is not applied by its system), so that a rerun gives the same scores.
Scores are computed in fixed blocks of rows, so they do not depend on how many trials are scored
at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import torch
from torch import nn

from spkpeft.errors import SpkpeftError
from spkpeft.eval.sasv_metrics import keyed_scores, sasv_eers

SCORE_BLOCK = 4096


@dataclass(frozen=True)
class EmbeddingFusionConfig:
    """Hyper-parameters of Baseline 2 (``configs/baseline2.conf``)."""

    layers: tuple[int, ...] = (256, 128, 64)
    negative_slope: float = 0.3
    class_weights: tuple[float, float] = (0.1, 0.9)
    lr: float = 1.0e-4
    weight_decay: float = 1.0e-3
    lr_decay: float = 1.0e-4
    batch_size: int = 24
    epochs: int = 10
    seed: int = 1234


class Baseline2Net(nn.Module):
    """``[enroll, test, cm] -> LeakyReLU MLP -> 2 logits`` (module docstring)."""

    def __init__(self, sv_dim: int, cm_dim: int, cfg: EmbeddingFusionConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = 2 * sv_dim + cm_dim
        for units in cfg.layers:
            layers += [nn.Linear(width, units), nn.LeakyReLU(cfg.negative_slope)]
            width = units
        self.dnn = nn.Sequential(*layers)
        self.out = nn.Linear(width, 2, bias=False)

    def forward(self, enroll: torch.Tensor, test: torch.Tensor, cm: torch.Tensor) -> torch.Tensor:
        return self.out(self.dnn(torch.cat([enroll, test, cm], dim=1)))


@dataclass
class TrainingPool:
    """The training set as Baseline 2 samples it: embeddings and each speaker's utterances."""

    sv: Mapping[str, np.ndarray]
    cm: Mapping[str, np.ndarray]
    bonafide: dict[str, list[str]] = field(default_factory=dict)
    spoof: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def from_labels(cls, sv: Mapping[str, np.ndarray], cm: Mapping[str, np.ndarray], utt2spk: Mapping[str, str],
                    utt2label: Mapping[str, str]) -> "TrainingPool":
        """Group the utterances of ``utt2spk`` by speaker and ``utt2label`` (bonafide | spoof)."""
        pool = cls(sv, cm)
        for utt, spk in utt2spk.items():
            if utt not in sv or utt not in cm:
                raise SpkpeftError(f"training utterance '{utt}' has no {'speaker' if utt not in sv else 'CM'} embedding")
            (pool.bonafide if utt2label[utt] == "bonafide" else pool.spoof).setdefault(spk, []).append(utt)
        if not [s for s, u in pool.bonafide.items() if len(u) >= 2]:
            raise SpkpeftError("embedding fusion: no training speaker has two bona fide utterances (target pairs)")
        if len(pool.bonafide) < 2:
            raise SpkpeftError("embedding fusion: zero-effort nontarget pairs need two training speakers")
        if not [s for s in pool.spoof if s in pool.bonafide]:
            raise SpkpeftError("embedding fusion: no training speaker has both bona fide and spoofed utterances")
        return pool

    @property
    def size(self) -> int:
        return sum(map(len, self.bonafide.values())) + sum(map(len, self.spoof.values()))


def sample_trials(pool: TrainingPool, n: int, rng: np.random.Generator) -> tuple[list[str], list[str], np.ndarray]:
    """``n`` training trials ``(enroll utts, test utts, labels)`` drawn as the module docstring says."""
    speakers = sorted(pool.bonafide)
    target_speakers = [s for s in speakers if len(pool.bonafide[s]) >= 2]
    spoof_speakers = sorted(s for s in pool.spoof if s in pool.bonafide)
    enroll, test, labels = [], [], np.empty(n, dtype=np.int64)
    for k in range(n):
        if rng.random() < 0.5:                      # target
            utts = pool.bonafide[target_speakers[rng.integers(len(target_speakers))]]
            i, j = rng.choice(len(utts), size=2, replace=False)
            pair, labels[k] = (utts[i], utts[j]), 1
        elif rng.random() < 0.5:                    # zero-effort nontarget
            a, b = rng.choice(len(speakers), size=2, replace=False)
            first, second = pool.bonafide[speakers[a]], pool.bonafide[speakers[b]]
            pair, labels[k] = (first[rng.integers(len(first))], second[rng.integers(len(second))]), 0
        else:                                       # spoof of the enrolled speaker
            spk = spoof_speakers[rng.integers(len(spoof_speakers))]
            bona, spoof = pool.bonafide[spk], pool.spoof[spk]
            pair, labels[k] = (bona[rng.integers(len(bona))], spoof[rng.integers(len(spoof))]), 0
        enroll.append(pair[0])
        test.append(pair[1])
    return enroll, test, labels


@dataclass(frozen=True)
class DevEmbeddingTrials:
    """Development trials for the checkpoint choice: per trial the enrollment model's and the test
    utterance's speaker embeddings, the test utterance's CM embedding and the key."""

    enroll: np.ndarray
    test: np.ndarray
    cm: np.ndarray
    keys: tuple[str, ...]
    set_name: str = "dev"

    def __post_init__(self) -> None:
        n = len(self.keys)
        if not (self.enroll.shape[0] == self.test.shape[0] == self.cm.shape[0] == n):
            raise SpkpeftError("development embedding trials need one enrollment, test and CM embedding per key")
        keyed_scores(np.zeros(n), self.keys)  # all three classes, known keys


def _tensor(x: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x, dtype=np.float32))


@dataclass
class FittedEmbeddingFusion:
    """The trained network: ``score(enroll, test, cm)`` for any trials (no keys involved)."""

    net: Baseline2Net
    params: dict
    name: str = "embedding"

    @torch.no_grad()
    def score(self, enroll: np.ndarray, test: np.ndarray, cm: np.ndarray) -> np.ndarray:
        """``z_target - z_other`` per trial (float64), in fixed blocks of rows."""
        self.net.eval()
        out = np.empty(enroll.shape[0])
        for start in range(0, enroll.shape[0], SCORE_BLOCK):
            rows = slice(start, start + SCORE_BLOCK)
            z = self.net(_tensor(enroll[rows]), _tensor(test[rows]), _tensor(cm[rows])).double()
            out[rows] = (z[:, 1] - z[:, 0]).numpy()
        return out


def fit_embedding_fusion(train: TrainingPool, dev: DevEmbeddingTrials,
                         cfg: EmbeddingFusionConfig = EmbeddingFusionConfig()) -> FittedEmbeddingFusion:
    """Train Baseline 2 on trials drawn from the training set; keep the epoch with the lowest
    development SASV-EER (the only use of the development keys)."""
    if not isinstance(train, TrainingPool) or not isinstance(dev, DevEmbeddingTrials):
        raise SpkpeftError("embedding fusion is trained on a TrainingPool and chosen on DevEmbeddingTrials only")
    sv_dim = len(next(iter(train.sv.values())))
    cm_dim = len(next(iter(train.cm.values())))
    if dev.enroll.shape[1] != sv_dim or dev.cm.shape[1] != cm_dim:
        raise SpkpeftError(f"embedding sizes differ between training ({sv_dim}, {cm_dim}) and development "
                           f"({dev.enroll.shape[1]}, {dev.cm.shape[1]}) trials")
    torch.manual_seed(cfg.seed)
    net = Baseline2Net(sv_dim, cm_dim, cfg)
    fitted = FittedEmbeddingFusion(net, {})
    optimizer = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (1.0 + cfg.lr_decay * step))
    loss_fn = nn.CrossEntropyLoss(weight=torch.tensor(cfg.class_weights, dtype=torch.float32))
    rng = np.random.default_rng(cfg.seed)
    steps = train.size // cfg.batch_size
    if steps < 1:
        raise SpkpeftError(f"embedding fusion: {train.size} training utterances make no batch of {cfg.batch_size}")
    best_eer, best_state, best_epoch, history = math.inf, None, 0, []
    for epoch in range(1, cfg.epochs + 1):
        enroll, test, labels = sample_trials(train, steps * cfg.batch_size, rng)
        net.train()
        for step in range(steps):
            rows = slice(step * cfg.batch_size, (step + 1) * cfg.batch_size)
            logits = net(_tensor(np.stack([train.sv[u] for u in enroll[rows]])),
                         _tensor(np.stack([train.sv[u] for u in test[rows]])),
                         _tensor(np.stack([train.cm[u] for u in test[rows]])))
            loss = loss_fn(logits, torch.as_tensor(labels[rows]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
        eer = sasv_eers(keyed_scores(fitted.score(dev.enroll, dev.test, dev.cm), dev.keys)).sasv
        history.append(100.0 * eer)
        if eer < best_eer:
            best_eer, best_epoch = eer, epoch
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    net.load_state_dict(best_state)
    fitted.params = {"best_epoch": best_epoch, "dev_sasv_eer_pct": 100.0 * best_eer, "dev_sasv_eer_pct_by_epoch":
                     history, "train_utterances": train.size, "steps_per_epoch": steps,
                     "parameters": sum(p.numel() for p in net.parameters())}
    return fitted

