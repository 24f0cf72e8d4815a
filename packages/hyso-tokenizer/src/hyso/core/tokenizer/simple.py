"""HysoSimpleTokenizer: word-level tokenization with a frequency-built vocabulary."""

from __future__ import annotations

import os
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import regex

from .batch import BatchEncoding, pad_batch
from .roles import SpecialRoles
from .serialization import read_simple_json, write_simple_json
from .tensors import as_tensors

__all__ = ["SIMPLE_SPECIAL_TOKENS", "HysoSimpleTokenizer"]

SIMPLE_SPECIAL_TOKENS: dict[str, str] = {
    "pad": "<pad>",
    "unk": "<unk>",
    "bos": "<bos>",
    "eos": "<eos>",
    "mask": "<mask>",
}
IGNORE_INDEX = -100
_PUNCT_SPLIT = regex.compile(r"[^\s\p{P}\p{S}]+|[\p{P}\p{S}]")


class HysoSimpleTokenizer(SpecialRoles):
    """Whitespace (optionally punctuation-splitting) word tokenizer.

    Special tokens take the first ids; ``token_id(role)`` and the ``pad_token_id``
    ... ``mask_token_id`` properties give them. Words outside the vocabulary
    encode to ``unk_token_id``.
    """

    def __init__(
        self,
        lowercase: bool = False,
        split_punctuation: bool = False,
        special_tokens: dict[str, str] | None = None,
    ) -> None:
        self.lowercase = bool(lowercase)
        self.split_punctuation = bool(split_punctuation)
        specials = dict(SIMPLE_SPECIAL_TOKENS if special_tokens is None else special_tokens)
        if "unk" not in specials:
            raise ValueError("special_tokens needs an 'unk' entry for unknown words")
        if len(set(specials.values())) != len(specials):
            raise ValueError(f"special token texts must be distinct, got {specials}")
        self._roles = specials
        self._set_vocab(list(specials.values()))

    def _set_vocab(self, tokens: list[str]) -> None:
        self._id_to_token = tokens
        self._token_to_id = {t: i for i, t in enumerate(tokens)}
        if len(self._token_to_id) != len(tokens):
            raise ValueError("vocabulary tokens must be distinct")
        self._role_ids = {role: self._token_to_id[t] for role, t in self._roles.items()}
        self._unk = self._role_ids["unk"]
        self._special_ids = set(self._role_ids.values())

    @property
    def role_ids(self) -> dict[str, int]:
        """Role -> id of every special token."""
        return self._role_ids

    @property
    def vocab_size(self) -> int:
        """Number of ids, special tokens included."""
        return len(self._id_to_token)

    @property
    def vocab(self) -> dict[str, int]:
        """Token -> id."""
        return dict(self._token_to_id)

    @property
    def special_tokens(self) -> dict[str, str]:
        """Role -> token text."""
        return dict(self._roles)

    # ------------------------------------------------------------ vocabulary

    def tokenize(self, text: str) -> list[str]:
        """Split ``text`` into words (and punctuation marks when splitting it)."""
        if not isinstance(text, str):
            raise TypeError(f"text must be str, got {type(text).__name__}")
        if self.lowercase:
            text = text.lower()
        return _PUNCT_SPLIT.findall(text) if self.split_punctuation else text.split()

    def build_vocab(
        self, texts: Iterable[str], min_freq: int = 1, max_size: int | None = None
    ) -> HysoSimpleTokenizer:
        """Vocabulary by descending frequency (ties: alphabetical), specials first.

        ``min_freq`` drops rarer words; ``max_size`` caps the total size,
        special tokens included.
        """
        if not isinstance(min_freq, int) or min_freq < 1:
            raise ValueError(f"min_freq must be an int >= 1, got {min_freq!r}")
        n_special = len(self._roles)
        if max_size is not None and (not isinstance(max_size, int) or max_size < n_special):
            raise ValueError(
                f"max_size must be an int >= {n_special} (the special tokens), got {max_size!r}"
            )
        if isinstance(texts, str):
            texts = [texts]
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(self.tokenize(text))
        specials = list(self._roles.values())
        for t in specials:
            counts.pop(t, None)
        words = sorted(
            (w for w, c in counts.items() if c >= min_freq), key=lambda w: (-counts[w], w)
        )
        if max_size is not None:
            words = words[: max_size - n_special]
        self._set_vocab(specials + words)
        return self

    train = build_vocab

    # ------------------------------------------------------------ encode / decode

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        """Ids of the words of ``text`` (unknown words -> ``unk``); BOS/EOS if asked."""
        get = self._token_to_id.get
        unk = self._unk
        ids = [get(w, unk) for w in self.tokenize(text)]
        if add_special_tokens:
            bos, eos = self.bos_token_id, self.eos_token_id
            ids = ([bos] if bos is not None else []) + ids + ([eos] if eos is not None else [])
        return ids

    def encode_batch(
        self,
        texts: Sequence[str],
        add_special_tokens: bool = False,
        *,
        padding: bool | str = False,
        truncation: bool = False,
        max_length: int | None = None,
        padding_side: str = "right",
        return_attention_mask: bool = False,
        return_tensors: str | None = None,
    ) -> list[list[int]] | BatchEncoding:
        """Encode many texts; a :class:`BatchEncoding` when padding/masks/tensors are asked."""
        if isinstance(texts, str):
            raise TypeError("encode_batch takes a sequence of texts; use encode for one text")
        seqs = [self.encode(t, add_special_tokens) for t in texts]
        pad = self.pad_token_id
        if padding and pad is None:
            raise ValueError("padding needs a 'pad' special token, and this tokenizer has none")
        ids, masks = pad_batch(
            seqs, pad or 0, padding=padding, truncation=truncation, max_length=max_length,
            padding_side=padding_side,
        )  # fmt: skip
        if not (padding or return_attention_mask or return_tensors):
            return ids
        return BatchEncoding(
            as_tensors({"input_ids": ids, "attention_mask": masks}, return_tensors)
        )

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        """Words of ``ids`` joined by single spaces."""
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        ids = list(ids)
        n = len(self._id_to_token)
        for i in ids:
            if not 0 <= i < n:
                raise ValueError(f"token id {i} is out of range [0, {n})")
        if skip_special_tokens:
            ids = [i for i in ids if i not in self._special_ids]
        return " ".join([self._id_to_token[i] for i in ids])

    def decode_batch(
        self, batch: Iterable[Iterable[int]], skip_special_tokens: bool = False
    ) -> list[str]:
        """Decode each sequence of ``batch``."""
        if hasattr(batch, "tolist"):
            batch = batch.tolist()
        return [self.decode(ids, skip_special_tokens) for ids in batch]

    # ------------------------------------------------------------ masking

    def mask_tokens(
        self,
        ids: Any,
        probability: float = 0.15,
        generator: random.Random | Any | None = None,
    ) -> tuple[Any, Any]:
        """MLM masking: returns (inputs, labels).

        Each non-special position is chosen with ``probability``; a chosen one
        becomes ``mask`` 80% of the time, a random ordinary word 10%, itself
        10%. Labels hold the original id at chosen positions and -100 elsewhere.
        ``ids`` is a list of ids, a list of lists, or a torch tensor (then
        ``generator`` is a ``torch.Generator`` and tensors come back).
        """
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"probability must be in [0, 1], got {probability!r}")
        mask_id = self.mask_token_id
        if mask_id is None:
            raise ValueError(
                "mask_tokens needs a 'mask' special token, and this tokenizer has none"
            )
        ordinary = [i for i in range(self.vocab_size) if i not in self._special_ids]
        if hasattr(ids, "dim"):
            return self._mask_tensor(ids, probability, generator, mask_id)
        rng = generator if generator is not None else random.Random()
        if not isinstance(rng, random.Random):
            raise TypeError("for list input, generator must be a random.Random")
        nested = bool(ids) and isinstance(ids[0], (list, tuple))
        rows = [list(r) for r in ids] if nested else [list(ids)]
        inputs, labels = [], []
        for row in rows:
            inp, lab = [], []
            for tok in row:
                if tok in self._special_ids or rng.random() >= probability:
                    inp.append(tok)
                    lab.append(IGNORE_INDEX)
                    continue
                lab.append(tok)
                roll = rng.random()
                if roll < 0.8:
                    inp.append(mask_id)
                elif roll < 0.9 and ordinary:
                    inp.append(rng.choice(ordinary))
                else:
                    inp.append(tok)
            inputs.append(inp)
            labels.append(lab)
        return (inputs, labels) if nested else (inputs[0], labels[0])

    def _mask_tensor(self, ids: Any, probability: float, generator: Any, mask_id: int) -> Any:
        import torch

        special = torch.tensor(sorted(self._special_ids), device=ids.device)
        is_special = torch.isin(ids, special)
        gen = {"generator": generator} if generator is not None else {}
        chosen = (torch.rand(ids.shape, **gen, device=ids.device) < probability) & ~is_special
        labels = torch.where(chosen, ids, torch.full_like(ids, IGNORE_INDEX))
        roll = torch.rand(ids.shape, **gen, device=ids.device)
        inputs = ids.clone()
        inputs[chosen & (roll < 0.8)] = mask_id
        ordinary = torch.tensor(
            [i for i in range(self.vocab_size) if i not in self._special_ids], device=ids.device
        )
        swap = chosen & (roll >= 0.8) & (roll < 0.9)
        if len(ordinary):
            pick = torch.randint(0, len(ordinary), ids.shape, **gen, device=ids.device)
            inputs[swap] = ordinary[pick][swap]
        return inputs, labels

    # ------------------------------------------------------------ persistence

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write versioned JSON atomically; return the path."""
        fields = {
            "lowercase": self.lowercase,
            "split_punctuation": self.split_punctuation,
            "special_tokens": self._roles,
            "vocab": self._id_to_token,
        }
        return write_simple_json(Path(path), fields)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> HysoSimpleTokenizer:
        """Read a file written by :meth:`save`; a damaged or foreign file is a ValueError."""
        path = Path(path)
        doc = read_simple_json(path)
        where = f"tokenizer file {str(path)!r}"
        try:
            flags = {key: doc[key] for key in ("lowercase", "split_punctuation")}
            for key, value in flags.items():
                if not isinstance(value, bool):
                    raise ValueError(f"{key!r} must be true or false, got {value!r:.60}")
            specials = doc["special_tokens"]
            if not all(isinstance(v, str) for v in specials.values()):
                raise ValueError(
                    f"'special_tokens' must map roles to strings, got {specials!r:.60}"
                )
            tok = cls(**flags, special_tokens=dict(specials))
            vocab = doc["vocab"]
            if not isinstance(vocab, list) or not all(isinstance(t, str) for t in vocab):
                raise ValueError("'vocab' must be a list of strings")
            missing = [t for t in tok._roles.values() if t not in vocab]
            if missing:
                raise ValueError(f"special tokens {missing} are missing from 'vocab'")
            tok._set_vocab(list(vocab))
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"{where} is damaged: missing or malformed field {exc}") from None
        except ValueError as exc:
            raise ValueError(f"{where} is damaged: {exc}") from None
        return tok

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size}, lowercase={self.lowercase})"
