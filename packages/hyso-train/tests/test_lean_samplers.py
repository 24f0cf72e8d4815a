"""The lean samplers give torch's order exactly, without a Python list of every index."""

from __future__ import annotations

import tracemalloc

import pytest
import torch
from torch.utils.data import DistributedSampler, RandomSampler

from hyso.core.train.epoch_order import LeanDistributedSampler, LeanRandomSampler


@pytest.mark.parametrize("n", [1, 7, 40_000])
@pytest.mark.parametrize("num_samples", [None, 3, 90_001])
def test_random_order_equals_torch(n: int, num_samples: int | None) -> None:
    ours = LeanRandomSampler(range(n), num_samples=num_samples, generator=torch.Generator())
    ref = RandomSampler(range(n), num_samples=num_samples, generator=torch.Generator())
    for seed in (0, 5):
        ours.generator.manual_seed(seed)  # type: ignore[union-attr]
        ref.generator.manual_seed(seed)  # type: ignore[union-attr]
        assert list(ours) == list(ref)
    torch.manual_seed(3)
    unseeded = list(LeanRandomSampler(range(n)))
    torch.manual_seed(3)
    assert unseeded == list(RandomSampler(range(n)))


@pytest.mark.parametrize("n", [1, 2, 10, 33_333])
@pytest.mark.parametrize("world", [1, 3, 4])
@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("shuffle", [False, True])
def test_distributed_order_equals_torch(n: int, world: int, drop_last: bool, shuffle: bool) -> None:
    if drop_last and n < world:
        return  # torch gives such ranks nothing either way
    for rank in range(world):
        kw = dict(num_replicas=world, rank=rank, shuffle=shuffle, seed=7, drop_last=drop_last)
        ours, ref = LeanDistributedSampler(range(n), **kw), DistributedSampler(range(n), **kw)
        for epoch in (0, 2):
            ours.set_epoch(epoch)
            ref.set_epoch(epoch)
            assert list(ours) == list(ref)
            assert len(ours) == len(ref)


def test_no_list_of_every_index_is_built() -> None:
    n = 400_000
    tracemalloc.start()
    try:
        for _ in LeanRandomSampler(range(n), generator=torch.Generator().manual_seed(0)):
            pass
        _, lean = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for _ in RandomSampler(range(n), generator=torch.Generator().manual_seed(0)):
            pass
        _, listed = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert listed > 3_000_000  # torch's list: 8 bytes a slot at least
    assert lean < listed / 10
