"""HysoBPETokenizer: byte-level BPE with HF ``tokenizers``-identical merges and ids."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from itertools import chain
from typing import Any, cast

import regex

from .batch import BatchEncoding, pad_batch
from .bpe_files import BPEFilesMixin
from .bpe_train import count_words, learn_merges
from .cache import WordCache
from .pretokenize import GPT2_PATTERN, check_text, make_normalizer, make_splitter, surrogate_error
from .stream import StreamDecoder
from .tensors import as_tensors

__all__ = ["DEFAULT_SPECIAL_TOKENS", "HysoBPETokenizer"]

DEFAULT_SPECIAL_TOKENS: dict[str, str] = {
    "pad": "<pad>",
    "bos": "<bos>",
    "eos": "<eos>",
    "unk": "<unk>",
    "mask": "<mask>",
}
_SHIFT = 32
_NO_MERGE = 1 << 62
IGNORE_INDEX = -100


class HysoBPETokenizer(BPEFilesMixin):
    """Byte-level BPE over the GPT-2 split pattern.

    ``special_tokens`` maps a role (``pad``, ``bos``, ``eos``, ``unk``, ``mask``
    or any name) to its token text; each gets the attribute ``<role>_token_id``.
    Special tokens take the first ids, then the 256 bytes, then the merges.
    """

    def __init__(
        self,
        lowercase: bool = False,
        normalize: str | None = None,
        cache_size: int = 100_000,
        special_tokens: dict[str, str] | Sequence[str] | None = None,
        pattern: str = GPT2_PATTERN,
    ) -> None:
        self.lowercase = bool(lowercase)
        self.normalize = normalize
        self.pattern = pattern
        self._normalizer = make_normalizer(normalize, self.lowercase)
        self._split = make_splitter(pattern)
        self._cache = WordCache(cache_size)
        specials = DEFAULT_SPECIAL_TOKENS if special_tokens is None else special_tokens
        if not isinstance(specials, dict):
            specials = {str(t): t for t in specials}
        self._specials: dict[str, tuple[str, int]] = {}
        self._special_ids: dict[int, str] = {}
        for k, (role, text) in enumerate(specials.items()):
            self._register_special(role, text, k)
        model = learn_merges({}, 0, len(self._specials))
        self._set_model(model.id_to_bytes, model.merges)

    # ------------------------------------------------------------ vocabulary

    def _register_special(self, role: str, text: str, token_id: int) -> None:
        if not isinstance(text, str) or not text:
            raise ValueError(f"special token {role!r} must be a non-empty str, got {text!r}")
        if role in self._specials:
            raise ValueError(f"special token role {role!r} is given twice")
        if text in {t for t, _ in self._specials.values()}:
            raise ValueError(f"special token text {text!r} is given twice")
        if token_id in self._special_ids:
            raise ValueError(f"special tokens {text!r} and {self._special_ids[token_id]!r} "
                             f"share id {token_id}")  # fmt: skip
        self._specials[role] = (text, token_id)
        self._special_ids[token_id] = text
        self._sync_specials()

    def _sync_specials(self) -> None:
        self._special_text_ids = {text: i for text, i in self._specials.values()}
        self._special_res: dict[object, regex.Pattern[str]] = {}
        self._cache.pin({i: (i,) for i in self._special_ids})

    def _set_model(self, id_to_bytes: dict[int, bytes], merges: list[tuple[int, int, int]]) -> None:
        clash = set(id_to_bytes) & set(self._special_ids)
        if clash:
            raise ValueError(f"ids {sorted(clash)[:5]} are both special and ordinary tokens")
        size = max(chain(id_to_bytes, self._special_ids), default=-1) + 1
        table: list[bytes | None] = [None] * size
        for i, data in id_to_bytes.items():
            table[i] = data
        for i, text in self._special_ids.items():
            table[i] = text.encode("utf-8")
        self._id_bytes = table
        self._id_to_bytes = dict(id_to_bytes)
        self._bytes_to_id = {v: k for k, v in id_to_bytes.items()}
        byte_id = []
        for b in range(256):
            i = self._bytes_to_id.get(bytes([b]))
            if i is None:
                raise ValueError(f"the vocabulary has no token for byte {b}")
            byte_id.append(i)
        self._byte_id = byte_id
        self._merges = list(merges)
        self._ranks = {(a << _SHIFT) | b: r for r, (a, b, _) in enumerate(self._merges)}
        self._merge_new = [n for _, _, n in self._merges]
        self._cache.clear()

    @property
    def vocab_size(self) -> int:
        """Number of ids (0 .. vocab_size-1): ordinary tokens plus special tokens."""
        return len(self._id_bytes)

    @property
    def special_tokens(self) -> dict[str, str]:
        """Role -> token text of every special token."""
        return {role: text for role, (text, _) in self._specials.items()}

    @property
    def special_token_ids(self) -> dict[str, int]:
        """Token text -> id of every special token."""
        return {text: i for text, i in self._specials.values()}

    @property
    def merges(self) -> list[tuple[int, int, int]]:
        """Merges in rank order as (left id, right id, new id)."""
        return list(self._merges)

    @property
    def cache_size(self) -> int:
        """The word cache's capacity."""
        return self._cache.capacity

    def __getattr__(self, name: str) -> int | None:
        if name.endswith("_token_id") and "_specials" in self.__dict__:
            entry = self.__dict__["_specials"].get(name[: -len("_token_id")])
            if entry is not None:
                return entry[1]
            if name[: -len("_token_id")] in DEFAULT_SPECIAL_TOKENS:
                return None
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def token_to_id(self, token: str | bytes) -> int | None:
        """Id of a special token text or of an ordinary token's bytes, or None."""
        if isinstance(token, str):
            for text, i in self._specials.values():
                if text == token:
                    return i
            token = token.encode("utf-8")
        return self._bytes_to_id.get(token)

    def id_to_token(self, token_id: int) -> bytes | str:
        """The bytes of an ordinary token, or the text of a special token."""
        self._check_ids([token_id])
        special = self._special_ids.get(token_id)
        if special is not None:
            return special
        data = self._id_bytes[token_id]
        if data is None:
            raise ValueError(f"token id {token_id} is unused in this vocabulary")
        return data

    def add_special_tokens(self, tokens: dict[str, str] | Sequence[str]) -> list[int]:
        """Add special tokens at the end of the vocabulary; return their ids."""
        if not isinstance(tokens, dict):
            tokens = {str(t): t for t in tokens}
        ids = []
        for role, text in tokens.items():
            new_id = len(self._id_bytes)
            self._register_special(role, text, new_id)
            self._id_bytes.append(text.encode("utf-8"))
            ids.append(new_id)
        return ids

    # ------------------------------------------------------------ training

    def train(
        self,
        texts_or_files: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
        vocab_size: int,
        min_frequency: int = 0,
        show_progress: bool = False,
        num_workers: int | None = None,
    ) -> HysoBPETokenizer:
        """Learn merges until the vocabulary (specials included) has ``vocab_size`` ids.

        ``str`` items are texts, each one sequence; ``pathlib.Path`` items are
        UTF-8 files, streamed in chunks and split line by line. Files are
        counted by ``num_workers`` processes (default: up to 2 CPUs).
        """
        if isinstance(texts_or_files, (str, os.PathLike)):
            texts_or_files = [texts_or_files]
        floor = len(self._specials) + 256
        if not isinstance(vocab_size, int) or isinstance(vocab_size, bool) or vocab_size < floor:
            raise ValueError(
                f"vocab_size must be an int >= {floor} (256 bytes + {len(self._specials)} "
                f"special tokens), got {vocab_size!r}"
            )
        if not isinstance(min_frequency, int) or min_frequency < 0:
            raise ValueError(f"min_frequency must be a non-negative int, got {min_frequency!r}")
        if num_workers is None:
            num_workers = min(2, os.cpu_count() or 1)
        words = count_words(texts_or_files, self.pattern, self._normalizer, num_workers)
        progress: Callable[[int, int], None] | None = None
        if show_progress:
            progress = _print_progress
        specials = sorted(self._special_ids.items())
        model = learn_merges(words, vocab_size, len(specials), min_frequency, progress)
        # Specials keep the first ids, in the order they were given.
        self._special_ids = {}
        for k, (role, (text, _)) in enumerate(self._specials.items()):
            self._specials[role] = (text, k)
            self._special_ids[k] = text
        self._sync_specials()
        self._set_model(model.id_to_bytes, model.merges)
        if show_progress:
            print(f"\rBPE: {len(model.merges)} merges from {len(words)} distinct pieces, "
                  f"vocabulary {self.vocab_size}")  # fmt: skip
        return self

    # ------------------------------------------------------------ encoding

    def _bpe(self, piece: str) -> tuple[int, ...]:
        data = piece.encode("utf-8")  # a lone surrogate raises UnicodeEncodeError
        byte_id = self._byte_id
        ids = [byte_id[b] for b in data]
        if len(ids) < 2:
            return tuple(ids)
        get = self._ranks.get
        ranks = [get((ids[i] << _SHIFT) | ids[i + 1], _NO_MERGE) for i in range(len(ids) - 1)]
        new_ids = self._merge_new
        while True:
            best = min(ranks)
            if best == _NO_MERGE:
                break
            i = ranks.index(best)
            new = new_ids[best]
            ids[i] = new
            del ids[i + 1]
            del ranks[i]
            if i > 0:
                ranks[i - 1] = get((ids[i - 1] << _SHIFT) | new, _NO_MERGE)
            if i < len(ranks):
                ranks[i] = get((new << _SHIFT) | ids[i + 1], _NO_MERGE)
            if not ranks:
                break
        return tuple(ids)

    def _pieces(self, text: str, special_re: regex.Pattern[str] | None) -> list[str | int]:
        """Pre-tokenized pieces of ``text``; an allowed special token becomes its id."""
        norm = self._normalizer
        split = self._split
        if special_re is None:
            return split(norm(text) if norm is not None else text)
        parts = special_re.split(text)
        pieces: list[str | int] = []
        ids_by_text = self._special_text_ids
        for k, part in enumerate(parts):
            if k % 2:
                pieces.append(ids_by_text[part])
            elif part:
                pieces.extend(split(norm(part) if norm is not None else part))
        return pieces

    def _ids(self, piece_lists: list[list[str | int]]) -> list[list[int]]:
        """Token ids of each piece list: one dict lookup per cached piece."""
        young = self._cache.young
        try:
            return [list(chain.from_iterable(map(young.__getitem__, ps))) for ps in piece_lists]
        except KeyError:
            pass
        uniq: set[str | int] = set()
        for ps in piece_lists:
            uniq.update(ps)
        local = self._cache.resolve(uniq, self._bpe)
        get = local.__getitem__
        return [list(chain.from_iterable(map(get, ps))) for ps in piece_lists]

    def _special_re(self, allowed_special: str | Iterable[str]) -> regex.Pattern[str] | None:
        if not allowed_special:
            return None
        key = allowed_special if isinstance(allowed_special, str) else frozenset(allowed_special)
        found = self._special_res.get(key)
        if found is None:
            allowed = self._allowed(allowed_special)
            if not allowed:
                return None
            alts = "|".join(regex.escape(t) for t in sorted(allowed, key=len, reverse=True))
            found = self._special_res[key] = regex.compile(f"({alts})")
        return found

    def _allowed(self, allowed_special: str | Iterable[str]) -> set[str]:
        if allowed_special == "all":
            return {text for text, _ in self._specials.values()}
        if isinstance(allowed_special, str):
            raise ValueError(
                f'allowed_special must be "all" or a set of special token texts, '
                f"got {allowed_special!r}"
            )
        allowed = set(allowed_special)
        known = {text for text, _ in self._specials.values()}
        unknown = allowed - known
        if unknown:
            raise ValueError(f"allowed_special names unknown special tokens {sorted(unknown)}")
        return allowed

    def encode(
        self,
        text: str,
        add_special_tokens: bool = False,
        allowed_special: str | Iterable[str] = (),
    ) -> list[int]:
        """Token ids of ``text``.

        Text that looks like a special token is ordinary text unless that token
        is in ``allowed_special`` (or it is ``"all"``). ``add_special_tokens``
        wraps the ids in BOS/EOS when those exist.
        """
        check_text(text)
        try:
            ids = self._ids([self._pieces(text, self._special_re(allowed_special))])[0]
        except UnicodeEncodeError:
            raise surrogate_error(text) from None
        if add_special_tokens:
            ids = self._wrap(ids)
        return ids

    def _wrap(self, ids: list[int]) -> list[int]:
        bos, eos = self.__getattr__("bos_token_id"), self.__getattr__("eos_token_id")
        return ([bos] if bos is not None else []) + ids + ([eos] if eos is not None else [])

    def encode_batch(
        self,
        texts: Sequence[str],
        add_special_tokens: bool = False,
        allowed_special: str | Iterable[str] = (),
        *,
        padding: bool | str = False,
        truncation: bool = False,
        max_length: int | None = None,
        padding_side: str = "right",
        return_attention_mask: bool = False,
        return_tensors: str | None = None,
    ) -> list[list[int]] | BatchEncoding:
        """Encode many texts.

        Returns a list of id lists, unless padding, ``return_attention_mask`` or
        ``return_tensors="pt"`` is asked for: then a :class:`BatchEncoding` with
        ``input_ids`` and ``attention_mask``.
        """
        if isinstance(texts, str):
            raise TypeError("encode_batch takes a sequence of texts; use encode for one text")
        special_re = self._special_re(allowed_special)
        pieces = self._pieces
        try:
            seqs = self._ids([pieces(check_text(t), special_re) for t in texts])
        except UnicodeEncodeError:
            bad = next(i for i, t in enumerate(texts) if not _encodable(t))
            raise surrogate_error(texts[bad], f"texts[{bad}]") from None
        if add_special_tokens:
            seqs = [self._wrap(s) for s in seqs]
        return self._finish_batch(
            seqs,
            padding,
            truncation,
            max_length,
            padding_side,
            return_attention_mask,
            return_tensors,
        )

    def _finish_batch(
        self,
        seqs: list[list[int]],
        padding: bool | str,
        truncation: bool,
        max_length: int | None,
        padding_side: str,
        return_attention_mask: bool,
        return_tensors: str | None,
    ) -> list[list[int]] | BatchEncoding:
        pad_id = self._pad_id()
        ids, masks = pad_batch(
            seqs,
            pad_id if pad_id is not None else 0,
            padding=padding,
            truncation=truncation,
            max_length=max_length,
            padding_side=padding_side,
        )
        if padding and pad_id is None:
            raise ValueError("padding needs a 'pad' special token, and this tokenizer has none")
        if not (padding or return_attention_mask or return_tensors):
            return ids
        fields = as_tensors({"input_ids": ids, "attention_mask": masks}, return_tensors)
        return BatchEncoding(fields)

    def _pad_id(self) -> int | None:
        entry = self._specials.get("pad")
        return None if entry is None else entry[1]

    # ------------------------------------------------------------ seq2seq

    def encode_source(self, text: str, allowed_special: str | Iterable[str] = ()) -> list[int]:
        """Encoder input: the ids of ``text`` followed by EOS."""
        return [*self.encode(text, allowed_special=allowed_special), self._need("eos")]

    def encode_target(
        self, text: str, allowed_special: str | Iterable[str] = ()
    ) -> tuple[list[int], list[int]]:
        """Decoder input (BOS + ids) and labels (ids + EOS), both of the same length."""
        ids = self.encode(text, allowed_special=allowed_special)
        return [self._need("bos"), *ids], [*ids, self._need("eos")]

    def encode_source_batch(
        self,
        texts: Sequence[str],
        *,
        padding: bool | str = True,
        truncation: bool = False,
        max_length: int | None = None,
        padding_side: str = "right",
        return_tensors: str | None = None,
    ) -> BatchEncoding:
        """Encoder inputs for many texts: ``input_ids`` and ``attention_mask``."""
        seqs = [self.encode_source(t) for t in texts]
        out = self._finish_batch(
            seqs, padding, truncation, max_length, padding_side, True, return_tensors
        )
        return cast(BatchEncoding, out)

    def encode_target_batch(
        self,
        texts: Sequence[str],
        *,
        padding: bool | str = True,
        truncation: bool = False,
        max_length: int | None = None,
        padding_side: str = "right",
        return_tensors: str | None = None,
    ) -> BatchEncoding:
        """Decoder inputs for many texts: ``decoder_input_ids``, ``labels`` (padding -100)
        and ``decoder_attention_mask``."""
        pairs = [self.encode_target(t) for t in texts]
        pad_id = self._need("pad") if padding else 0
        kw: dict[str, Any] = dict(
            padding=padding,
            truncation=truncation,
            max_length=max_length,
            padding_side=padding_side,
        )
        inputs, masks = pad_batch([p[0] for p in pairs], pad_id, **kw)
        labels, _ = pad_batch([p[1] for p in pairs], pad_id, label_pad_id=IGNORE_INDEX, **kw)
        fields = {"decoder_input_ids": inputs, "labels": labels, "decoder_attention_mask": masks}
        return BatchEncoding(as_tensors(fields, return_tensors))

    def _need(self, role: str) -> int:
        entry = self._specials.get(role)
        if entry is None:
            raise ValueError(f"this needs a {role!r} special token, and this tokenizer has none")
        return entry[1]

    # ------------------------------------------------------------ decoding

    def _check_ids(self, ids: Sequence[int]) -> None:
        if ids and (min(ids) < 0 or max(ids) >= len(self._id_bytes)):
            bad = next(i for i in ids if i < 0 or i >= len(self._id_bytes))
            raise ValueError(f"token id {bad} is out of range [0, {len(self._id_bytes)})")

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        """Text of ``ids``; invalid UTF-8 (a cut character) becomes U+FFFD."""
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        ids = ids if isinstance(ids, list) else list(ids)
        self._check_ids(ids)
        if skip_special_tokens and self._special_ids:
            specials = self._special_ids
            ids = [i for i in ids if i not in specials]
        try:
            data = b"".join(map(self._id_bytes.__getitem__, ids))
        except TypeError:
            bad = next(i for i in ids if self._id_bytes[i] is None)
            raise ValueError(f"token id {bad} is unused in this vocabulary") from None
        return data.decode("utf-8", errors="replace")

    def decode_batch(
        self, batch: Iterable[Iterable[int]], skip_special_tokens: bool = False
    ) -> list[str]:
        """Decode each sequence of ``batch``."""
        if hasattr(batch, "tolist"):
            batch = batch.tolist()
        return [self.decode(ids, skip_special_tokens) for ids in batch]

    def stream_decoder(self, skip_special_tokens: bool = False) -> StreamDecoder:
        """A decoder fed one id at a time that yields only complete characters."""

        def token_bytes(token_id: int) -> bytes:
            self._check_ids([token_id])
            data = self._id_bytes[token_id]
            if data is None:
                raise ValueError(f"token id {token_id} is unused in this vocabulary")
            return data

        return StreamDecoder(token_bytes, self._special_ids.get, skip_special_tokens)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(vocab_size={self.vocab_size}, merges={len(self._merges)}, "
            f"lowercase={self.lowercase}, normalize={self.normalize!r})"
        )


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _print_progress(done: int, total: int) -> None:
    if done % 500 == 0:
        print(f"\rBPE merges: vocabulary {done}/{total}", end="", flush=True)
