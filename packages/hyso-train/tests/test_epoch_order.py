"""Epoch order depends only on (seed, epoch); a resumed epoch continues where it stopped."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader, TensorDataset

from hyso.core.train.epoch_order import iterate_from, prepare_epoch


def _loader(n: int, batch: int, shuffle: bool = True, drop_last: bool = False) -> DataLoader:
    return DataLoader(
        TensorDataset(torch.arange(n)), batch_size=batch, shuffle=shuffle, drop_last=drop_last
    )


def _order(loader, skip: int = 0) -> list[list[int]]:
    return [b[0].tolist() for b in iterate_from(loader, skip)]


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 40),
    batch=st.integers(1, 7),
    seed=st.integers(0, 2**40),
    epoch=st.integers(0, 5),
    drop_last=st.booleans(),
    data=st.data(),
)
def test_skip_resumes_the_same_epoch_order(n, batch, seed, epoch, drop_last, data) -> None:
    loader = _loader(n, batch, drop_last=drop_last)
    prepare_epoch(loader, seed, epoch)
    full = _order(loader)
    skip = data.draw(st.integers(0, len(full)))
    other = _loader(n, batch, drop_last=drop_last)  # a new process would build a new loader
    prepare_epoch(other, seed, epoch)
    assert _order(other, skip) == full[skip:]
    if not drop_last:
        assert sorted(i for b in full for i in b) == list(range(n))


def test_order_changes_with_epoch_and_seed_but_not_with_global_rng() -> None:
    loader = _loader(50, 5)
    prepare_epoch(loader, 1, 0)
    torch.manual_seed(123)
    a = _order(loader)
    prepare_epoch(loader, 1, 0)
    torch.manual_seed(456)
    state = torch.get_rng_state()
    assert _order(loader) == a
    assert torch.equal(torch.get_rng_state(), state)  # iterating drew no global random number
    prepare_epoch(loader, 1, 1)
    assert _order(loader) != a
    prepare_epoch(loader, 2, 0)
    assert _order(loader) != a


def test_skipping_loads_no_skipped_sample() -> None:
    loaded = []

    class Spy(torch.utils.data.Dataset):
        def __len__(self):
            return 20

        def __getitem__(self, i):
            loaded.append(i)
            return i

    loader = DataLoader(Spy(), batch_size=4, shuffle=True)
    prepare_epoch(loader, 0, 0)
    rest = [b.tolist() for b in iterate_from(loader, 3)]
    assert len(rest) == 2 and sorted(loaded) == sorted(i for b in rest for i in b)


def test_plain_iterables_skip_by_consuming() -> None:
    batches = [[i] for i in range(6)]
    assert list(iterate_from(batches, 4)) == [[4], [5]]
