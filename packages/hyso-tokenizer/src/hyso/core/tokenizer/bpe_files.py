"""File formats of HysoBPETokenizer: its own JSON, HF ``tokenizer.json``, GPT-2
``vocab.json``/``merges.txt`` and tiktoken ranks (the methods, as a mixin)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .pretokenize import GPT2_PATTERN

if TYPE_CHECKING:
    from .bpe import HysoBPETokenizer

__all__ = ["BPEFilesMixin"]

_T = TypeVar("_T", bound="HysoBPETokenizer")


class BPEFilesMixin:
    """Save/load and conversions; mixed into :class:`HysoBPETokenizer`."""

    # ------------------------------------------------------------ persistence

    def save(self: HysoBPETokenizer, path: str | os.PathLike[str]) -> Path:
        """Write the tokenizer as versioned JSON (atomically); return the path."""
        from .serialization import save_tokenizer

        return save_tokenizer(self, Path(path))

    @classmethod
    def load(cls: type[_T], path: str | os.PathLike[str]) -> _T:
        """Read a file written by :meth:`save`; a damaged or foreign file is a ValueError."""
        from .serialization import load_tokenizer

        return load_tokenizer(cls, Path(path))

    @classmethod
    def from_hf(cls: type[_T], path: str | os.PathLike[str], cache_size: int = 100_000) -> _T:
        """Load an HF ``tokenizer.json`` of a byte-level BPE model."""
        from .interop import load_hf

        return load_hf(cls, Path(path), cache_size)

    def to_hf(self: HysoBPETokenizer, path: str | os.PathLike[str]) -> Path:
        """Write an HF ``tokenizer.json`` giving identical ids; return the path."""
        from .interop import save_hf

        return save_hf(self, Path(path))

    @classmethod
    def from_gpt2(
        cls: type[_T],
        vocab_json: str | os.PathLike[str],
        merges_txt: str | os.PathLike[str],
        cache_size: int = 100_000,
    ) -> _T:
        """Load GPT-2's ``vocab.json`` + ``merges.txt``."""
        from .interop import load_gpt2

        return load_gpt2(cls, Path(vocab_json), Path(merges_txt), cache_size)

    @classmethod
    def from_tiktoken(
        cls: type[_T],
        ranks: str | os.PathLike[str] | dict[bytes, int],
        special_tokens: dict[str, int] | None = None,
        pattern: str = GPT2_PATTERN,
        cache_size: int = 100_000,
    ) -> _T:
        """Build from tiktoken mergeable ranks (a ``.tiktoken`` file or a dict)."""
        from .interop import load_tiktoken

        return load_tiktoken(cls, ranks, special_tokens, pattern, cache_size)

    def to_tiktoken_ranks(self: HysoBPETokenizer) -> dict[bytes, int]:
        """tiktoken ``mergeable_ranks``: token bytes -> id (special tokens excluded)."""
        return {data: i for i, data in self._id_to_bytes.items()}

    def save_tiktoken(self: HysoBPETokenizer, path: str | os.PathLike[str]) -> Path:
        """Write the ranks in tiktoken's ``.tiktoken`` format (base64 token, rank)."""
        from .interop import save_tiktoken

        return save_tiktoken(self, Path(path))

    @classmethod
    def _from_parts(
        cls: type[_T],
        specials: Sequence[tuple[str, str, int]],
        id_to_bytes: dict[int, bytes],
        merges: list[tuple[int, int, int]],
        **config: Any,
    ) -> _T:
        """Assemble a tokenizer from (role, text, id) specials, token bytes and merges."""
        tok = cls(special_tokens={}, **config)
        for role, text, token_id in specials:
            tok._register_special(role, text, token_id)
        tok._set_model(id_to_bytes, merges)
        unused = [i for i, data in enumerate(tok._id_bytes) if data is None]
        if unused:
            raise ValueError(
                f"the vocabulary has {len(unused)} unused ids (first {unused[0]}); "
                "ids must run from 0 to vocab_size-1"
            )
        for a, b, new in merges:
            if a not in id_to_bytes or b not in id_to_bytes or new not in id_to_bytes:
                raise ValueError(f"merge ({a}, {b}) -> {new} names an id not in the vocabulary")
            if id_to_bytes[a] + id_to_bytes[b] != id_to_bytes[new]:
                raise ValueError(
                    f"merge ({a}, {b}) -> {new} does not concatenate: "
                    f"{id_to_bytes[a]!r} + {id_to_bytes[b]!r} != {id_to_bytes[new]!r}"
                )
        return tok
