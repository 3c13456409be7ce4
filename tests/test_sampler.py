"""Class-balanced batches (spkpeft.data.crops.BalancedBatchSampler): full batches with few
classes (two for countermeasures), distinct speakers with many, ranks splitting one list."""

from __future__ import annotations

from collections import Counter

import pytest

from spkpeft.data.crops import BalancedBatchSampler


@pytest.mark.parametrize("n_classes", [2, 5])
def test_few_classes_fill_the_batch_evenly(n_classes):
    labels = [0] * 210 + [1] * 90 + [c for c in range(2, n_classes) for _ in range(30)]
    sampler = BalancedBatchSampler(labels, batch_size=16, seed=3)
    batches = sampler.epoch_batches(0)
    assert len(batches) == -(-len(labels) // 16)
    for batch in batches:
        assert len(batch) == 16
        counts = Counter(labels[i] for i, _ in batch)
        assert set(counts) == set(range(n_classes)) and max(counts.values()) - min(counts.values()) <= 2


def test_many_speakers_give_distinct_speakers_per_batch():
    labels = [s for s in range(40) for _ in range(3)]
    for batch in BalancedBatchSampler(labels, batch_size=8, seed=0).epoch_batches(1):
        assert len(batch) == 8 and len({labels[i] for i, _ in batch}) == 8


def test_ranks_take_every_other_batch_of_one_list():
    labels = [0, 1] * 40
    whole = BalancedBatchSampler(labels, 8, seed=5).epoch_batches(2)
    for rank in (0, 1):
        sampler = BalancedBatchSampler(labels, 8, seed=5, rank=rank, world_size=2)
        sampler.set_epoch(2)
        assert list(sampler) == whole[rank::2]
