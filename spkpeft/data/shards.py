"""Training crops read sequentially from tar shards (``data.shards``; format: :mod:`spkpeft.io.shards`).

An epoch visits every training utterance once (one random crop each), reading each shard
from start to end; no file is opened per utterance.  The epoch's order, for training seed
``s`` and epoch ``e``:

1. the shards in a random order drawn from ``(s, e)``, the same on every rank; their
   training utterances (those the task keeps: not the held-out validation ones) in member
   order form the epoch sequence ``u_0 .. u_{N-1}``;
2. with ``W`` ranks, the sequence is padded to ``W ceil(N / W)`` items by repeating its first
   ones (as ``torch``'s ``DistributedSampler``: at most ``W - 1`` repeats, none when ``W``
   divides ``N``), and rank ``r`` takes the ``r``-th contiguous block of ``n = ceil(N / W)``
   positions; the block is split again into contiguous parts, one per DataLoader worker
   (sizes differing by at most one), so each reader opens only the shards overlapping its
   part and reads them sequentially (skipping, without reading their data, the members
   outside it);
3. each reader passes its items through a shuffle buffer of ``data.shuffle_buffer`` items
   (``B``): the first ``B`` fill it, then each new item replaces a uniformly drawn one,
   which is emitted; the rest leave in a random order.  Draws come from
   ``(s, e, rank, worker)``.  The buffer holds encoded files, about ``B`` times the mean
   file size per worker (VoxCeleb2, 16-bit WAV of 7.8 s on average: 250 MB for 1000);
4. the item at sequence position ``p`` is cropped (speed perturbation, crop start,
   augmentation: :meth:`spkpeft.data.crops.CropDataset.make_crop`) with a seed drawn from
   ``(s, e, p)``: an utterance's crop depends on neither the number of ranks nor workers;
5. each worker batches its own items (``data.batch_size``; its last batch may be smaller)
   and the DataLoader interleaves the workers' batches round robin (:func:`resume_plan`
   says how a resumed epoch continues that order).  Every rank holds the
   same number of items and splits them the same way, so every rank runs the same number
   of batches (DistributedDataParallel needs that).

Class-balanced batches (:class:`~spkpeft.data.crops.BalancedBatchSampler`) need random
access and cannot be drawn from sequential reads: with shards, classes appear in a batch in
proportion to their utterances (a random-crop epoch over the utterances, as WeSpeaker's
shard reader does), mixed by the random packing order, the shard order and the buffer.
Given the seed, the world size and ``data.num_workers``, the batches are fixed; a resumed
run skips the batches it already did (the skipped items are not decoded).  Changing the
number of workers or ranks changes the order and the batch composition, not the crops.
"""

from __future__ import annotations

import math
from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from spkpeft.data.augment import AugmentConfig
from spkpeft.data.crops import CropDataset
from spkpeft.errors import SpkpeftError
from spkpeft.io.audio import AudioFile
from spkpeft.io.shards import ShardSet, read_shard


def split_sizes(total: int, parts: int) -> list[int]:
    """``parts`` contiguous sizes summing to ``total``, the first ``total % parts`` one larger."""
    return [total // parts + (i < total % parts) for i in range(parts)]


def round_robin_order(counts: Sequence[int]) -> list[int]:
    """The worker of each batch when the DataLoader takes one batch from each worker in turn,
    skipping exhausted ones (``counts``: batches per worker)."""
    return [w for r in range(max(counts, default=0)) for w, count in enumerate(counts) if r < count]


def resume_plan(counts: Sequence[int], done: int) -> tuple[list[int], int]:
    """``(skips, first)``: how many of each worker's batches are among the first ``done`` of
    :func:`round_robin_order`, and the worker of batch ``done`` (0 when none is left).

    The DataLoader starts its round robin at its worker 0 again, so a resumed reader ``w``
    runs as DataLoader worker ``(w - first) mod K``: the order then continues where it stopped.
    """
    order = round_robin_order(counts)
    skips = [order[:done].count(w) for w in range(len(counts))]
    return skips, (order[done] if done < len(order) else 0)


class ShardedCrops(IterableDataset):
    """Training crops ``(float32 (S,), label)`` of ``items`` read from the shards (module docstring).

    ``items``: the task's ``(utt, path, label)`` training utterances; every one must be in a
    shard (the shards may hold more: the validation utterances are skipped).
    """

    def __init__(self, shards: ShardSet, items: Sequence[tuple[str, str, int]], crops: CropDataset,
                 batch_size: int, seed: int, buffer_size: int = 1000, rank: int = 0, world_size: int = 1,
                 num_workers: int = 0):
        self.shards = shards
        self.crops = crops
        self.label = {utt: label for utt, _, label in items}
        self.batch_size = batch_size
        self.seed = seed
        self.buffer_size = buffer_size
        self.rank, self.world_size = rank, world_size
        self.num_workers = num_workers
        self.epoch, self.start_batch = 0, 0
        packed = {u for utts in shards.utts for u in utts}
        missing = [utt for utt, _, _ in items if utt not in packed]
        if missing:
            raise SpkpeftError(f"{shards.root}: training utterance '{missing[0]}' is in no shard "
                               f"({len(missing)} missing); pack the training data directory again")
        self.per_rank = math.ceil(len(self.label) / world_size)

    # ---- the epoch's plan (no audio read) -------------------------------------------------
    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Select the epoch; ``start_batch`` skips this rank's first batches (resuming)."""
        self.epoch, self.start_batch = epoch, start_batch

    def worker_counts(self) -> list[int]:
        """Items of each worker of this rank (the same on every rank)."""
        return split_sizes(self.per_rank, max(1, self.num_workers))

    def batches_per_epoch(self) -> int:
        """Batches each rank runs in a whole epoch."""
        return sum(math.ceil(n / self.batch_size) for n in self.worker_counts())

    def __len__(self) -> int:
        """Batches left in this rank's epoch (after :meth:`set_epoch`'s ``start_batch``)."""
        return self.batches_per_epoch() - self.start_batch

    def epoch_sequence(self, epoch: int) -> list[tuple[int, str]]:
        """``(shard index, utt)`` of the epoch's training utterances, padded to ``W n`` items."""
        order = np.random.default_rng([self.seed, epoch, 17]).permutation(len(self.shards.paths))
        sequence = [(int(s), u) for s in order for u in self.shards.utts[s] if u in self.label]
        total = self.per_rank * self.world_size
        return sequence + sequence[:total - len(sequence)]

    def reader_span(self, worker: int, workers: int) -> tuple[int, int]:
        """``[start, stop)`` sequence positions read by ``worker`` of this rank."""
        sizes = split_sizes(self.per_rank, workers)
        start = self.rank * self.per_rank + sum(sizes[:worker])
        return start, start + sizes[worker]

    def crop_seed(self, epoch: int, position: int) -> int:
        """The crop seed of sequence position ``position``: drawn from ``(seed, epoch, position)``."""
        return int(np.random.SeedSequence([self.seed, epoch, position]).generate_state(1)[0] >> 1)

    # ---- reading ---------------------------------------------------------------------------
    def read_span(self, sequence: list[tuple[int, str]], start: int, stop: int) -> Iterator[tuple[int, str, bytes]]:
        """``(position, utt, audio bytes)`` of positions ``[start, stop)``, each shard read sequentially."""
        position = start
        while position < stop:
            shard = sequence[position][0]
            run = position
            while run < stop and sequence[run][0] == shard:
                run += 1
            wanted = {utt: p for p, (_, utt) in enumerate(sequence[position:run], position)}
            path = self.shards.paths[shard]
            found = 0
            for utt, _labels, audio in read_shard(path, keep=wanted.__contains__):
                found += 1
                yield wanted[utt], utt, audio
            if found != len(wanted):
                raise SpkpeftError(f"{path}: holds {found} of the {len(wanted)} planned utterances "
                                   f"(shard2utt disagrees with the shard; pack again)")
            position = run

    def shuffled(self, items: Iterator, rng: np.random.Generator) -> Iterator:
        """The shuffle buffer (module docstring, step 3)."""
        buffer: list = []
        for item in items:
            if len(buffer) < self.buffer_size:
                buffer.append(item)
                continue
            index = int(rng.integers(self.buffer_size))
            yield buffer[index]
            buffer[index] = item
        for index in rng.permutation(len(buffer)):
            yield buffer[int(index)]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, int]]:
        for _position, _utt, crop, label in self.iter_items():
            yield crop, label

    def iter_items(self) -> Iterator[tuple[int, str, torch.Tensor, int]]:
        """``(sequence position, utt, crop, label)`` of this reader's part of the epoch, in order."""
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        if workers != max(1, self.num_workers):
            raise SpkpeftError(f"ShardedCrops was set up for {self.num_workers} workers, runs with {workers}")
        epoch = self.epoch
        sequence = self.epoch_sequence(epoch)
        skips, first = resume_plan([math.ceil(n / self.batch_size) for n in self.worker_counts()], self.start_batch)
        worker = (worker + first) % workers  # the reader this DataLoader worker runs (resume_plan)
        start, stop = self.reader_span(worker, workers)
        rng = np.random.default_rng([self.seed, epoch, self.rank, worker, 23])
        skip = skips[worker] * self.batch_size
        for index, (position, utt, audio) in enumerate(self.shuffled(self.read_span(sequence, start, stop), rng)):
            if index < skip:
                continue
            origin = f"{self.shards.paths[sequence[position][0]]}:{utt}"
            audio_file = AudioFile(audio, origin, self.crops.sample_rate)
            yield (position, utt, *self.crops.make_crop(audio_file, utt, self.label[utt],
                                                        self.crop_seed(epoch, position)))


def sharded_crops(shards: ShardSet, items: Sequence[tuple[str, str, int]], n_classes: int, crop_seconds: float,
                  augment: AugmentConfig, speed_changes_label: bool, **kwargs) -> ShardedCrops:
    """:class:`ShardedCrops` cropping as the per-file :class:`~spkpeft.data.crops.CropDataset` does."""
    crops = CropDataset(items, n_classes, crop_seconds, augment, speed_changes_label=speed_changes_label)
    return ShardedCrops(shards, items, crops, **kwargs)

