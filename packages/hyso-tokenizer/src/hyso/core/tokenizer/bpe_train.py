"""BPE training that reproduces HF ``tokenizers``' BpeTrainer merge for merge.

Words are counted once (regex pre-split over streamed chunks, optionally in
worker processes), then merges run on word types: pair counts are kept
incrementally, a pair -> words index says where to look, and a lazy max-heap
picks the next pair. Ties go to the pair with the lowest ids, and the heap
entries carry their own word sets, exactly as HF's trainer does. A long word
(a line of one character class without spaces) is a linked list that also
knows where each of its pairs sits, so merging a pair that occurs k times
costs O(k log k), not k times the word's length.
"""

from __future__ import annotations

import heapq
import itertools
import os
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

from .bpe_model import BPEModel, SpecialToken
from .bytes_map import HF_BYTE_ORDER
from .pretokenize import make_splitter, surrogate_error

__all__ = ["count_words", "learn_merges"]

CHUNK_BYTES = 1 << 20
LONG_WORD = 64  # words of more symbols than this keep the positions of their pairs
_SHIFT = 32


# ---------------------------------------------------------------- word counting


def count_words(
    sources: Iterable[str | os.PathLike[str]],
    pattern: str,
    normalizer: Callable[[str], str] | None,
    num_workers: int = 1,
) -> Counter[str]:
    """Count pre-tokenized pieces: ``str`` items are texts, path-likes are files.

    A text is one sequence (as HF's ``train_from_iterator``); a file is read in
    chunks cut at newlines and split line by line (as HF's ``train``). Texts are
    consumed as they come (a generator is never held whole): with ``num_workers``
    > 1, once they add up to more than ``CHUNK_BYTES`` they are counted in worker
    processes, a few chunks in flight at a time, so memory is bounded by the
    distinct pieces, not by the amount of text.
    """
    counts: Counter[str] = Counter()
    texts = _TextCounter(counts, pattern, normalizer, num_workers)
    try:
        for item in sources:
            if isinstance(item, os.PathLike):
                texts.flush()
                counts.update(_count_file(Path(item), pattern, normalizer, num_workers))
            elif isinstance(item, str):
                texts.add(item)
            else:
                raise TypeError(
                    "train() takes texts (str) and files (pathlib.Path); "
                    f"got an item of type {type(item).__name__}"
                )
        texts.flush()
        texts.drain(0)
    finally:
        texts.close()
    return counts


class _TextCounter:
    """Counts texts into ``counts``: in this process until the texts exceed one chunk
    (or with one worker), then chunk by chunk in ``num_workers`` processes."""

    def __init__(
        self,
        counts: Counter[str],
        pattern: str,
        normalizer: Callable[[str], str] | None,
        num_workers: int,
    ) -> None:
        self.counts = counts
        self.pattern = pattern
        self.normalizer = normalizer
        self.num_workers = num_workers
        self.split = make_splitter(pattern)
        self.chunk: list[str] = []
        self.size = 0
        self.pool: ProcessPoolExecutor | None = None
        self.futures: deque[Future[Counter[str]]] = deque()

    def add(self, text: str) -> None:
        if self.num_workers <= 1:
            _count_texts_into(self.counts, [text], self.split, self.normalizer)
            return
        self.chunk.append(text)
        self.size += len(text)
        if self.size >= CHUNK_BYTES:
            if self.pool is None:
                self.pool = ProcessPoolExecutor(max_workers=self.num_workers)
            self.futures.append(
                self.pool.submit(_count_texts, self.chunk, self.pattern, self.normalizer)
            )
            self.chunk, self.size = [], 0
            self.drain(2 * self.num_workers)

    def flush(self) -> None:
        """Count the texts held back (below one chunk) in this process."""
        _count_texts_into(self.counts, self.chunk, self.split, self.normalizer)
        self.chunk, self.size = [], 0

    def drain(self, limit: int) -> None:
        """Merge finished chunks, oldest first, until at most ``limit`` are in flight."""
        while len(self.futures) > limit:
            self.counts.update(self.futures.popleft().result())

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)


def _count_texts_into(
    counts: Counter[str],
    texts: list[str],
    split: Callable[[str], list[str]],
    normalizer: Callable[[str], str] | None,
) -> None:
    for text in texts:
        counts.update(split(normalizer(text) if normalizer is not None else text))


def _count_texts(
    texts: list[str], pattern: str, normalizer: Callable[[str], str] | None
) -> Counter[str]:
    """Worker: the piece counts of ``texts``, each text one sequence."""
    counts: Counter[str] = Counter()
    _count_texts_into(counts, texts, make_splitter(pattern), normalizer)
    return counts


def _file_ranges(path: Path, parts: int) -> list[tuple[int, int]]:
    """Split ``path`` into ``parts`` byte ranges, each ending just after a newline."""
    size = path.stat().st_size
    bounds = [0]
    with path.open("rb") as fh:
        for k in range(1, parts):
            fh.seek(max(bounds[-1], size * k // parts))
            fh.readline()
            pos = fh.tell()
            if pos >= size:
                break
            bounds.append(pos)
    bounds.append(size)
    return [(a, b) for a, b in itertools.pairwise(bounds) if b > a]


def _count_file(
    path: Path, pattern: str, normalizer: Callable[[str], str] | None, num_workers: int
) -> Counter[str]:
    if not path.is_file():
        raise ValueError(f"training file {str(path)!r} does not exist or is not a file")
    ranges = _file_ranges(path, max(1, num_workers))
    if len(ranges) <= 1:
        total: Counter[str] = Counter()
        for start, end in ranges:
            total.update(_count_range(str(path), start, end, pattern, normalizer))
        return total
    with ProcessPoolExecutor(max_workers=len(ranges)) as pool:
        futures = [
            pool.submit(_count_range, str(path), a, b, pattern, normalizer) for a, b in ranges
        ]
        results = [f.result() for f in futures]
    total = results[0]
    for other in results[1:]:
        total.update(other)
    return total


def _read_chunks(path: str, start: int, end: int) -> Iterator[str]:
    """Decoded text of ``path[start:end]`` in chunks that end at a newline."""
    with open(path, "rb") as fh:
        fh.seek(start)
        pos = start
        pending: list[bytes] = []  # blocks of a line not yet ended (joined once, not per block)
        waiting = 0
        while pos < end:
            block = fh.read(min(CHUNK_BYTES, end - pos))
            if not block:
                break
            pos += len(block)
            cut = block.rfind(b"\n") + 1 if pos < end else len(block)
            if cut == 0:
                pending.append(block)
                waiting += len(block)
                continue
            head = b"".join([*pending, block[:cut]])
            yield _decode(head, path, pos - len(block) - waiting)
            pending = [block[cut:]] if cut < len(block) else []
            waiting = len(block) - cut
        if pending:
            tail = b"".join(pending)
            yield _decode(tail, path, pos - len(tail))


def _decode(data: bytes, path: str, offset: int) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"training file {path!r} is not valid UTF-8 at byte {offset + exc.start}"
        ) from None


def _count_range(
    path: str, start: int, end: int, pattern: str, normalizer: Callable[[str], str] | None
) -> Counter[str]:
    findall = make_splitter(pattern, lines=True)
    counts: Counter[str] = Counter()
    for chunk in _read_chunks(path, start, end):
        if normalizer is not None:
            chunk = normalizer(chunk)
        counts.update(findall(chunk))
    return counts


# ---------------------------------------------------------------- merge learning


def learn_merges(
    word_counts: dict[str, int],
    vocab_size: int,
    specials: Sequence[tuple[str, str]] = (),
    min_frequency: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> BPEModel:
    """Learn merges from piece counts; ``specials`` (role, text) take the first ids.

    The 256 bytes take the next ids in HF's alphabet order; merges then add
    tokens until the vocabulary reaches ``vocab_size``.
    """
    first_id = len(specials)
    id_to_bytes: dict[int, bytes] = {}
    byte_id = [0] * 256
    for k, b in enumerate(HF_BYTE_ORDER):
        byte_id[b] = first_id + k
        id_to_bytes[first_id + k] = bytes([b])
    bytes_to_id = {v: k for k, v in id_to_bytes.items()}
    n_vocab = first_id + 256

    words, counts, pair_counts, where = _count_pairs(word_counts, byte_id)

    seq = 0
    heap: list[tuple[int, int, int, set[int]]] = []
    for key, pos in where.items():
        cnt = pair_counts[key]
        if cnt > 0:
            heap.append((-cnt, key, seq, pos))
            seq += 1
    heapq.heapify(heap)
    where = {}

    merges: list[tuple[int, int, int]] = []
    mask = (1 << _SHIFT) - 1
    heappush, heappop = heapq.heappush, heapq.heappop
    while n_vocab < vocab_size and heap:
        negc, key, _, pos = heappop(heap)
        cur = pair_counts[key]
        if -negc != cur:
            heappush(heap, (-cur, key, seq, pos))
            seq += 1
            continue
        if cur < 1 or min_frequency > cur:
            break
        a, b = key >> _SHIFT, key & mask
        token = id_to_bytes[a] + id_to_bytes[b]
        new = bytes_to_id.get(token)
        if new is None:
            new = n_vocab
            n_vocab += 1
            id_to_bytes[new] = token
            bytes_to_id[token] = new
        merges.append((a, b, new))
        _apply_merge(words, counts, pos, a, b, new, pair_counts, where)
        for k2, p2 in where.items():
            cnt = pair_counts[k2]
            if cnt > 0:
                heappush(heap, (-cnt, k2, seq, p2))
                seq += 1
        where = {}
        if progress is not None:
            progress(n_vocab, vocab_size)
    roles = [SpecialToken(role, text, i) for i, (role, text) in enumerate(specials)]
    return BPEModel(tuple(byte_id), tuple(merges), tuple(roles))


def _count_pairs(
    word_counts: dict[str, int], byte_id: list[int]
) -> tuple[list[list[int] | _LongWord], list[int], dict[int, int], dict[int, set[int]]]:
    """Words as byte ids with their counts, pair counts, and pair -> words holding it."""
    words: list[list[int] | _LongWord] = []
    counts: list[int] = []
    pair_counts: dict[int, int] = {}
    where: dict[int, set[int]] = {}
    for i, (piece, c) in enumerate(word_counts.items()):
        try:
            data = piece.encode("utf-8")
        except UnicodeEncodeError:
            raise surrogate_error(piece, "training text") from None
        w = [byte_id[b] for b in data]
        words.append(w if len(w) <= LONG_WORD else _LongWord(w))
        counts.append(c)
        for j in range(len(w) - 1):
            key = (w[j] << _SHIFT) | w[j + 1]
            pair_counts[key] = pair_counts.get(key, 0) + c
            s = where.get(key)
            if s is None:
                where[key] = {i}
            else:
                s.add(i)
    return words, counts, pair_counts, where


def _apply_merge(
    words: list[list[int] | _LongWord],
    counts: list[int],
    positions: Iterable[int],
    a: int,
    b: int,
    new: int,
    pair_counts: dict[int, int],
    where: dict[int, set[int]],
) -> None:
    """Merge (a, b) -> new left to right in each listed word, updating pair counts.

    Every adjacent pair of every word has a count entry, so decrements index
    directly; new pairs are recorded in ``where`` (pair -> words gaining it).
    """
    get = pair_counts.get
    wget = where.get
    for i in positions:
        w = words[i]
        try:
            j = w.index(a)
        except ValueError:  # a long word (an empty list itself), or a stale position
            if type(w) is _LongWord:
                w.merge(a, b, new, counts[i], i, pair_counts, where)
            continue
        c = counts[i]
        n = len(w)
        while True:
            if j + 1 < n and w[j + 1] == b:
                if j:
                    prev = w[j - 1]
                    pair_counts[(prev << _SHIFT) | a] -= c
                    k = (prev << _SHIFT) | new
                    pair_counts[k] = get(k, 0) + c
                    s = wget(k)
                    if s is None:
                        where[k] = {i}
                    else:
                        s.add(i)
                w[j] = new
                del w[j + 1]
                n -= 1
                if j + 1 < n:
                    nxt = w[j + 1]
                    pair_counts[(b << _SHIFT) | nxt] -= c
                    k = (new << _SHIFT) | nxt
                    pair_counts[k] = get(k, 0) + c
                    s = wget(k)
                    if s is None:
                        where[k] = {i}
                    else:
                        s.add(i)
            try:
                j = w.index(a, j + 1)
            except ValueError:
                break


def _gain(
    pair_counts: dict[int, int], where: dict[int, set[int]], key: int, c: int, i: int
) -> None:
    """Pair ``key`` gains ``c`` occurrences in word ``i``."""
    pair_counts[key] = pair_counts.get(key, 0) + c
    s = where.get(key)
    if s is None:
        where[key] = {i}
    else:
        s.add(i)


class _LongWord(list):  # type: ignore[type-arg]
    """A word as a linked list of symbols that knows where each of its pairs starts.

    It is an empty list, so the short-word merge's ``index`` finds nothing and
    hands it to :meth:`merge` at no cost to the common short words.

    Positions are the symbols' original indices, so they keep the word's order;
    a consumed symbol becomes -1. Merging visits only the pair's positions, left
    to right, as the plain word merge does.
    """

    __slots__ = ("nxt", "pos", "prv", "sym")

    def __init__(self, ids: list[int]) -> None:
        super().__init__()
        n = len(ids)
        self.sym = ids
        self.nxt = [*range(1, n), -1]
        self.prv = list(range(-1, n - 1))
        self.pos: dict[int, set[int]] = {}
        for j in range(n - 1):
            key = (ids[j] << _SHIFT) | ids[j + 1]
            spots = self.pos.get(key)
            if spots is None:
                self.pos[key] = {j}
            else:
                spots.add(j)

    def _move(self, old: int, old_at: int, key: int, at: int) -> None:
        """The pair ``old`` at ``old_at`` is gone; pair ``key`` now starts at ``at``."""
        spots = self.pos.get(old)
        if spots is not None:
            spots.discard(old_at)
        spots = self.pos.get(key)
        if spots is None:
            self.pos[key] = {at}
        else:
            spots.add(at)

    def merge(
        self,
        a: int,
        b: int,
        new: int,
        c: int,
        i: int,
        pair_counts: dict[int, int],
        where: dict[int, set[int]],
    ) -> None:
        """Merge (a, b) -> new left to right; update the counts as the list merge does."""
        spots = self.pos.pop((a << _SHIFT) | b, None)
        if not spots:
            return  # a stale position: the pair left this word earlier
        sym, nxt, prv = self.sym, self.nxt, self.prv
        for p in sorted(spots):
            q = nxt[p]
            if sym[p] != a or q < 0 or sym[q] != b:
                continue  # taken by the merge just left of it (as in "a a a")
            left = prv[p]
            if left >= 0:
                x = sym[left]
                pair_counts[(x << _SHIFT) | a] -= c
                _gain(pair_counts, where, (x << _SHIFT) | new, c, i)
                self._move((x << _SHIFT) | a, left, (x << _SHIFT) | new, left)
            sym[p] = new
            sym[q] = -1
            right = nxt[p] = nxt[q]
            if right >= 0:
                prv[right] = p
                y = sym[right]
                pair_counts[(b << _SHIFT) | y] -= c
                _gain(pair_counts, where, (new << _SHIFT) | y, c, i)
                self._move((b << _SHIFT) | y, q, (new << _SHIFT) | y, p)
