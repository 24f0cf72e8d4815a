"""HysoBPETokenizer: byte-level BPE with HF ``tokenizers``-identical merges and ids."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import regex

from . import serialization as files
from .batch import BatchEncoding, pad_batch
from .bpe_model import BPEModel, BPETables, SpecialToken
from .bpe_train import count_words, learn_merges
from .cache import WordCache
from .fast import choose_backend, tiktoken_blocker, tiktoken_encoder, tiktoken_installed
from .pretokenize import (
    GPT2_PATTERN,
    check_text,
    make_block_splitter,
    make_normalizer,
    surrogate_error,
)
from .roles import SpecialRoles
from .stream import StreamDecoder
from .tensors import as_tensors

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["DEFAULT_SPECIAL_TOKENS", "HysoBPETokenizer"]

DEFAULT_SPECIAL_TOKENS: dict[str, str] = {
    "pad": "<pad>",
    "bos": "<bos>",
    "eos": "<eos>",
    "unk": "<unk>",
    "mask": "<mask>",
}
IGNORE_INDEX = -100


class HysoBPETokenizer(SpecialRoles):
    """Byte-level BPE over the GPT-2 split pattern.

    ``special_tokens`` maps a role (``pad``, ``bos``, ``eos``, ``unk``, ``mask``
    or any name) to its token text; ``token_id(role)`` gives its id, and the five
    usual roles have properties (``eos_token_id`` ...). Special tokens take the
    first ids, then the 256 bytes, then the merges. ``model`` builds the
    tokenizer from a :class:`BPEModel` instead (as the file readers do).

    ``backend`` picks the encoder: ``"python"`` (pure Python), ``"tiktoken"``
    (tiktoken, an error where it is not installed or would not give the same
    ids) or ``"auto"`` (tiktoken where it gives the same ids, else Python). The
    environment variable ``HYSO_TOKENIZER_BACKEND=python`` forces pure Python.
    """

    def __init__(
        self,
        lowercase: bool = False,
        normalize: str | None = None,
        cache_size: int = 100_000,
        special_tokens: dict[str, str] | Sequence[str] | None = None,
        pattern: str = GPT2_PATTERN,
        *,
        model: BPEModel | None = None,
        backend: str = "auto",
    ) -> None:
        self._backend = choose_backend(backend)
        self.lowercase = bool(lowercase)
        self.normalize = normalize
        self.pattern = pattern
        self._normalizer = make_normalizer(normalize, self.lowercase)
        self._blocks = make_block_splitter(pattern)
        self._cache = WordCache(cache_size)
        if model is None:
            specials = DEFAULT_SPECIAL_TOKENS if special_tokens is None else special_tokens
            if not isinstance(specials, dict):
                specials = {str(t): t for t in specials}
            model = learn_merges({}, 0, list(specials.items()))
        elif special_tokens is not None:
            raise ValueError("give special tokens either in special_tokens or in model, not both")
        self._use(model)

    def _use(self, model: BPEModel) -> None:
        """Make ``model`` this tokenizer's vocabulary: every table is derived from it."""
        self._tables = BPETables(model)
        # Special-token markers, and with ignore_merges every token that is a whole piece.
        self._cache.pin(
            {**self._tables.whole_pieces, **{i: (i,) for i in self._tables.special_text}}
        )
        self._cache.clear()
        self._cache.compute = self._tables.encode_piece
        self._fast: Callable[[str], list[int]] | None = None
        self._fast_checked = self._backend == "python"
        if self._backend == "tiktoken":
            self._fast_encoder()  # refused here, not at the first encode

    def _fast_encoder(self) -> Callable[[str], list[int]] | None:
        """tiktoken's encoder for this vocabulary, or None (checked once per vocabulary)."""
        if self._fast_checked:
            return self._fast
        self._fast_checked = True
        why = "tiktoken is not installed (pip install hyso-tokenizer[fast])"
        if tiktoken_installed():
            blocker = tiktoken_blocker(self.model, self.pattern, self._tables)
            if blocker is None:
                self._fast = tiktoken_encoder(self.model, self.pattern)
            why = blocker or why
        if self._fast is None and self._backend == "tiktoken":
            raise ValueError(f"backend='tiktoken' cannot encode this vocabulary: {why}")
        return self._fast

    @property
    def backend(self) -> str:
        """The encoder in use: ``"tiktoken"`` or ``"python"``."""
        return "tiktoken" if self._fast_encoder() is not None else "python"

    # ------------------------------------------------------------ vocabulary

    @property
    def model(self) -> BPEModel:
        """The byte ids, merges and special tokens that define this tokenizer."""
        return self._tables.model

    @property
    def vocab_size(self) -> int:
        """Number of ids (0 .. vocab_size-1): ordinary tokens plus special tokens."""
        return len(self._tables.id_bytes)

    @property
    def special_tokens(self) -> dict[str, str]:
        """Role -> token text of every special token (aliases included)."""
        text = self._tables.special_text
        return {role: text[i] for role, i in self.role_ids.items()}

    @property
    def special_token_ids(self) -> dict[str, int]:
        """Token text -> id of every special token."""
        return dict(self._tables.special_ids)

    @property
    def role_ids(self) -> dict[str, int]:
        """Role -> id of every special token."""
        return self._tables.role_ids

    @property
    def merges(self) -> list[tuple[int, int, int]]:
        """Merges in rank order as (left id, right id, new id)."""
        return list(self.model.merges)

    @property
    def cache_size(self) -> int:
        """The word cache's capacity."""
        return self._cache.capacity

    def token_to_id(self, token: str | bytes) -> int | None:
        """Id of a special token text or of an ordinary token's bytes, or None."""
        if isinstance(token, str):
            found = self._tables.special_ids.get(token)
            if found is not None:
                return found
            token = token.encode("utf-8")
        return self._tables.bytes_to_id.get(token)

    def id_to_token(self, token_id: int) -> bytes | str:
        """The bytes of an ordinary token, or the text of a special token."""
        special = self._tables.special_text.get(token_id)
        return special if special is not None else self._token_bytes(token_id)

    def _token_bytes(self, token_id: int) -> bytes:
        self._check_ids([token_id])
        data = self._tables.id_bytes[token_id]
        if data is None:
            raise self._unused_error(token_id)
        return data

    def _unused_error(self, token_id: int) -> ValueError:
        return ValueError(
            f"token id {token_id} is an unused id of this vocabulary (no token has it; "
            f"{len(self._tables.unused)} ids of {self.vocab_size} are unused)"
        )

    def add_special_tokens(self, tokens: dict[str, str] | Sequence[str]) -> list[int]:
        """Add special tokens at the end of the vocabulary; return their ids."""
        if not isinstance(tokens, dict):
            tokens = {str(t): t for t in tokens}
        start = self.vocab_size
        added = [
            SpecialToken(role, text, start + k) for k, (role, text) in enumerate(tokens.items())
        ]
        self._use(replace(self.model, specials=(*self.model.specials, *added)))
        return [s.id for s in added]

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
        specials = [(s.role, s.text) for s in self.model.specials]
        floor = len(specials) + 256
        if not isinstance(vocab_size, int) or isinstance(vocab_size, bool) or vocab_size < floor:
            raise ValueError(
                f"vocab_size must be an int >= {floor} (256 bytes + {len(specials)} "
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
        # Specials keep the first ids, in the order they were given.
        model = learn_merges(words, vocab_size, specials, min_frequency, progress)
        self._use(_carry_over(self.model, model))
        if show_progress:
            print(f"\rBPE: {len(model.merges)} merges from {len(words)} distinct pieces, "
                  f"vocabulary {self.vocab_size}")  # fmt: skip
        return self

    # ------------------------------------------------------------ encoding

    def _pieces(
        self, text: str, special_re: regex.Pattern[str] | None
    ) -> Iterable[list[str | int]]:
        """Pre-tokenized pieces of ``text`` in blocks; an allowed special token becomes its id."""
        norm = self._normalizer
        blocks = self._blocks
        if special_re is None:
            return blocks(norm(text) if norm is not None else text)  # type: ignore[return-value]
        parts = special_re.split(text)
        pieces: list[list[str | int]] = []
        ids_by_text = self._tables.special_ids
        for k, part in enumerate(parts):
            if k % 2:
                pieces.append([ids_by_text[part]])
            elif part:
                pieces.extend(blocks(norm(part) if norm is not None else part))
        return pieces

    def _ids(self, texts: Iterable[Iterable[list[str | int]]]) -> list[list[int]]:
        """Token ids of each text's piece blocks: one dict lookup per cached piece, BPE per
        miss; a block's pieces are dropped once looked up, so their memory is reused."""
        get = self._cache.lookup
        return [list(chain.from_iterable(map(get, chain.from_iterable(b)))) for b in texts]

    def _special_re(self, allowed_special: str | Iterable[str]) -> regex.Pattern[str] | None:
        """The regex cutting out allowed special tokens and the always-matched added ones."""
        always = self._tables.always
        if not allowed_special and not always:
            return None
        key = allowed_special if isinstance(allowed_special, str) else frozenset(allowed_special)
        memo = self._tables.special_res
        if key in memo:
            return memo[key]
        allowed = self._allowed(allowed_special) | always if allowed_special else set(always)
        found = None
        if allowed:  # longest first: the leftmost-longest match, as HF's added vocabulary
            alts = "|".join(regex.escape(t) for t in sorted(allowed, key=len, reverse=True))
            found = regex.compile(f"({alts})")
        memo[key] = found
        return found

    def _allowed(self, allowed_special: str | Iterable[str]) -> set[str]:
        known = set(self._tables.special_ids)
        if allowed_special == "all":
            return known
        if isinstance(allowed_special, str):
            raise ValueError(
                f'allowed_special must be "all" or a set of special token texts, '
                f"got {allowed_special!r}"
            )
        allowed = set(allowed_special)
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
        special_re = self._special_re(allowed_special)
        fast = self._fast_encoder()
        try:
            if fast is not None:
                ids = self._fast_ids(fast, text, special_re)
            else:
                ids = self._ids([self._pieces(text, special_re)])[0]
        except UnicodeEncodeError:
            raise surrogate_error(text) from None
        if add_special_tokens:
            ids = self._wrap(ids)
        return ids

    def _fast_ids(
        self,
        fast: Callable[[str], list[int]],
        text: str,
        special_re: regex.Pattern[str] | None,
    ) -> list[int]:
        """The ids of ``text`` from the native encoder; specials and normalisation here."""
        norm = self._normalizer
        if special_re is None:
            return fast(norm(text) if norm is not None else text)
        ids: list[int] = []
        ids_by_text = self._tables.special_ids
        for k, part in enumerate(special_re.split(text)):
            if k % 2:
                ids.append(ids_by_text[part])
            elif part:
                ids.extend(fast(norm(part) if norm is not None else part))
        return ids

    def _wrap(self, ids: list[int]) -> list[int]:
        """``ids`` inside the model's template (BOS and EOS unless the model says otherwise)."""
        return self._tables.prefix + ids + self._tables.suffix

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
        fast = self._fast_encoder()
        try:
            if fast is not None:
                seqs = [self._fast_ids(fast, check_text(t), special_re) for t in texts]
            else:
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
        pad_id = self.pad_token_id
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

    # ------------------------------------------------------------ seq2seq

    def encode_source(self, text: str, allowed_special: str | Iterable[str] = ()) -> list[int]:
        """Encoder input: the ids of ``text`` followed by EOS."""
        return [*self.encode(text, allowed_special=allowed_special), self.token_id("eos")]

    def encode_target(
        self, text: str, allowed_special: str | Iterable[str] = ()
    ) -> tuple[list[int], list[int]]:
        """Decoder input (BOS + ids) and labels (ids + EOS), both of the same length."""
        ids = self.encode(text, allowed_special=allowed_special)
        return [self.token_id("bos"), *ids], [*ids, self.token_id("eos")]

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
        pad_id = self.token_id("pad") if padding else 0
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

    # ------------------------------------------------------------ decoding

    def _check_ids(self, ids: Sequence[int]) -> None:
        size = len(self._tables.id_bytes)
        if ids and (min(ids) < 0 or max(ids) >= size):
            bad = next(i for i in ids if i < 0 or i >= size)
            raise ValueError(f"token id {bad} is out of range [0, {size})")

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        """Text of ``ids``; invalid UTF-8 (a cut character) becomes U+FFFD."""
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        ids = ids if isinstance(ids, list) else list(ids)
        self._check_ids(ids)
        skip = self._tables.skip_ids
        if skip_special_tokens and skip:
            ids = [i for i in ids if i not in skip]
        try:
            data = b"".join(map(self._tables.id_bytes.__getitem__, ids))  # type: ignore[arg-type]
        except TypeError:  # None: an unused id
            raise self._unused_error(next(i for i in ids if i in self._tables.unused)) from None
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

        texts, skip = self._tables.special_text, self._tables.skip_ids

        def special_text(token_id: int) -> str | None:
            if skip_special_tokens and token_id in skip:
                return ""  # ends a pending character, adds nothing
            return texts.get(token_id)

        return StreamDecoder(self._token_bytes, special_text)

    # ------------------------------------------------------------ files (see serialization)

    def _settings(self) -> dict[str, Any]:
        return {"lowercase": self.lowercase, "normalize": self.normalize, "pattern": self.pattern}

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the tokenizer as versioned JSON (atomically); return the path."""
        return files.write_bpe_json(
            Path(path), self.model, **self._settings(), cache_size=self.cache_size
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str], backend: str = "auto") -> Self:
        """Read a file written by :meth:`save`; a damaged or foreign file is a ValueError."""
        return cls(**files.read_bpe_json(Path(path)), backend=backend)

    def to_hf(self, path: str | os.PathLike[str]) -> Path:
        """Write HF files giving identical ids; return ``path``.

        A path ending in ``.json`` gets a bare ``tokenizer.json`` (with a
        post-processor only when the model has a template); any other path is a
        folder that gets ``tokenizer.json`` with this tokenizer's BOS/EOS
        template and ``tokenizer_config.json``, which ``transformers.AutoTokenizer``
        loads with the same special tokens and ids.
        """
        path = Path(path)
        if path.suffix == ".json":
            return files.write_hf_json(path, self.model, **self._settings())
        return files.write_hf_folder(path, self.model, **self._settings())

    @classmethod
    def from_hf(
        cls, path: str | os.PathLike[str], cache_size: int = 100_000, backend: str = "auto"
    ) -> Self:
        """Load an HF ``tokenizer.json`` (or a folder holding it) of a byte-level BPE:
        GPT-2's ByteLevel, or a Split regex then ByteLevel (Llama 3, Qwen2)."""
        return cls(**files.read_hf_json(Path(path)), cache_size=cache_size, backend=backend)

    @classmethod
    def from_gpt2(
        cls,
        vocab_json: str | os.PathLike[str],
        merges_txt: str | os.PathLike[str],
        cache_size: int = 100_000,
        backend: str = "auto",
    ) -> Self:
        """Load GPT-2's ``vocab.json`` + ``merges.txt``."""
        found = files.read_gpt2_files(Path(vocab_json), Path(merges_txt))
        return cls(**found, cache_size=cache_size, backend=backend)

    def to_tiktoken_ranks(self) -> dict[bytes, int]:
        """tiktoken ``mergeable_ranks``: token bytes -> id (special tokens excluded)."""
        return files.tiktoken_ranks(self.model)

    def save_tiktoken(self, path: str | os.PathLike[str]) -> Path:
        """Write the ranks in tiktoken's ``.tiktoken`` format (base64 token, rank)."""
        return files.write_tiktoken_ranks(Path(path), self.model)

    @classmethod
    def from_tiktoken(
        cls,
        ranks: str | os.PathLike[str] | dict[bytes, int],
        special_tokens: dict[str, int] | None = None,
        pattern: str = GPT2_PATTERN,
        cache_size: int = 100_000,
        backend: str = "auto",
    ) -> Self:
        """Build from tiktoken mergeable ranks (a ``.tiktoken`` file or a dict)."""
        table = ranks if isinstance(ranks, dict) else files.read_tiktoken_ranks(Path(ranks))
        model = files.tiktoken_model(table, special_tokens)
        return cls(model=model, pattern=pattern, cache_size=cache_size, backend=backend)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(vocab_size={self.vocab_size}, merges={len(self.model.merges)}, "
            f"lowercase={self.lowercase}, normalize={self.normalize!r})"
        )


def _carry_over(old: BPEModel, new: BPEModel) -> BPEModel:
    """``new`` (freshly trained) with ``old``'s flags, aliases and template, whose
    special-token ids are moved to the tokens' new ids (a template naming an ordinary
    token is dropped: that token may not exist any more)."""
    new_id = {s.text: n.id for s, n in zip(old.specials, new.specials)}
    old_text = {s.id: s.text for s in old.specials}
    template = old.template
    if template is not None:
        ids = [*template[0], *template[1]]
        template = None
        if all(i in old_text for i in ids):
            before, after = (tuple(new_id[old_text[i]] for i in part) for part in old.template)
            template = (before, after)
    return replace(
        new,
        specials=tuple(n._replace(special=s.special) for s, n in zip(old.specials, new.specials)),
        aliases=tuple((role, new_id[old_text[i]]) for role, i in old.aliases),
        template=template,
        ignore_merges=old.ignore_merges,
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
