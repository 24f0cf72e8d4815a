"""Sharded token files: a tokenized corpus written shard by shard, read memory-mapped.

Layout of a shard folder::

    <dir>/index.json                 written last: format version, dtype, tokenizer hash,
                                     corpus fingerprint, per split its shards and totals
    <dir>/<split>/shard-00000.bin    token ids, uint16 (vocabulary <= 65536) or uint32
    <dir>/<split>/shard-00000.idx    uint64 token offset of each document's end
    <dir>/<split>/shard-00000.json   written after its two files: counts and SHA-256s

A split's documents go to its shards in stream order; a shard takes documents until it
holds ``shard_bytes`` bytes of text, so the shard of every document depends only on
the corpus. Each document's ids are followed by the end-of-document id. Every file is
written atomically (hyso-storage); a shard whose JSON index is present and matches its
files is complete. An interrupted writer resumes: complete shards are kept (their
documents are read past, not encoded), the others are written again.

Encoding runs in ``workers`` processes, each loading the tokenizer from its file, fed
batches of about ``BATCH_BYTES`` of text with a bounded number in flight, so memory
stays flat whatever the corpus size. numpy is imported when a function runs.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hyso.core.storage.atomic import atomic_write, atomic_write_json, clean_stale_temps

__all__ = [
    "BATCH_BYTES",
    "SHARD_BYTES",
    "SHARD_FORMAT_VERSION",
    "SPLITS",
    "ShardWriteReport",
    "ShardedTokens",
    "load_shards",
    "shard_dtype",
    "write_shards",
]

SHARD_FORMAT_VERSION = 1
SHARD_BYTES = 32 << 20
BATCH_BYTES = 1 << 20
SPLITS = ("train", "val")
_HASH_BLOCK = 1 << 22


def shard_dtype(vocab_size: int) -> str:
    """``"uint16"`` when every id fits in 16 bits, else ``"uint32"``."""
    return "uint16" if vocab_size <= 1 << 16 else "uint32"


@dataclass
class ShardWriteReport:
    """What :func:`write_shards` did."""

    written: int = 0
    kept: int = 0
    text_bytes: int = 0
    """Bytes of text encoded by this call (kept shards not counted)."""
    seconds: float = 0.0
    """Wall time of the call."""
    index: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------- reading


class ShardedTokens:
    """One split's shards as a single read-only 1-D token sequence.

    Slicing returns a numpy array read from the memory-mapped shards (a slice may span
    shards); nothing is loaded until it is sliced, so a process reads only the windows
    it asks for.
    """

    def __init__(self, files: list[tuple[Path, int]], dtype: str) -> None:
        import numpy as np

        self.files = files
        self.dtype = np.dtype(dtype)
        counts = [n for _, n in files]
        self.offsets = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]).astype(np.int64)
        self._maps: list[Any] = [None] * len(files)

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def _map(self, k: int) -> Any:
        import numpy as np

        m = self._maps[k]
        if m is None:
            path, n = self.files[k]
            m = self._maps[k] = np.memmap(path, dtype=self.dtype, mode="r", shape=(n,))
        return m

    def __getitem__(self, key: int | slice) -> Any:
        import numpy as np

        n = len(self)
        if isinstance(key, slice):
            start, stop, step = key.indices(n)
            if step != 1:
                raise ValueError("ShardedTokens slices take no step")
            return self._read(start, max(start, stop))
        i = int(key) + (n if int(key) < 0 else 0)
        if not 0 <= i < n:
            raise IndexError(f"token {key} out of range [0, {n})")
        return np.asarray(self._read(i, i + 1))[0]

    def _read(self, start: int, stop: int) -> Any:
        import numpy as np

        if start >= stop:
            return np.zeros(0, dtype=self.dtype)
        first = int(np.searchsorted(self.offsets, start, side="right")) - 1
        parts = []
        k = first
        while start < stop:
            base = int(self.offsets[k])
            end = min(stop, int(self.offsets[k + 1]))
            if end > start:
                parts.append(np.asarray(self._map(k)[start - base : end - base]))
            start = max(start, end)
            k += 1
        return parts[0].copy() if len(parts) == 1 else np.concatenate(parts)

    def doc_ends(self) -> Any:
        """Cumulative token offset of each document's end over the whole split (int64)."""
        import numpy as np

        ends = [np.zeros(0, dtype=np.int64)]
        for k, (path, _) in enumerate(self.files):
            idx = np.fromfile(path.with_suffix(".idx"), dtype="<u8").astype(np.int64)
            ends.append(idx + self.offsets[k])
        return np.concatenate(ends)

    def documents(self) -> Iterator[Any]:
        """Each document's ids (its EOS included), one array at a time."""
        start = 0
        for end in self.doc_ends().tolist():
            yield self[start:end]
            start = end

    def to_numpy(self) -> Any:
        """The whole split in memory (for tests and small corpora)."""
        return self[:]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_maps"] = [None] * len(self.files)  # reopened by the receiving process
        return state


def load_shards(directory: str | os.PathLike[str], verify: bool = True) -> dict[str, Any] | None:
    """The index of a complete shard folder with a :class:`ShardedTokens` per split under
    ``"tokens"``, or None when it is absent, of another format or damaged. ``verify``
    also checks every file's SHA-256 (read in blocks)."""
    root = Path(directory)
    try:
        index = json.loads((root / "index.json").read_text(encoding="utf-8"))
        if index.get("format_version") != SHARD_FORMAT_VERSION:
            return None
        tokens = {}
        for split in SPLITS:
            files = []
            for name in index["splits"][split]["shards"]:
                meta = _shard_meta(root / split, name, index["dtype"], verify)
                if meta is None:
                    return None
                files.append((root / split / f"{name}.bin", int(meta["tokens"])))
            tokens[split] = ShardedTokens(files, index["dtype"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return {**index, "tokens": tokens}


def _shard_meta(folder: Path, name: str, dtype: str, verify: bool) -> dict[str, Any] | None:
    """The JSON index of shard ``name`` when it matches its files, else None."""
    import numpy as np

    try:
        meta = json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
        if meta.get("format_version") != SHARD_FORMAT_VERSION or meta.get("dtype") != dtype:
            return None
        checks = (
            (folder / f"{name}.bin", int(meta["tokens"]) * np.dtype(dtype).itemsize, "bin"),
            (folder / f"{name}.idx", int(meta["docs"]) * 8, "idx"),
        )
        for path, size, kind in checks:
            if path.stat().st_size != size:
                return None
            if verify and _sha256_file(path) != meta[f"{kind}_sha256"]:
                return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return meta


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_HASH_BLOCK):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------- writing

_NUMPY_DTYPE = {"uint16": "<u2", "uint32": "<u4"}
_ENCODER: dict[str, Any] = {}  # the tokenizer of this process (a worker or the writer)


def _init_encoder(loader: Callable[[str], Any], path: str, eos_id: int, dtype: str) -> None:
    _ENCODER.update(tokenizer=loader(path), eos=eos_id, dtype=_NUMPY_DTYPE[dtype])


def _init_worker(parent: int, *init: Any) -> None:
    """A worker's start: exit when the writer dies (a SIGKILL leaves no one to stop us),
    then load the tokenizer."""

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, daemon=True, name="hyso-shards-watch").start()
    _init_encoder(*init)


def _encode(texts: list[str]) -> tuple[Any, Any]:
    """Ids of ``texts``, each followed by EOS, as one array, and each document's length."""
    import numpy as np

    tok, eos = _ENCODER["tokenizer"], _ENCODER["eos"]
    flat: list[int] = []
    lengths = []
    for ids in tok.encode_batch(texts):
        flat.extend(ids)
        flat.append(eos)
        lengths.append(len(ids) + 1)
    return np.array(flat, dtype=_ENCODER["dtype"]), np.array(lengths, dtype=np.int64)


class _Done:
    """A finished result with the interface of a Future (encoding in this process)."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def result(self) -> Any:
        return self.value


@dataclass
class _Split:
    """The open shard of one split while writing."""

    shard: int = 0
    filled: int = 0  # text bytes of the open shard
    keep: bool = False  # the open shard is complete already
    batch: list[str] = field(default_factory=list)
    batch_bytes: int = 0
    parts: list[tuple[Any, Any]] = field(default_factory=list)


class _ShardWriter:
    """Turns a document stream into shards; see :func:`write_shards`."""

    def __init__(self, root: Path, dtype: str, shard_bytes: int, pool: Any, window: int) -> None:
        self.root = root
        self.dtype = dtype
        self.shard_bytes = shard_bytes
        self.pool = pool
        self.window = window
        self.splits = {s: _Split() for s in SPLITS}
        self.queue: collections.deque[tuple[Any, ...]] = collections.deque()
        self.in_flight = 0
        self.metas: dict[str, dict[int, dict[str, Any]]] = {s: {} for s in SPLITS}
        self.report = ShardWriteReport()
        self.log: Callable[[str], None] = lambda _: None

    def add(self, split: str, text: str, nbytes: int) -> None:
        """Route one document to its shard (and its batch, unless the shard is kept)."""
        st = self.splits[split]
        if st.filled and st.filled >= self.shard_bytes:
            self._close(split)
            st.shard += 1
            st.filled = 0
        if st.filled == 0:
            st.keep = self._kept(split, st.shard)
        st.filled += nbytes
        if st.keep:
            return
        st.batch.append(text)
        st.batch_bytes += nbytes
        self.report.text_bytes += nbytes
        if st.batch_bytes >= BATCH_BYTES:
            self._submit(split)

    def finish(self) -> None:
        """Close the last shard of each split and wait for every write."""
        for split in SPLITS:
            if self.splits[split].filled:
                self._close(split)
        self._drain(0)

    def _kept(self, split: str, k: int) -> bool:
        meta = _shard_meta(self.root / split, _name(k), self.dtype, verify=True)
        if meta is None:
            return False
        self.metas[split][k] = meta
        self.report.kept += 1
        return True

    def _submit(self, split: str) -> None:
        st = self.splits[split]
        if not st.batch:
            return
        texts, st.batch, st.batch_bytes = st.batch, [], 0
        fut = _Done(_encode(texts)) if self.pool is None else self.pool.submit(_encode, texts)
        self.queue.append(("batch", split, fut))
        self.in_flight += 1
        self._drain(self.window)

    def _close(self, split: str) -> None:
        st = self.splits[split]
        if not st.keep:
            self._submit(split)
            self.queue.append(("close", split, st.shard, st.filled))

    def _drain(self, limit: int) -> None:
        """Handle queued items in order until at most ``limit`` batches are in flight."""
        while self.queue and (self.in_flight > limit or self.queue[0][0] == "close"):
            item = self.queue.popleft()
            if item[0] == "batch":
                self.in_flight -= 1
                self.splits[item[1]].parts.append(item[2].result())
            else:
                _, split, k, text_bytes = item
                st = self.splits[split]
                parts, st.parts = st.parts, []
                meta = _write_shard(self.root / split, _name(k), parts, self.dtype, text_bytes)
                self.metas[split][k] = meta
                self.report.written += 1
                self.log(f"wrote {split}/{_name(k)}: {meta['tokens']:,} tokens")


def _name(k: int) -> str:
    return f"shard-{k:05d}"


def _write_shard(
    folder: Path, name: str, parts: list[tuple[Any, Any]], dtype: str, text_bytes: int
) -> dict[str, Any]:
    """Write one shard's ``.bin`` and ``.idx`` atomically, then its JSON index."""
    import numpy as np

    tok_hash = hashlib.sha256()

    def write_tokens(fh: Any) -> None:
        for tokens, _ in parts:
            data = memoryview(np.ascontiguousarray(tokens)).cast("B")
            tok_hash.update(data)
            fh.write(data)

    lengths = np.concatenate([n for _, n in parts]) if parts else np.zeros(0, np.int64)
    ends = np.cumsum(lengths, dtype=np.int64).astype("<u8").tobytes()
    atomic_write(folder / f"{name}.bin", write_tokens)
    atomic_write(folder / f"{name}.idx", lambda fh: fh.write(ends))
    meta = {
        "format_version": SHARD_FORMAT_VERSION,
        "dtype": dtype,
        "tokens": int(lengths.sum()),
        "docs": int(lengths.size),
        "text_bytes": text_bytes,
        "bin_sha256": tok_hash.hexdigest(),
        "idx_sha256": hashlib.sha256(ends).hexdigest(),
    }
    atomic_write_json(folder / f"{name}.json", meta)
    return meta


def write_shards(
    directory: str | os.PathLike[str],
    documents: Iterable[tuple[str, str, int]],
    *,
    tokenizer_path: str | os.PathLike[str],
    tokenizer_loader: Callable[[str], Any],
    vocab_size: int,
    eos_id: int,
    header: dict[str, Any],
    shard_bytes: int = SHARD_BYTES,
    workers: int = 1,
    log: Callable[[str], None] | None = None,
) -> ShardWriteReport:
    """Encode ``documents`` (``(split, text, utf8_bytes)``, split "train" or "val") into
    the shard folder ``directory`` and write its ``index.json`` last.

    ``tokenizer_loader(tokenizer_path)`` gives the tokenizer in each worker process
    (``workers`` > 1) or in this one. ``header`` (tokenizer hash, corpus fingerprint ...)
    goes into the index as it is. Shards complete from an earlier, interrupted call are
    kept; a complete folder is left as it is (``written == 0``).
    """
    start = time.perf_counter()
    root = Path(directory)
    if shard_bytes < 1:
        raise ValueError(f"shard_bytes must be >= 1, got {shard_bytes}")
    dtype = shard_dtype(vocab_size)
    for split in SPLITS:
        (root / split).mkdir(parents=True, exist_ok=True)
        clean_stale_temps(root / split)  # temp files of a writer that was killed
    clean_stale_temps(root)
    init = (tokenizer_loader, os.fspath(tokenizer_path), eos_id, dtype)
    pool = None
    if workers > 1:
        pool = ProcessPoolExecutor(
            max_workers=workers, initializer=_init_worker, initargs=(os.getpid(), *init)
        )
    else:
        _init_encoder(*init)
    writer = _ShardWriter(root, dtype, shard_bytes, pool, window=2 * max(1, workers))
    if log is not None:
        writer.log = log
    try:
        for split, text, nbytes in documents:
            writer.add(split, text, nbytes)
        writer.finish()
    except BrokenProcessPool:
        raise ChildProcessError(
            f"shards: an encoding worker process died (killed, or out of memory) after "
            f"{writer.report.written} shard(s) were written to {root}; run again to "
            "resume: complete shards are kept"
        ) from None
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        _ENCODER.clear()
    index = _index(header, dtype, vocab_size, eos_id, shard_bytes, writer.metas)
    atomic_write_json(root / "index.json", index)
    writer.report.index = index
    writer.report.seconds = time.perf_counter() - start
    return writer.report


def _index(
    header: dict[str, Any],
    dtype: str,
    vocab_size: int,
    eos_id: int,
    shard_bytes: int,
    metas: dict[str, dict[int, dict[str, Any]]],
) -> dict[str, Any]:
    splits = {}
    for split in SPLITS:
        shards = [metas[split][k] for k in sorted(metas[split])]
        splits[split] = {
            "shards": [_name(k) for k in sorted(metas[split])],
            "tokens": sum(m["tokens"] for m in shards),
            "docs": sum(m["docs"] for m in shards),
            "text_bytes": sum(m["text_bytes"] for m in shards),
            "sha256": [m["bin_sha256"] for m in shards],
        }
    return {
        "format_version": SHARD_FORMAT_VERSION,
        **header,
        "dtype": dtype,
        "vocab_size": vocab_size,
        "eos_id": eos_id,
        "shard_bytes": shard_bytes,
        "splits": splits,
    }
