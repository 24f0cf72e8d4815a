"""Interoperability: HF ``tokenizer.json``, GPT-2 ``vocab.json``/``merges.txt`` and
tiktoken rank files. Ids are kept as the source file gives them."""

from __future__ import annotations

import base64
import binascii
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .bytes_map import bytes_to_token, token_to_bytes
from .pretokenize import GPT2_PATTERN, NORMALIZATIONS
from .serialization import atomic_write_text, read_json

if TYPE_CHECKING:
    from .bpe import HysoBPETokenizer

__all__ = ["load_gpt2", "load_hf", "load_tiktoken", "save_hf", "save_tiktoken"]

_KNOWN_ROLES = {
    "<pad>": "pad", "[PAD]": "pad", "<|pad|>": "pad",
    "<bos>": "bos", "<s>": "bos", "[CLS]": "bos", "<|startoftext|>": "bos",
    "<eos>": "eos", "</s>": "eos", "[SEP]": "eos", "<|endoftext|>": "eos",
    "<unk>": "unk", "[UNK]": "unk",
    "<mask>": "mask", "[MASK]": "mask",
}  # fmt: skip


def _role_for(text: str, taken: set[str]) -> str:
    role = _KNOWN_ROLES.get(text, text)
    return role if role not in taken else text


# ---------------------------------------------------------------- HF tokenizer.json


def save_hf(tok: HysoBPETokenizer, path: Path) -> Path:
    """Write an HF ``tokenizer.json`` whose encode/decode match ``tok``."""
    specials = sorted((i, text) for text, i in tok.special_token_ids.items())
    vocab: dict[str, int] = {text: i for i, text in specials}
    for i, data in tok._id_to_bytes.items():
        vocab[bytes_to_token(data)] = i
    merges = [
        [bytes_to_token(tok._id_to_bytes[a]), bytes_to_token(tok._id_to_bytes[b])]
        for a, b, _ in tok.merges
    ]
    norms: list[dict[str, str]] = []
    if tok.normalize is not None:
        norms.append({"type": tok.normalize})
    if tok.lowercase:
        norms.append({"type": "Lowercase"})
    normalizer: dict[str, Any] | None = None
    if len(norms) == 1:
        normalizer = norms[0]
    elif norms:
        normalizer = {"type": "Sequence", "normalizers": norms}
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True}
    if tok.pattern == GPT2_PATTERN:
        pre: dict[str, Any] = {**byte_level, "use_regex": True}
    else:
        split = {
            "type": "Split",
            "pattern": {"Regex": tok.pattern},
            "behavior": "Isolated",
            "invert": False,
        }
        pre = {"type": "Sequence", "pretokenizers": [split, {**byte_level, "use_regex": False}]}
    doc = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {
                "id": i,
                "content": text,
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": False,
                "special": True,
            }
            for i, text in specials
        ],
        "normalizer": normalizer,
        "pre_tokenizer": pre,
        "post_processor": None,
        "decoder": {**byte_level, "use_regex": True},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": False,
            "vocab": vocab,
            "merges": merges,
        },
    }
    return atomic_write_text(path, json.dumps(doc, ensure_ascii=False, indent=1))


def _parse_normalizer(node: Any, where: str) -> tuple[str | None, bool]:
    if node is None:
        return None, False
    items = node.get("normalizers", []) if node.get("type") == "Sequence" else [node]
    normalize, lowercase = None, False
    for item in items:
        kind = item.get("type")
        if kind in NORMALIZATIONS and normalize is None and not lowercase:
            normalize = kind
        elif kind == "Lowercase":
            lowercase = True
        else:
            raise ValueError(f"{where}: normalizer {item!r} is not supported")
    return normalize, lowercase


def _parse_pre_tokenizer(node: Any, where: str) -> str:
    if not isinstance(node, dict):
        raise ValueError(f"{where}: pre_tokenizer must be ByteLevel, got {node!r}")
    if node.get("type") == "ByteLevel":
        if node.get("add_prefix_space") or not node.get("use_regex", True):
            raise ValueError(
                f"{where}: only ByteLevel(add_prefix_space=False, use_regex=True) is supported"
            )
        return GPT2_PATTERN
    items = node.get("pretokenizers", [])
    if (
        node.get("type") == "Sequence"
        and len(items) == 2
        and items[0].get("type") == "Split"
        and "Regex" in items[0].get("pattern", {})
        and items[0].get("behavior") == "Isolated"
        and not items[0].get("invert")
        and items[1].get("type") == "ByteLevel"
        and not items[1].get("use_regex")
        and not items[1].get("add_prefix_space")
    ):
        return str(items[0]["pattern"]["Regex"])
    raise ValueError(f"{where}: pre_tokenizer {node.get('type')!r} is not a byte-level split")


def load_hf(cls: type[HysoBPETokenizer], path: Path, cache_size: int) -> HysoBPETokenizer:
    """Read an HF ``tokenizer.json`` holding a byte-level BPE model."""
    doc = read_json(path, "HF tokenizer")
    where = f"HF tokenizer file {str(path)!r}"
    try:
        model = doc["model"]
        if model.get("type") != "BPE":
            raise ValueError(f"{where}: model type {model.get('type')!r} is not BPE")
        pattern = _parse_pre_tokenizer(doc.get("pre_tokenizer"), where)
        normalize, lowercase = _parse_normalizer(doc.get("normalizer"), where)
        vocab: dict[str, int] = model["vocab"]
        raw_merges = model["merges"]
        added = doc.get("added_tokens") or []
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{where} is not an HF tokenizer.json: missing field {exc}") from None
    specials: list[tuple[str, str, int]] = []
    taken: set[str] = set()
    special_ids = set()
    for entry in added:
        role = _role_for(entry["content"], taken)
        taken.add(role)
        specials.append((role, entry["content"], int(entry["id"])))
        special_ids.add(int(entry["id"]))
    id_to_bytes = {}
    for text, i in vocab.items():
        if i not in special_ids:
            id_to_bytes[i] = token_to_bytes(text)
    merges = []
    for k, m in enumerate(raw_merges):
        left, right = m.split(" ") if isinstance(m, str) else m
        try:
            merges.append((vocab[left], vocab[right], vocab[left + right]))
        except KeyError as exc:
            raise ValueError(
                f"{where}: merge {k} ({left!r}, {right!r}) names {exc} "
                "which is not in the vocabulary"
            ) from None
    return cls._from_parts(
        specials,
        id_to_bytes,
        merges,
        lowercase=lowercase,
        normalize=normalize,
        pattern=pattern,
        cache_size=cache_size,
    )


# ---------------------------------------------------------------- GPT-2 files


def load_gpt2(
    cls: type[HysoBPETokenizer], vocab_json: Path, merges_txt: Path, cache_size: int
) -> HysoBPETokenizer:
    """Read GPT-2's ``vocab.json`` and ``merges.txt``; ``<|endoftext|>`` becomes ``eos``."""
    vocab = read_json(vocab_json, "GPT-2 vocab")
    if not isinstance(vocab, dict):
        raise ValueError(f"GPT-2 vocab file {str(vocab_json)!r} must hold a JSON object")
    try:
        lines = merges_txt.read_text(encoding="utf-8").split("\n")
    except (FileNotFoundError, UnicodeDecodeError) as exc:
        raise ValueError(f"GPT-2 merges file {str(merges_txt)!r} cannot be read: {exc}") from None
    specials = []
    id_to_bytes = {}
    for text, i in vocab.items():
        if text == "<|endoftext|>":
            specials.append(("eos", text, int(i)))
        else:
            id_to_bytes[int(i)] = token_to_bytes(text)
    merges = []
    for n, line in enumerate(lines, 1):
        if not line or line.startswith("#version"):
            continue
        parts = line.split(" ")
        if len(parts) != 2 or parts[0] + parts[1] not in vocab:
            raise ValueError(f"GPT-2 merges file {str(merges_txt)!r} line {n}: bad merge {line!r}")
        left, right = parts
        if left not in vocab or right not in vocab:
            raise ValueError(f"GPT-2 merges file {str(merges_txt)!r} line {n}: unknown token")
        merges.append((vocab[left], vocab[right], vocab[left + right]))
    return cls._from_parts(specials, id_to_bytes, merges, cache_size=cache_size)


# ---------------------------------------------------------------- tiktoken ranks


def _read_ranks(path: Path) -> dict[bytes, int]:
    ranks = {}
    try:
        lines = path.read_text(encoding="ascii").splitlines()
    except (FileNotFoundError, UnicodeDecodeError) as exc:
        raise ValueError(f"tiktoken rank file {str(path)!r} cannot be read: {exc}") from None
    for n, line in enumerate(lines, 1):
        if not line:
            continue
        try:
            token, rank = line.split()
            ranks[base64.b64decode(token, validate=True)] = int(rank)
        except (ValueError, binascii.Error):
            raise ValueError(
                f"tiktoken rank file {str(path)!r} line {n}: expected 'base64 rank', got {line!r}"
            ) from None
    return ranks


def _split_token(token: bytes, rank: int, ranks: dict[bytes, int]) -> tuple[bytes, bytes]:
    """The two parts BPE with ranks below ``rank`` leaves of ``token``."""
    parts = [token[i : i + 1] for i in range(len(token))]
    while len(parts) > 2:
        best, at = rank, -1
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1])
            if r is not None and r < best:
                best, at = r, i
        if at < 0:
            break
        parts[at : at + 2] = [parts[at] + parts[at + 1]]
    if len(parts) != 2:
        raise ValueError(f"token {token!r} (rank {rank}) cannot be built from lower-ranked tokens")
    return parts[0], parts[1]


def load_tiktoken(
    cls: type[HysoBPETokenizer],
    ranks: str | os.PathLike[str] | dict[bytes, int],
    special_tokens: dict[str, int] | None,
    pattern: str,
    cache_size: int,
) -> HysoBPETokenizer:
    """Build from tiktoken ``mergeable_ranks``; a token's id is its rank."""
    table = ranks if isinstance(ranks, dict) else _read_ranks(Path(ranks))
    id_to_bytes = {r: t for t, r in table.items()}
    if len(id_to_bytes) != len(table):
        raise ValueError("tiktoken ranks are not unique")
    merges = []
    for rank in sorted(id_to_bytes):
        token = id_to_bytes[rank]
        if len(token) >= 2:
            left, right = _split_token(token, rank, table)
            merges.append((table[left], table[right], rank))
    taken: set[str] = set()
    specials = []
    for text, i in (special_tokens or {}).items():
        role = _role_for(text, taken)
        taken.add(role)
        specials.append((role, text, int(i)))
    return cls._from_parts(specials, id_to_bytes, merges, pattern=pattern, cache_size=cache_size)


def save_tiktoken(tok: HysoBPETokenizer, path: Path) -> Path:
    """Write ``base64(token) rank`` lines, the ``.tiktoken`` format (no specials)."""
    lines = [
        f"{base64.b64encode(data).decode('ascii')} {i}"
        for i, data in sorted(tok._id_to_bytes.items())
    ]
    return atomic_write_text(path, "\n".join(lines) + "\n")
