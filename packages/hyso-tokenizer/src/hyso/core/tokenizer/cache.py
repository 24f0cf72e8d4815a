"""A bounded word cache: two generations, an approximation of LRU.

Lookups hit a plain dict (the young generation). When it fills, it becomes the
old generation and the previous old one is dropped; an old entry that is used
again moves back to the young one. At most ``capacity`` entries are held, and
entries not used for a whole generation are the ones evicted.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import Any

__all__ = ["WordCache"]


class WordCache:
    """Map piece -> token ids with at most ``capacity`` entries (0 disables caching)."""

    def __init__(self, capacity: int) -> None:
        if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 0:
            raise ValueError(f"cache_size must be a non-negative int, got {capacity!r}")
        self.capacity = capacity
        self._half = max(1, capacity // 2)
        # Special-token markers (int keys) live in every generation and never count.
        self.pinned: dict[Hashable, tuple[int, ...]] = {}
        self.young: dict[Hashable, tuple[int, ...]] = {}
        self.old: dict[Hashable, tuple[int, ...]] = {}

    def __len__(self) -> int:
        return len(self.young) + len(self.old) - len(self.pinned)

    def pin(self, entries: dict[Hashable, tuple[int, ...]]) -> None:
        """Keep ``entries`` (special-token markers) in the cache for good."""
        self.pinned = dict(entries)
        self.young.update(self.pinned)

    def room(self) -> int:
        """How many entries fit into the young generation before it turns over."""
        return self._half - (len(self.young) - len(self.pinned))

    def __contains__(self, piece: object) -> bool:
        return piece in self.young or piece in self.old

    def clear(self) -> None:
        """Forget every entry."""
        self.young = dict(self.pinned)
        self.old = {}

    def get(self, piece: Hashable) -> tuple[int, ...] | None:
        """The cached ids of ``piece`` (refreshing it), or None."""
        ids = self.young.get(piece)
        if ids is not None:
            return ids
        ids = self.old.pop(piece, None)
        if ids is not None:
            self._put(piece, ids)
        return ids

    def put(self, piece: Hashable, ids: tuple[int, ...]) -> None:
        """Remember ``ids`` for ``piece``."""
        if self.capacity:
            self.old.pop(piece, None)
            self._put(piece, ids)

    def _put(self, piece: Hashable, ids: tuple[int, ...]) -> None:
        if len(self.young) - len(self.pinned) >= self._half:
            self.old = self.young if self.capacity >= 2 else {}
            for key in self.pinned:
                self.old.pop(key, None)
            self.young = dict(self.pinned)
        self.young[piece] = ids

    def resolve(
        self, pieces: Iterable[Hashable], compute: Callable[[Any], tuple[int, ...]]
    ) -> dict[Hashable, tuple[int, ...]]:
        """A dict covering every distinct piece, filling the cache with misses."""
        local: dict[Hashable, tuple[int, ...]] = {}
        get = self.get
        put = self.put
        for piece in pieces:
            ids = get(piece)
            if ids is None:
                ids = compute(piece)
                put(piece, ids)
            local[piece] = ids
        return local
