"""Training data, label-agnostic: random crops and class-balanced batches.

Labels are integers chosen by the task (speakers for ``sv``, classes for ``cls``).
Batches are class-balanced: an epoch is a random order of speakers
repeated as needed, each batch holds ``batch_size`` distinct speakers with one
random utterance each (with fewer speakers than ``batch_size``, speakers repeat).  The epoch's batch list depends only on
``(seed, epoch)``, so every rank of a distributed run derives the same list
and takes every ``world_size``-th batch (DistributedSampler semantics), and a
resumed run can skip the batches it already did.  Each item carries its own
crop seed, so crops do not depend on data-loader worker scheduling.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from spkpeft.io.audio import SAMPLE_RATE, AudioFile, read_audio
from spkpeft.data.augment import AugmentConfig, Augmenter, speed_label, speed_perturb, SPEEDS
from spkpeft.errors import SpkpeftError


@dataclass
class DataConfig:
    """``data:`` section of a config."""

    crop_seconds: float = 2.0
    batch_size: int = 64
    num_workers: int = 2
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    shards: str = ""  # shard directory of the training data (spkpeft.data.shards); "" = one file per utterance
    shuffle_buffer: int = 1000  # items in each shard reader's shuffle buffer

    def __post_init__(self) -> None:
        validate_data_config(self)


def validate_data_config(cfg: DataConfig) -> None:
    """Range checks; errors name the key."""
    if cfg.crop_seconds <= 0:
        raise SpkpeftError("data.crop_seconds must be > 0")
    if cfg.batch_size < 2:
        raise SpkpeftError("data.batch_size must be >= 2")
    if cfg.num_workers < 0:
        raise SpkpeftError("data.num_workers must be >= 0")
    if cfg.shuffle_buffer < 1:
        raise SpkpeftError("data.shuffle_buffer must be >= 1")
    cfg.augment.validate()


def crop_or_pad(wav: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``length``-sample window; shorter audio is repeated (wrap-padded) up to ``length``."""
    if wav.shape[0] >= length:
        start = int(rng.integers(0, wav.shape[0] - length + 1))
        return wav[start:start + length]
    reps = math.ceil(length / wav.shape[0])
    return np.tile(wav, reps)[:length]


class CropDataset(Dataset):
    """Items are ``(index, crop_seed)`` pairs -> ``(crop float32 (S,), label)``.

    With speed perturbation the item's speed is drawn from the crop seed and, with
    ``speed_changes_label`` (speakers: a faster voice is another voice), the label becomes
    ``speed_label(label, speed_index, n_classes)``; otherwise the label stays.
    """

    def __init__(self, utts: Sequence[tuple[str, str, int]], n_classes: int, crop_seconds: float,
                 augment: AugmentConfig | None = None, sample_rate: int = SAMPLE_RATE,
                 speed_changes_label: bool = True):
        self.utts = list(utts)
        self.n_classes = n_classes
        self.speed_changes_label = speed_changes_label
        self.length = int(round(crop_seconds * sample_rate))
        self.sample_rate = sample_rate
        self.augment_cfg = augment or AugmentConfig()
        self._augmenter: Augmenter | None = None
        self._warned_short = False

    @property
    def augmenter(self) -> Augmenter:
        if self._augmenter is None:  # built lazily in each worker process
            self._augmenter = Augmenter(self.augment_cfg, self.sample_rate)
        return self._augmenter

    def __len__(self) -> int:
        return len(self.utts)

    def __getitem__(self, item: tuple[int, int]) -> tuple[torch.Tensor, int]:
        index, crop_seed = item
        utt, path, label = self.utts[index]
        return self.make_crop(AudioFile(path, expected_sr=self.sample_rate), utt, label, crop_seed)

    def make_crop(self, audio: AudioFile, utt: str, label: int, crop_seed: int) -> tuple[torch.Tensor, int]:
        """The training crop of utterance ``utt`` and its label: every random draw (speed, crop
        start, augmentation) comes from ``crop_seed``.  Without speed perturbation only the
        crop's window is decoded: the same samples as :func:`crop_or_pad` of the whole file,
        whose one draw (the start, when the utterance is long enough) it makes alike."""
        rng = np.random.default_rng(crop_seed)
        if self.augment_cfg.speed_perturb:
            wav = audio.read()
            speed_index = int(rng.integers(len(SPEEDS)))
            if SPEEDS[speed_index] != 1.0:
                wav = speed_perturb(wav, SPEEDS[speed_index])
            if self.speed_changes_label:
                label = speed_label(label, speed_index, self.n_classes)
            self._warn_if_short(wav.shape[0], utt, audio.origin)
            crop = crop_or_pad(wav, self.length, rng)
        elif audio.frames >= self.length:
            crop = audio.read(int(rng.integers(0, audio.frames - self.length + 1)), self.length)
        else:
            self._warn_if_short(audio.frames, utt, audio.origin)
            crop = crop_or_pad(audio.read(), self.length, rng)
        if self.augmenter.enabled:
            crop = self.augmenter(crop, rng)
        return torch.from_numpy(np.ascontiguousarray(crop, dtype=np.float32)), label

    def _warn_if_short(self, samples: int, utt: str, origin) -> None:
        """Warn once per dataset that an utterance is repeated to fill the crop."""
        if samples < self.length and not self._warned_short:
            warnings.warn(f"{origin}: utterance '{utt}' is shorter than the {self.length / self.sample_rate:g} s "
                          "training crop; it is repeated to fill the crop", stacklevel=3)
            self._warned_short = True


class BalancedBatchSampler(Sampler):
    """Speaker-balanced batches of ``(index, crop_seed)``; see the module docstring.

    ``batches_per_epoch = ceil(n_utts / batch_size)`` in total, split over ranks.
    """

    def __init__(self, labels: Sequence[int], batch_size: int, seed: int, rank: int = 0, world_size: int = 1):
        self.labels = np.asarray(labels)
        speakers = np.unique(self.labels)
        self.by_speaker = {int(s): np.flatnonzero(self.labels == s) for s in speakers}
        self.speakers = speakers
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.start_batch = 0
        total = math.ceil(len(self.labels) / batch_size)
        self.batches_per_epoch = max(world_size, total - total % world_size)

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Select the epoch; ``start_batch`` skips this rank's first batches (resuming)."""
        self.epoch = epoch
        self.start_batch = start_batch

    def epoch_batches(self, epoch: int) -> list[list[tuple[int, int]]]:
        """All batches of an epoch (every rank), as lists of ``(index, crop_seed)``."""
        rng = np.random.default_rng([self.seed, epoch])
        batches = []
        order: list[int] = []
        for _ in range(self.batches_per_epoch):
            while len(order) < self.batch_size:  # more than once only with fewer classes than batch_size
                order += rng.permutation(self.speakers).tolist()
            chosen, order = order[:self.batch_size], order[self.batch_size:]
            if len(set(chosen)) < len(chosen) <= len(self.speakers):  # a permutation boundary repeated a speaker
                chosen = rng.choice(self.speakers, size=self.batch_size, replace=False).tolist()
            batch = []
            for spk in chosen:
                utts = self.by_speaker[int(spk)]
                batch.append((int(utts[rng.integers(len(utts))]), int(rng.integers(2**31))))
            batches.append(batch)
        return batches

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        mine = self.epoch_batches(self.epoch)[self.rank::self.world_size]
        return iter(mine[self.start_batch:])

    def __len__(self) -> int:
        return self.batches_per_epoch // self.world_size - self.start_batch


def collate_crops(items: Sequence[tuple[torch.Tensor, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack equal-length crops -> ``(wavs (B, S), labels (B,))``."""
    return torch.stack([w for w, _ in items]), torch.tensor([label for _, label in items], dtype=torch.long)


def load_utterance(path: str, max_seconds: float | None = None, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read a whole utterance, keeping at most its first ``max_seconds``."""
    wav = read_audio(path, sample_rate)
    if max_seconds:
        wav = wav[: int(max_seconds * sample_rate)]
    return wav
