"""A bounded word cache: two generations, an approximation of LRU.

Lookups hit a plain dict (the young generation). When it fills, its entries
become the old generation and the previous old ones are dropped; an old entry
that is used again moves back to the young one. At most ``capacity`` entries
are held, and entries not used for a whole generation are the ones evicted.

The young generation is a dict whose missing keys are computed: ``lookup`` is
its ``__getitem__``, so a hit costs one dict lookup in C (``map(lookup,
pieces)`` runs without a Python call per piece) and only a miss runs Python.
The generation turns over in place, so a bound ``lookup`` stays valid.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

__all__ = ["WordCache"]

Compute = Callable[[Any], tuple[int, ...]]


def _no_compute(piece: Any) -> tuple[int, ...]:
    raise KeyError(piece)


class _Young(dict):  # type: ignore[type-arg]
    """The young generation: ``self[piece]`` computes and remembers a missing piece."""

    __slots__ = ("owner",)

    def __missing__(self, piece: Hashable) -> tuple[int, ...]:
        return self.owner.miss(piece)


class WordCache:
    """Map piece -> token ids with at most ``capacity`` entries (0 disables caching).

    ``compute(piece)`` gives the ids of a piece the cache lacks.
    """

    def __init__(self, capacity: int, compute: Compute = _no_compute) -> None:
        if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 0:
            raise ValueError(f"cache_size must be a non-negative int, got {capacity!r}")
        self.capacity = capacity
        self.compute = compute
        self._half = max(1, capacity // 2)
        # Special-token markers (int keys) live in every generation and never count.
        self.pinned: dict[Hashable, tuple[int, ...]] = {}
        self.young = _Young()
        self.young.owner = self
        self.old: dict[Hashable, tuple[int, ...]] = {}
        self.lookup: Callable[[Hashable], tuple[int, ...]] = self.young.__getitem__

    def __len__(self) -> int:
        return len(self.young) + len(self.old) - len(self.pinned)

    def pin(self, entries: dict[Hashable, tuple[int, ...]]) -> None:
        """Keep ``entries`` (special-token markers) in the cache for good."""
        self.pinned = dict(entries)
        self.young.update(self.pinned)

    def __contains__(self, piece: object) -> bool:
        return dict.__contains__(self.young, piece) or piece in self.old

    def clear(self) -> None:
        """Forget every entry."""
        self.young.clear()
        self.young.update(self.pinned)
        self.old = {}

    def miss(self, piece: Hashable) -> tuple[int, ...]:
        """The ids of a piece the young generation lacks: from the old one, or computed."""
        ids = self.old.pop(piece, None)
        if ids is None:
            ids = self.compute(piece)
            if not self.capacity:
                return ids
        young = self.young
        if len(young) - len(self.pinned) >= self._half:  # turn over, in place
            self.old = dict(young) if self.capacity >= 2 else {}
            for key in self.pinned:
                self.old.pop(key, None)
            young.clear()
            young.update(self.pinned)
        young[piece] = ids
        return ids
