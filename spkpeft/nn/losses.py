"""Margin-based softmax losses for speaker classification training.

Let ``w_j`` be the learnable class weights (num_classes x E) and ``x`` an
embedding; ``cos(theta_j) = <x, w_j> / (|x| |w_j|)``.  With scale ``s`` and
margin ``m`` the logits are

* AAM-softmax (ArcFace, ``type: aam``):
  ``z_y = s * psi(theta_y)`` with ``psi(theta) = cos(theta + m)``,
  ``z_j = s * cos(theta_j)`` for ``j != y``;
* AM-softmax (CosFace, ``type: am``):
  ``z_y = s * (cos(theta_y) - m)``, ``z_j = s * cos(theta_j)``;

and the loss is the mean cross-entropy of ``z`` against the labels.

ArcFace monotonicity: ``cos(theta + m)`` increases again once
``theta > pi - m``.  By default the standard (InsightFace) fix is used:
``psi(theta) = cos(theta + m)`` if ``cos(theta) > cos(pi - m)`` else
``cos(theta) - m sin(m)`` (the first-order expansion at the threshold).
With ``easy_margin: true``, ``psi(theta) = cos(theta + m)`` if
``cos(theta) > 0`` else ``cos(theta)``.

``cos(theta + m)`` is computed as ``cos(theta) cos(m) - sin(theta) sin(m)``
with ``sin(theta) = sqrt(max(1 - cos^2(theta), eps))``, so no ``acos`` is
involved and gradients stay finite at ``cos = +-1``.

Margin warm-up: the trainer calls :meth:`MarginSoftmax.set_epoch` with the
(fractional) epoch ``e``; the margin in use is
``m * min(1, e / margin_warmup_epochs)`` (``m`` when the warm-up is 0).
Large-margin fine-tuning is only a config overlay (larger ``margin``).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spkpeft.errors import SpkpeftError
from spkpeft.registry import Registry, tagged_section

#: ``loss.type`` -> config and ``build(cfg, embed_dim, num_classes, class_counts)``; a loss is
#: called as ``loss(outputs, labels) -> (loss, accuracy)`` and may have ``set_epoch(e)``
LOSSES = Registry("loss", tag_key="type")
LOSS_TYPES = ("aam", "am")
_SIN_EPS = 1e-6


@tagged_section(LOSSES)
@dataclass
class LossConfig:
    """``loss:`` section of a config: the margin softmaxes (``type: aam | am``; others: :data:`LOSSES`)."""

    type: str = "aam"
    margin: float = 0.2
    scale: float = 30.0
    margin_warmup_epochs: float = 0.0
    easy_margin: bool = False

    def __post_init__(self) -> None:
        validate_loss_config(self)


def _number(cfg: LossConfig, key: str) -> float:
    value = getattr(cfg, key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SpkpeftError(f"loss.{key} must be a finite number, got {value!r}.")
    return float(value)


def validate_loss_config(cfg: LossConfig) -> None:
    """Raise :class:`SpkpeftError` naming the ``loss.<key>`` that is invalid."""
    if cfg.type not in LOSS_TYPES:
        raise SpkpeftError(f"loss.type must be one of {', '.join(LOSS_TYPES)}, got {cfg.type!r}.")
    if _number(cfg, "scale") <= 0:
        raise SpkpeftError(f"loss.scale must be > 0, got {cfg.scale!r}.")
    margin = _number(cfg, "margin")
    if margin < 0:
        raise SpkpeftError(f"loss.margin must be >= 0, got {cfg.margin!r}.")
    if cfg.type == "aam" and margin >= math.pi / 2:
        raise SpkpeftError(f"loss.margin must be < pi/2 for loss.type aam, got {cfg.margin!r}.")
    if _number(cfg, "margin_warmup_epochs") < 0:
        raise SpkpeftError(
            f"loss.margin_warmup_epochs must be >= 0, got {cfg.margin_warmup_epochs!r}."
        )
    if not isinstance(cfg.easy_margin, bool):
        raise SpkpeftError(f"loss.easy_margin must be true or false, got {cfg.easy_margin!r}.")


def warmup_margin(margin: float, warmup_epochs: float, epoch: float) -> float:
    """Linear warm-up: ``margin * min(1, max(0, epoch) / warmup_epochs)``."""
    if warmup_epochs <= 0:
        return margin
    return margin * min(1.0, max(0.0, epoch) / warmup_epochs)


def _float32(device: torch.device):
    """Autocast switched off on ``device`` (a context manager; nothing where autocast does not exist)."""
    if torch.amp.is_autocast_available(device.type):
        return torch.autocast(device.type, enabled=False)
    return contextlib.nullcontext()


def arc_margin(cos: Tensor, margin: float, easy_margin: bool = False) -> Tensor:
    """ArcFace target function ``psi(theta)`` given ``cos(theta)`` (see module doc)."""
    sin = (1.0 - cos * cos).clamp_min(_SIN_EPS).sqrt()
    shifted = cos * math.cos(margin) - sin * math.sin(margin)
    if easy_margin:
        return torch.where(cos > 0, shifted, cos)
    threshold = math.cos(math.pi - margin)
    return torch.where(cos > threshold, shifted, cos - margin * math.sin(margin))


class MarginSoftmax(nn.Module):
    """AAM- or AM-softmax with a learnable class-weight matrix ``weight (N, E)``.

    ``forward(embeddings (B, E), labels (B,)) -> (loss, accuracy)`` where
    ``accuracy`` is the fraction of argmax-cosine predictions equal to the
    labels (margin-free, no gradient).
    """

    def __init__(self, cfg: LossConfig, embed_dim: int, num_classes: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.weight = nn.Parameter(torch.empty(num_classes, embed_dim))
        nn.init.xavier_normal_(self.weight)
        self.margin = warmup_margin(cfg.margin, cfg.margin_warmup_epochs, 0.0)

    def set_epoch(self, epoch: float) -> float:
        """Update the warm-up margin for (fractional) ``epoch``; return the margin in use."""
        self.margin = warmup_margin(self.cfg.margin, self.cfg.margin_warmup_epochs, epoch)
        return self.margin

    def cosine(self, embeddings: Tensor) -> Tensor:
        """``cos(theta) (B, N)`` between embeddings and class weights, clamped to [-1, 1], in
        float32 whatever autocast does: near the target the margin moves ``cos`` by less than
        bf16's resolution (8 bits of mantissa) would keep."""
        with _float32(embeddings.device):
            cos = F.linear(F.normalize(embeddings.float(), dim=-1), F.normalize(self.weight.float(), dim=-1))
        return cos.clamp(-1.0, 1.0)

    def target_logit(self, cos_target: Tensor) -> Tensor:
        """Margin-adjusted target cosine (before scaling)."""
        if self.cfg.type == "am":
            return cos_target - self.margin
        return arc_margin(cos_target, self.margin, self.cfg.easy_margin)

    def margin_logits(self, cos: Tensor, labels: Tensor) -> Tensor:
        """Scaled logits ``s * cos`` with the margin applied to the target column."""
        index = labels.long().unsqueeze(1)
        target = self.target_logit(cos.gather(1, index))
        return self.cfg.scale * cos.scatter(1, index, target)

    def logits(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """Margin logits ``(B, N)`` for ``embeddings`` and their ``labels``."""
        return self.margin_logits(self.cosine(embeddings), labels)

    def forward(self, embeddings: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        cos = self.cosine(embeddings)
        loss = F.cross_entropy(self.margin_logits(cos, labels), labels.long())
        accuracy = (cos.detach().argmax(1) == labels).float().mean()
        return loss, accuracy


def build_margin_softmax(cfg: LossConfig, embed_dim: int, num_classes: int, class_counts=None) -> MarginSoftmax:
    """The margin softmax described by ``cfg`` for ``num_classes`` speakers."""
    _check_sizes(embed_dim, num_classes)
    return MarginSoftmax(cfg, embed_dim, num_classes)


def _check_sizes(embed_dim: int, num_classes: int) -> None:
    for name, value in (("embedding dimension", embed_dim), ("number of classes", num_classes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SpkpeftError(f"loss: the {name} must be a positive integer, got {value!r}.")


# ----------------------------------------------------------------------------- cross-entropy


@dataclass
class CrossEntropyConfig:
    """``loss.type: ce``: cross-entropy on the model's logits (utterance classification).

    ``label_smoothing`` ``eps``: targets ``(1 - eps) onehot + eps / K`` (Szegedy et al., 2016);
    ``class_weights: balanced`` weighs class ``c`` by ``N / (K n_c)`` (``n_c`` training
    utterances of ``c`` out of ``N``), ``none`` weighs all classes equally, ``given`` uses
    ``weights`` (one per class, in the task's class order; e.g. the weighted cross-entropy
    of AASIST for spoofing countermeasures: spoof 0.1, bona fide 0.9).
    """

    type: str = "ce"
    label_smoothing: float = field(default=0.0, metadata={"check": lambda v: None if 0.0 <= v < 1.0 else f"must be in [0, 1), got {v}"})
    class_weights: str = field(default="none", metadata={"choices": ("none", "balanced", "given")})
    weights: list[float] = field(default_factory=list)


class CrossEntropy(nn.Module):
    """``forward(logits (B, K), labels (B,)) -> (loss, accuracy)``; no parameters."""

    def __init__(self, cfg: CrossEntropyConfig, num_classes: int, class_counts=None) -> None:
        super().__init__()
        self.label_smoothing = cfg.label_smoothing
        weight = None
        if cfg.class_weights == "given":
            if len(cfg.weights) != num_classes or min(cfg.weights, default=0.0) <= 0:
                raise SpkpeftError(f"loss.weights: class_weights given needs {num_classes} positive weights, got {cfg.weights}")
            weight = torch.tensor(cfg.weights, dtype=torch.float32)
        elif cfg.weights:
            raise SpkpeftError("loss.weights goes with loss.class_weights: given")
        elif cfg.class_weights == "balanced":
            if class_counts is None or len(class_counts) != num_classes:
                raise SpkpeftError("loss.class_weights: balanced needs the training count of every class")
            counts = torch.as_tensor(class_counts, dtype=torch.float32).clamp_min(1.0)
            weight = counts.sum() / (num_classes * counts)
        self.register_buffer("weight", weight, persistent=False)

    def forward(self, logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        loss = F.cross_entropy(logits.float(), labels.long(), weight=self.weight, label_smoothing=self.label_smoothing)
        accuracy = (logits.detach().argmax(1) == labels).float().mean()
        return loss, accuracy


def build_cross_entropy(cfg: CrossEntropyConfig, embed_dim: int, num_classes: int, class_counts=None) -> CrossEntropy:
    _check_sizes(embed_dim, num_classes)
    return CrossEntropy(cfg, num_classes, class_counts)


def build_loss(cfg, embed_dim: int, num_classes: int, class_counts=None) -> nn.Module:
    """The loss of ``cfg`` (``cfg.type`` in :data:`LOSSES`) for ``num_classes`` classes."""
    return LOSSES.get(cfg.type).build(cfg, embed_dim, num_classes, class_counts)


LOSSES.register("aam", LossConfig, build_margin_softmax, description="additive angular margin softmax (ArcFace)")
LOSSES.register("am", LossConfig, build_margin_softmax, description="additive margin softmax (CosFace)")
LOSSES.register("ce", CrossEntropyConfig, build_cross_entropy, description="cross-entropy on logits")


# ----------------------------------------------------------------------------- one-class softmax


@dataclass
class OneClassSoftmaxConfig:
    """``loss.type: ocsoftmax``: the one-class softmax of Zhang, Jiang and Duan, "One-class
    learning towards synthetic voice spoofing detection", IEEE SPL 2021 (defaults: the
    paper's ``m_0 = 0.9``, ``m_1 = 0.2``, ``alpha = 20``, which its training script passes;
    the reference code's function default ``r_fake = 0.5`` is not the paper's).

    The model ends in :class:`CosineToCentre` (one output, ``cos(x, w)`` to a learnable
    centre ``w`` of the target class), and with ``y = 1`` for the target class (bona fide)::

        L = mean_i log(1 + exp(alpha (m_0 - cos_i)))      for y_i = 1
                   log(1 + exp(alpha (cos_i - m_1)))      for y_i = 0

    pulling the target class inside the angle ``acos m_0`` of ``w`` and pushing the other
    class beyond ``acos m_1``; the score of an utterance is ``cos(x, w)``.
    """

    type: str = "ocsoftmax"
    m_target: float = field(default=0.9, metadata={"check": lambda v: None if -1.0 < v < 1.0 else f"must be in (-1, 1), got {v}"})
    m_other: float = field(default=0.2, metadata={"check": lambda v: None if -1.0 < v < 1.0 else f"must be in (-1, 1), got {v}"})
    alpha: float = field(default=20.0, metadata={"check": lambda v: None if v > 0 else f"must be > 0, got {v}"})


class CosineToCentre(nn.Module):
    """``(B, E) -> (B, 1)``: ``cos(x, w)`` to a learnable centre ``w`` (the one-class
    softmax's "classifier"; ``w`` initialised as the reference code does, Kaiming-uniform
    with ``a = 0.25``)."""

    out_features = 1

    def __init__(self, embed_dim: int) -> None:
        super().__init__()
        self.centre = nn.Parameter(torch.empty(1, embed_dim))
        nn.init.kaiming_uniform_(self.centre, a=0.25)

    def forward(self, embeddings: Tensor) -> Tensor:
        return F.normalize(embeddings.float(), dim=1) @ F.normalize(self.centre.float(), dim=1).T


class OneClassSoftmax(nn.Module):
    """``forward(cos (B, 1), labels (B,) with 1 = target) -> (loss, accuracy)``; the
    accuracy counts ``cos > (m_0 + m_1) / 2`` as the target class."""

    def __init__(self, cfg: OneClassSoftmaxConfig) -> None:
        super().__init__()
        if cfg.m_other >= cfg.m_target:
            raise SpkpeftError(f"loss.m_other ({cfg.m_other}) must be below loss.m_target ({cfg.m_target})")
        self.m_target, self.m_other, self.alpha = cfg.m_target, cfg.m_other, cfg.alpha

    def forward(self, cos: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        cos = cos.float().reshape(-1)
        target = labels.reshape(-1) == 1
        margin = torch.where(target, self.m_target - cos, cos - self.m_other)
        loss = F.softplus(self.alpha * margin).mean()
        accuracy = ((cos.detach() > 0.5 * (self.m_target + self.m_other)) == target).float().mean()
        return loss, accuracy


def build_one_class_softmax(cfg: OneClassSoftmaxConfig, embed_dim: int, num_classes: int,
                            class_counts=None) -> OneClassSoftmax:
    if num_classes != 2:
        raise SpkpeftError(f"loss.type ocsoftmax separates 2 classes, got {num_classes}")
    return OneClassSoftmax(cfg)


LOSSES.register("ocsoftmax", OneClassSoftmaxConfig, build_one_class_softmax,
                description="one-class softmax on the cosine to a target-class centre (spoofing countermeasures)")
