"""An on-disk cache of tokenized splits as memory-mapped arrays (numpy).

Entries are keyed by the corpus fingerprint and the tokenizer's hash, so a changed
corpus or tokenizer never reads stale tokens. Each entry is one ``.bin`` file per
split plus a JSON index written last (format version, dtype, token counts, SHA-256
of each file); every file is written atomically. An entry whose index is missing,
of another format version, or whose files do not match their recorded size or hash
is treated as absent and rebuilt. Deleting the cache folder is always safe.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hyso.core.storage.atomic import atomic_write_bytes

__all__ = ["TOKEN_CACHE_FORMAT_VERSION", "TokenCache", "cache_key"]

TOKEN_CACHE_FORMAT_VERSION = 1


def cache_key(corpus_digest: str, tokenizer_digest: str) -> str:
    """The entry name for a corpus and tokenizer pair."""
    raw = f"v{TOKEN_CACHE_FORMAT_VERSION}\0{corpus_digest}\0{tokenizer_digest}".encode()
    return hashlib.sha256(raw).hexdigest()[:32]


class TokenCache:
    """Tokenized splits under ``directory``; ``get_or_build`` is the usual entry point."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def index_path(self, key: str) -> Path:
        """Where the JSON index of ``key`` lives."""
        return self.directory / f"{key}.json"

    def load(self, key: str) -> dict[str, Any] | None:
        """The memory-mapped splits of ``key`` (read-only), or None if absent or damaged."""
        import numpy as np

        try:
            index = json.loads(self.index_path(key).read_text(encoding="utf-8"))
            if index.get("format_version") != TOKEN_CACHE_FORMAT_VERSION or index["key"] != key:
                return None
            dtype = np.dtype(index["dtype"])
            out = {}
            for split, info in index["splits"].items():
                path = self.directory / info["file"]
                data = path.read_bytes()
                if len(data) != int(info["count"]) * dtype.itemsize:
                    return None
                if hashlib.sha256(data).hexdigest() != info["sha256"]:
                    return None
                if info["count"] == 0:
                    out[split] = np.zeros(0, dtype=dtype)
                else:
                    out[split] = np.memmap(path, dtype=dtype, mode="r")
            return out
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def store(self, key: str, splits: Mapping[str, Sequence[int]], vocab_size: int) -> None:
        """Write ``splits`` (token id sequences) under ``key``, atomically per file."""
        import numpy as np

        dtype = np.dtype(np.uint16 if vocab_size <= 1 << 16 else np.uint32)
        self.directory.mkdir(parents=True, exist_ok=True)
        index: dict[str, Any] = {
            "format_version": TOKEN_CACHE_FORMAT_VERSION,
            "key": key,
            "dtype": dtype.str,
            "vocab_size": vocab_size,
            "splits": {},
        }
        for split, ids in splits.items():
            arr = np.asarray(ids, dtype=np.int64)
            if arr.size and (arr.min() < 0 or arr.max() >= vocab_size):
                raise ValueError(
                    f"token cache: split {split!r} has ids outside [0, {vocab_size}) "
                    f"(min {arr.min()}, max {arr.max()})"
                )
            data = arr.astype(dtype).tobytes()
            name = f"{key}.{split}.bin"
            atomic_write_bytes(self.directory / name, data)
            index["splits"][split] = {
                "file": name,
                "count": int(arr.size),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        payload = json.dumps(index, indent=2, sort_keys=True).encode("utf-8")
        atomic_write_bytes(self.index_path(key), payload)

    def get_or_build(
        self,
        key: str,
        build: Callable[[], Mapping[str, Sequence[int]]],
        vocab_size: int,
    ) -> tuple[dict[str, Any], bool]:
        """The cached splits of ``key`` and True, or build, store and load them and False."""
        cached = self.load(key)
        if cached is not None:
            return cached, True
        self.store(key, build(), vocab_size)
        loaded = self.load(key)
        if loaded is None:  # pragma: no cover - only if the disk lies to us
            raise OSError(f"token cache: entry {key} in {self.directory} unreadable after write")
        return loaded, False
