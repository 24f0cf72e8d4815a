"""The one source of a byte-level BPE tokenizer, and every table derived from it.

:class:`BPEModel` holds what defines the tokenizer: the id of each of the 256
bytes, the merges in rank order and the special tokens. The bytes of every
other token follow from the merges (a merge's token is its two parts joined),
as in minbpe. :class:`BPETables` derives every lookup table encoding and
decoding use, in one place, from a model.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from itertools import chain, repeat
from operator import lshift, or_
from types import MappingProxyType
from typing import NamedTuple, TypeVar

import regex

__all__ = [
    "LONG_PIECE",
    "MAX_UNUSED_IDS",
    "NO_MERGE",
    "BPEModel",
    "BPETables",
    "SpecialToken",
    "merge_heap",
]

NO_MERGE = 1 << 62
# Pieces of more bytes than this are merged with a heap (O(n log n)); shorter ones
# with the plain loop, which is faster there but quadratic in the piece length.
LONG_PIECE = 48
# The most unused ids a vocabulary read from a file may declare (cl100k_base has 16,
# o200k_base 19): a bound on the tables an id in a file can make us allocate.
MAX_UNUSED_IDS = 65_536
_T = TypeVar("_T")
_EIGHTS = repeat(8)  # shifts a byte into the high half of a byte pair's index


class SpecialToken(NamedTuple):
    """A special token: its role (``eos``, ``pad`` or any name), its text and its id.

    ``special=False`` makes it an added token of HF's kind: always matched in text
    (not only when allowed), and kept by ``decode(skip_special_tokens=True)``.
    """

    role: str
    text: str
    id: int
    special: bool = True


@dataclass(frozen=True)
class BPEModel:
    """Byte ids, merges and special tokens; checked when built.

    ``byte_ids[b]`` is the id of byte ``b``; ``merges`` are ``(left id, right id,
    new id)`` in rank order, each part built before it is used. Ids run from 0
    to ``vocab_size - 1``, special tokens included; a gap is allowed only where
    ``unused`` declares it (tiktoken's cl100k_base has 16): such ids are never
    produced, and decoding one is an error.

    ``template`` is ``(ids before, ids after)`` the text when encoding with
    ``add_special_tokens=True`` (HF's post-processor); None means BOS and EOS,
    when they exist. ``ignore_merges`` looks a whole piece up in the vocabulary
    before merging (HF's BPE option of that name, and what tiktoken does).
    ``aliases`` are ``(role, id)`` pairs giving a special token a second role
    (Qwen2's ``pad`` is its ``eos`` token).
    """

    byte_ids: tuple[int, ...]
    merges: tuple[tuple[int, int, int], ...] = ()
    specials: tuple[SpecialToken, ...] = ()
    unused: tuple[int, ...] = ()
    template: tuple[tuple[int, ...], tuple[int, ...]] | None = None
    ignore_merges: bool = False
    aliases: tuple[tuple[str, int], ...] = ()
    token_bytes: Mapping[int, bytes] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "byte_ids", tuple(_check_int(i, "byte id") for i in self.byte_ids))
        set_(self, "merges", _check_merges(self.merges))
        set_(self, "specials", tuple(_check_special(s) for s in self.specials))
        set_(self, "unused", tuple(sorted(_check_int(i, "unused id") for i in self.unused)))
        if not isinstance(self.ignore_merges, bool):
            raise ValueError(f"ignore_merges must be a bool, got {self.ignore_merges!r}")
        token_bytes = _build_token_bytes(self.byte_ids, self.merges)
        set_(self, "token_bytes", MappingProxyType(token_bytes))  # read-only: derived
        _check_specials(self.specials, self.token_bytes, self.unused)
        set_(self, "template", _check_template(self.template, self.vocab_size, self.unused))
        set_(self, "aliases", _check_aliases(self.aliases, self.specials))

    @property
    def vocab_size(self) -> int:
        """Number of ids: ordinary tokens, special tokens and unused ids."""
        return len(self.token_bytes) + len(self.specials) + len(self.unused)

    def role_ids(self) -> dict[str, int]:
        """Role -> id of every special token, aliases included."""
        return {**{s.role: s.id for s in self.specials}, **dict(self.aliases)}

    def template_ids(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The ids ``add_special_tokens=True`` puts before and after the text: the
        template, or else BOS and EOS where those roles exist."""
        if self.template is not None:
            return self.template
        roles = self.role_ids()
        return (
            tuple(roles[r] for r in ("bos",) if r in roles),
            tuple(roles[r] for r in ("eos",) if r in roles),
        )


def _check_int(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{what} must be a non-negative int, got {value!r}")
    return value


def _check_merges(merges: Iterable[object]) -> tuple[tuple[int, int, int], ...]:
    out = tuple(tuple(m) if isinstance(m, list) else m for m in merges)
    if all(type(m) is tuple and len(m) == 3 for m in out):
        flat = list(chain.from_iterable(out))  # type: ignore[arg-type]
        if set(map(type, flat)) <= {int} and (not flat or min(flat) >= 0):
            return out  # type: ignore[return-value]
    for merge in out:  # the slow path: find the culprit for the message
        if not isinstance(merge, tuple) or len(merge) != 3:
            raise ValueError(f"a merge is (left id, right id, new id), got {merge!r}")
        for i in merge:
            _check_int(i, "merge id")
    return tuple((int(a), int(b), int(n)) for a, b, n in out)  # type: ignore[misc]


def _check_special(token: object) -> SpecialToken:
    if not isinstance(token, (tuple, list)) or len(token) not in (3, 4):
        raise ValueError(f"a special token is (role, text, id[, special]), got {token!r}")
    role, text, token_id = token[:3]
    special = token[3] if len(token) == 4 else True
    if not isinstance(special, bool):
        raise ValueError(f"the special flag of {text!r} must be a bool, got {special!r}")
    if not isinstance(role, str) or not role:
        raise ValueError(f"special token role must be a non-empty str, got {role!r}")
    if not isinstance(text, str) or not text:
        raise ValueError(f"special token {role!r} must be a non-empty str, got {text!r}")
    return SpecialToken(role, text, _check_int(token_id, f"id of special token {text!r}"), special)


def _check_aliases(
    aliases: Iterable[object], specials: tuple[SpecialToken, ...]
) -> tuple[tuple[str, int], ...]:
    roles = {s.role for s in specials}
    ids = {s.id for s in specials}
    out = []
    for alias in aliases:
        if not isinstance(alias, (tuple, list)) or len(alias) != 2:
            raise ValueError(f"an alias is (role, id), got {alias!r}")
        role, token_id = alias
        if not isinstance(role, str) or not role or role in roles:
            raise ValueError(f"alias role {role!r} must be a new non-empty str")
        if token_id not in ids or isinstance(token_id, bool):
            raise ValueError(f"alias {role!r} names id {token_id!r}, which is no special token")
        roles.add(role)
        out.append((role, token_id))
    return tuple(out)


def _check_template(
    template: object, size: int, unused: tuple[int, ...]
) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    if template is None:
        return None
    if not isinstance(template, (tuple, list)) or len(template) != 2:
        raise ValueError(f"template must be (ids before, ids after) or None, got {template!r}")
    out = (tuple(template[0]), tuple(template[1]))
    for token_id in chain(*out):
        _check_int(token_id, "template id")
        if token_id >= size or token_id in unused:
            raise ValueError(f"template id {token_id} is not a token of this vocabulary")
    return out


def _build_token_bytes(
    byte_ids: tuple[int, ...], merges: tuple[tuple[int, int, int], ...]
) -> dict[int, bytes]:
    """The bytes of every ordinary token: the 256 bytes, then one token per merge."""
    if len(byte_ids) != 256 or len(set(byte_ids)) != 256:
        raise ValueError(f"byte_ids must hold 256 distinct ids, got {len(set(byte_ids))}")
    out = {i: bytes([b]) for b, i in enumerate(byte_ids)}
    for rank, (a, b, new) in enumerate(merges):
        if a not in out or b not in out:
            missing = a if a not in out else b
            raise ValueError(
                f"merge {rank} ({a}, {b}) -> {new} uses id {missing} before any merge builds it"
            )
        joined = out[a] + out[b]
        old = out.setdefault(new, joined)
        if old != joined:
            raise ValueError(
                f"merge ({a}, {b}) -> {new} does not concatenate: "
                f"{out[a]!r} + {out[b]!r} != {old!r}"
            )
    if len(merges) != len({(a, b) for a, b, _ in merges}):
        seen: dict[tuple[int, int], int] = {}
        for rank, (a, b, _) in enumerate(merges):
            first = seen.setdefault((a, b), rank)
            if first != rank:
                raise ValueError(f"merges {first} and {rank} both merge the pair ({a}, {b})")
    if len(set(out.values())) != len(out):
        owner: dict[bytes, int] = {}
        for i, data in out.items():
            other = owner.setdefault(data, i)
            if other != i:
                raise ValueError(f"ids {other} and {i} are both the token {data!r}")
    return out


def _check_specials(
    specials: tuple[SpecialToken, ...], token_bytes: Mapping[int, bytes], unused: tuple[int, ...]
) -> None:
    roles: set[str] = set()
    texts: dict[str, int] = {}
    ids: dict[int, str] = {}
    for role, text, token_id, _ in specials:
        if role in roles:
            raise ValueError(f"special token role {role!r} is given twice")
        if text in texts:
            raise ValueError(f"special token text {text!r} is given twice")
        if token_id in ids:
            raise ValueError(f"special tokens {text!r} and {ids[token_id]!r} share id {token_id}")
        roles.add(role)
        texts[text] = token_id
        ids[token_id] = text
    clash = sorted(set(ids) & set(token_bytes))
    if clash:
        raise ValueError(f"ids {clash[:5]} are both special and ordinary tokens")
    used = sorted((set(ids) | set(token_bytes)) & set(unused))
    if used or len(set(unused)) != len(unused):
        what = f"id {used[0]} is declared unused but is a token" if used else "repeated ids"
        raise ValueError(f"unused ids: {what}")
    size = len(token_bytes) + len(ids) + len(unused)
    top = max(chain(token_bytes, ids, unused), default=-1)
    if top >= size:  # count the gaps without a list as long as the largest id
        present = sorted(chain(token_bytes, ids, unused))
        first = next((k for k, i in enumerate(present) if i != k), len(present))
        raise ValueError(
            f"the vocabulary has {top + 1 - size} unused ids (first {first}); the largest id "
            f"is {top} with {size} tokens, and ids must run from 0 to vocab_size-1 "
            "(or be declared unused)"
        )


class BPETables:
    """Every lookup table of a :class:`BPEModel`, derived here and nowhere else."""

    def __init__(self, model: BPEModel) -> None:
        self.model = model
        # id -> bytes, special tokens as their UTF-8 text, None for an unused id
        id_bytes: list[bytes | None] = [None] * model.vocab_size
        for i, data in model.token_bytes.items():
            id_bytes[i] = data
        for special in model.specials:
            id_bytes[special.id] = special.text.encode("utf-8")
        self.id_bytes = id_bytes
        self.unused = frozenset(model.unused)
        self.bytes_to_id = {data: i for i, data in model.token_bytes.items()}
        self.byte_id = model.byte_ids  # byte value -> id
        # (left << shift | right) -> rank, and rank -> new id: the merge loop's tables.
        # The shift is as small as the ids allow: below 2**30 a key is a one-digit int.
        self.shift = shift = max(model.vocab_size - 1, 1).bit_length()
        self.ranks = {(a << shift) | b: r for r, (a, b, _) in enumerate(model.merges)}
        self.merge_new = [new for _, _, new in model.merges]
        # (byte << 8 | next byte) -> rank of the two bytes' ids: a piece's first ranks.
        get = self.ranks.get
        ids = model.byte_ids
        self.byte_pair_rank = [
            get((ids[k >> 8] << shift) | ids[k & 255], NO_MERGE) for k in range(65536)
        ]
        self.role_ids = model.role_ids()
        self.special_ids = {s.text: s.id for s in model.specials}  # text -> id, added tokens too
        self.special_text = {s.id: s.text for s in model.specials}  # id -> text
        self.skip_ids = frozenset(s.id for s in model.specials if s.special)
        self.always = frozenset(s.text for s in model.specials if not s.special)
        self.special_res: dict[object, regex.Pattern[str] | None] = {}  # allowed -> split regex
        before, after = model.template_ids()
        self.prefix, self.suffix = list(before), list(after)
        # piece text -> (id,) of every token that is valid UTF-8, when a piece that is
        # a token is that token (ignore_merges): the word cache holds these for good.
        self.whole_pieces: dict[str | int, tuple[int, ...]] = {}
        if model.ignore_merges:
            self.encode_piece = self._encode_known_piece  # type: ignore[method-assign]
            for i, data in model.token_bytes.items():
                try:
                    self.whole_pieces[data.decode("utf-8")] = (i,)
                except UnicodeDecodeError:
                    pass

    def _encode_known_piece(self, piece: str) -> tuple[int, ...]:
        """A piece that is a token of its own is that token; others go through BPE."""
        data = piece.encode("utf-8")
        found = self.bytes_to_id.get(data)
        return (found,) if found is not None else self.merge_bytes(data)

    def encode_piece(self, piece: str) -> tuple[int, ...]:
        """BPE on one pre-tokenized piece: merge the lowest-ranked pair until none is left."""
        return self.merge_bytes(piece.encode("utf-8"))  # a lone surrogate: UnicodeEncodeError

    def merge_bytes(self, data: bytes) -> tuple[int, ...]:
        """BPE on the bytes of one piece (``ignore_merges`` not applied)."""
        if len(data) < 2:
            return tuple(map(self.byte_id.__getitem__, data))
        ids = list(map(self.byte_id.__getitem__, data))
        if len(ids) > LONG_PIECE:
            return tuple(self.merge_long(ids))
        # The plain loop: quadratic, but the fastest for the usual short pieces.
        ranks = list(
            map(self.byte_pair_rank.__getitem__, map(or_, map(lshift, data, _EIGHTS), data[1:]))
        )
        get = self.ranks.get
        shift = self.shift
        new_ids = self.merge_new
        while True:
            best = min(ranks)
            if best == NO_MERGE:
                break
            i = ranks.index(best)
            new = ids[i] = new_ids[best]
            del ids[i + 1]
            del ranks[i]
            if i:
                ranks[i - 1] = get((ids[i - 1] << shift) | new, NO_MERGE)
            if i < len(ranks):
                ranks[i] = get((new << shift) | ids[i + 1], NO_MERGE)
            elif not i:  # one token left
                break
        return tuple(ids)

    def merge_long(self, ids: list[int]) -> list[int]:
        """The merges of :meth:`encode_piece`'s plain loop with a heap: O(n log n)."""
        get = self.ranks.get
        new_ids = self.merge_new
        shift = self.shift

        def rank(left: int, right: int) -> int:
            return get((left << shift) | right, NO_MERGE)

        return merge_heap(ids, rank, lambda left, right, r: new_ids[r])


def merge_heap(
    symbols: list[_T],
    rank: Callable[[_T, _T], int],
    join: Callable[[_T, _T, int], _T],
) -> list[_T]:
    """Merge the adjacent pair of lowest ``rank`` (the leftmost of equal ones) until
    every pair ranks ``NO_MERGE``; ``join(left, right, rank)`` makes the merged symbol.

    The symbols form a linked list and candidate pairs sit in a heap keyed by
    (rank, position), so n symbols cost O(n log n) instead of the plain loop's
    O(n^2). An entry is stale when its left symbol was consumed or its pair has
    changed since; a pair at one position never returns to an earlier value
    (its bytes only grow), so comparing the rank suffices.
    """
    n = len(symbols)
    syms = list(symbols)
    nxt = [*range(1, n), -1]  # position of the next live symbol, -1 at the end
    prv = list(range(-1, n - 1))
    dead = bytearray(n)
    heap = [(r, i) for i in range(n - 1) if (r := rank(syms[i], syms[i + 1])) != NO_MERGE]
    heapq.heapify(heap)
    heappop, heappush = heapq.heappop, heapq.heappush
    while heap:
        r, i = heappop(heap)
        j = nxt[i]
        if dead[i] or j < 0 or rank(syms[i], syms[j]) != r:
            continue
        merged = syms[i] = join(syms[i], syms[j], r)
        dead[j] = 1
        k = nxt[i] = nxt[j]
        if k >= 0:
            prv[k] = i
            rk = rank(merged, syms[k])
            if rk != NO_MERGE:
                heappush(heap, (rk, i))
        p = prv[i]
        if p >= 0:
            rp = rank(syms[p], merged)
            if rp != NO_MERGE:
                heappush(heap, (rp, p))
    out = []
    i = 0 if n else -1
    while i >= 0:
        out.append(syms[i])
        i = nxt[i]
    return out
