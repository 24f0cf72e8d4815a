"""Every file format of the tokenizers, as plain functions over plain data.

Readers return plain data: a :class:`BPEModel` plus settings, as a dict of
``HysoBPETokenizer`` keyword arguments (``HysoBPETokenizer(**read_hf_json(path))``).
Writers take a model and settings. Formats: the tokenizers' own versioned JSON,
HF ``tokenizer.json``, GPT-2 ``vocab.json`` + ``merges.txt`` and tiktoken's
``.tiktoken`` ranks. Ids are kept as the file gives them. A damaged or foreign
file is a ``ValueError`` naming it. Files are written atomically.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .bpe_model import NO_MERGE, BPEModel, SpecialToken, merge_heap
from .bytes_map import bytes_to_token, token_to_bytes
from .pretokenize import GPT2_PATTERN, NORMALIZATIONS, make_normalizer, split_pattern

__all__ = [
    "BPE_FORMAT",
    "FORMAT_VERSION",
    "SIMPLE_FORMAT",
    "atomic_write_text",
    "model_from_table",
    "read_bpe_json",
    "read_gpt2_files",
    "read_hf_json",
    "read_json",
    "read_simple_json",
    "read_tiktoken_ranks",
    "tiktoken_model",
    "tiktoken_ranks",
    "write_bpe_json",
    "write_hf_json",
    "write_simple_json",
    "write_tiktoken_ranks",
]

BPE_FORMAT = "hyso-bpe-tokenizer"
SIMPLE_FORMAT = "hyso-simple-tokenizer"
FORMAT_VERSION = 1


# ---------------------------------------------------------------- files


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` so a reader sees the old file or the whole new one.

    The project's scheme (as ``hyso.core.storage.atomic``, which this package may
    not import): a temp file ``.<name>.<pid>.<8 hex>.tmp`` in the same folder,
    written, fsynced, moved over ``path`` with ``os.replace``, then the folder fsynced.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    handle = open(tmp, "xb")
    try:
        handle.write(text.encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())
        handle.close()
        os.replace(tmp, path)
    except BaseException:
        handle.close()
        tmp.unlink(missing_ok=True)
        raise
    if os.name != "nt":  # Windows cannot open a folder to fsync it
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return path


def read_json(path: Path, what: str) -> Any:
    """Parse a JSON file, turning every failure into a ValueError naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"{what} file {str(path)!r} does not exist") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{what} file {str(path)!r} is not UTF-8 text: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what} file {str(path)!r} is not valid JSON: {exc}") from None


def _check_format(doc: Any, name: str, where: str) -> dict[str, Any]:
    if not isinstance(doc, dict) or doc.get("format") != name:
        raise ValueError(f"{where} is not a {name} file (missing or wrong 'format')")
    version = doc.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(
            f"{where} has format_version {version!r}; this version reads {FORMAT_VERSION}"
        )
    return doc


_KINDS = {bool: "true or false", int: "an integer", str: "a string", list: "a list",
          dict: "an object"}  # fmt: skip


def _typed(value: Any, kind: type, where: str, key: str) -> Any:
    """``value`` if it is a ``kind`` (an int is never a bool); else a ValueError naming ``key``."""
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise ValueError(f"{where}: {key} must be {_KINDS[kind]}, got {shown}")
    return value


def _key(doc: Any, key: str, kind: type, where: str, path: str = "") -> Any:
    """``doc[key]``, type-checked; a missing key is a ValueError naming it."""
    name = f"{path}{key!r}" if not path else f"{path}[{key!r}]"
    if not isinstance(doc, dict) or key not in doc:
        raise ValueError(f"{where} is damaged: missing or malformed field {name} (no such key)")
    return _typed(doc[key], kind, where, name)


def _check_id(value: Any, count: int, where: str, key: str) -> int:
    """A token id: an integer in [0, count), checked before anything is sized by it."""
    _typed(value, int, where, key)
    if not 0 <= value < count:
        raise ValueError(
            f"{where}: {key} is id {value}, but the file has {count} tokens (ids 0 to {count - 1})"
        )
    return int(value)


# ---------------------------------------------------------------- explicit token tables


def model_from_table(
    id_to_bytes: Mapping[int, bytes],
    merges: Iterable[tuple[int, int, int]],
    specials: Iterable[tuple[str, str, int]],
) -> BPEModel:
    """The model of a file that lists every token: the table must agree with the merges.

    Single bytes give the byte ids; each merge must join two listed tokens into a
    listed token, and every longer token must be built by a merge. Two ids with
    the same bytes are refused (which one encoding gives would be arbitrary).
    """
    if len(set(id_to_bytes.values())) != len(id_to_bytes):
        owner: dict[bytes, int] = {}
        for i, data in sorted(id_to_bytes.items()):
            other = owner.setdefault(data, i)
            if other != i:
                raise ValueError(f"ids {other} and {i} are both the token {data!r}")
    byte_of = {data[0]: i for i, data in id_to_bytes.items() if len(data) == 1}
    missing = [b for b in range(256) if b not in byte_of]
    if missing:
        raise ValueError(f"the vocabulary has no token for byte {missing[0]}")
    merges = list(merges)
    for a, b, new in merges:
        if a not in id_to_bytes or b not in id_to_bytes or new not in id_to_bytes:
            raise ValueError(f"merge ({a}, {b}) -> {new} names an id not in the vocabulary")
        if id_to_bytes[a] + id_to_bytes[b] != id_to_bytes[new]:
            raise ValueError(
                f"merge ({a}, {b}) -> {new} does not concatenate: "
                f"{id_to_bytes[a]!r} + {id_to_bytes[b]!r} != {id_to_bytes[new]!r}"
            )
    model = BPEModel(tuple(byte_of[b] for b in range(256)), tuple(merges), tuple(specials))
    extra = sorted(set(id_to_bytes) - set(model.token_bytes))
    if extra:
        raise ValueError(
            f"token {id_to_bytes[extra[0]]!r} (id {extra[0]}) is built by no merge "
            f"({len(extra)} such tokens); every token but the 256 bytes comes from a merge"
        )
    return model


# ---------------------------------------------------------------- own JSON


def write_bpe_json(
    path: Path,
    model: BPEModel,
    *,
    lowercase: bool,
    normalize: str | None,
    pattern: str,
    cache_size: int,
) -> Path:
    """Write ``model`` and its settings as the tokenizer's versioned JSON."""
    doc = {
        "format": BPE_FORMAT,
        "format_version": FORMAT_VERSION,
        "lowercase": lowercase,
        "normalize": normalize,
        "pattern": pattern,
        "cache_size": cache_size,
        "special_tokens": [{"role": s.role, "content": s.text, "id": s.id} for s in model.specials],
        "tokens": [[i, bytes_to_token(data)] for i, data in sorted(model.token_bytes.items())],
        "merges": [list(m) for m in model.merges],
    }
    return atomic_write_text(path, json.dumps(doc, ensure_ascii=False, indent=0))


def read_bpe_json(path: Path) -> dict[str, Any]:
    """Read a file written by :func:`write_bpe_json`: ``model`` and the settings.

    Every field is type-checked and every id checked against the number of
    tokens before anything is built from it.
    """
    where = f"tokenizer file {str(path)!r}"
    doc = _check_format(read_json(path, "tokenizer"), BPE_FORMAT, where)
    raw_specials = _key(doc, "special_tokens", list, where)
    tokens = _key(doc, "tokens", list, where)
    count = len(tokens) + len(raw_specials)
    specials = []
    for k, item in enumerate(raw_specials):
        at = f"'special_tokens'[{k}]"
        specials.append((
            _key(item, "role", str, where, at),
            _key(item, "content", str, where, at),
            _check_id(_key(item, "id", int, where, at), count, where, f"{at}['id']"),
        ))  # fmt: skip
    id_to_bytes: dict[int, bytes] = {}
    for k, item in enumerate(tokens):
        if not isinstance(item, list) or len(item) != 2:
            raise ValueError(f"{where}: 'tokens'[{k}] must be [id, token], got {item!r:.60}")
        token_id = _check_id(item[0], count, where, f"'tokens'[{k}][0]")
        if token_id in id_to_bytes:
            raise ValueError(f"{where}: 'tokens'[{k}] repeats id {token_id}")
        id_to_bytes[token_id] = token_to_bytes(_typed(item[1], str, where, f"'tokens'[{k}][1]"))
    merges = []
    for k, item in enumerate(_key(doc, "merges", list, where)):
        if not isinstance(item, list) or len(item) != 3:
            raise ValueError(f"{where}: 'merges'[{k}] must be [left, right, new], got {item!r:.60}")
        merges.append(tuple(_typed(i, int, where, f"'merges'[{k}]") for i in item))
    normalize = doc.get("normalize")
    settings = {
        "lowercase": _key(doc, "lowercase", bool, where),
        "normalize": None if normalize is None else _key(doc, "normalize", str, where),
        "pattern": _key(doc, "pattern", str, where),
        "cache_size": _key(doc, "cache_size", int, where),
    }
    try:
        make_normalizer(settings["normalize"], settings["lowercase"])  # checks the values
        split_pattern(settings["pattern"])
        if settings["cache_size"] < 0:
            raise ValueError(f"cache_size must be a non-negative int, got {settings['cache_size']}")
        return {"model": model_from_table(id_to_bytes, merges, specials), **settings}
    except ValueError as exc:
        raise ValueError(f"{where} is damaged: {exc}") from None


def write_simple_json(path: Path, fields: dict[str, Any]) -> Path:
    """Write the word-level tokenizer's ``fields`` as versioned JSON."""
    doc = {"format": SIMPLE_FORMAT, "format_version": FORMAT_VERSION, **fields}
    return atomic_write_text(path, json.dumps(doc, ensure_ascii=False, indent=0))


def read_simple_json(path: Path) -> dict[str, Any]:
    """The fields of a file written by :func:`write_simple_json` (format checked)."""
    doc = read_json(path, "tokenizer")
    doc = _check_format(doc, SIMPLE_FORMAT, f"tokenizer file {str(path)!r}")
    return {k: v for k, v in doc.items() if k not in ("format", "format_version")}


# ---------------------------------------------------------------- HF tokenizer.json

_KNOWN_ROLES = {
    "<pad>": "pad", "[PAD]": "pad", "<|pad|>": "pad",
    "<bos>": "bos", "<s>": "bos", "[CLS]": "bos", "<|startoftext|>": "bos",
    "<eos>": "eos", "</s>": "eos", "[SEP]": "eos", "<|endoftext|>": "eos",
    "<unk>": "unk", "[UNK]": "unk",
    "<mask>": "mask", "[MASK]": "mask",
}  # fmt: skip


def _with_roles(specials: Iterable[tuple[str, int]]) -> list[SpecialToken]:
    """(text, id) pairs with a role each: the usual one for known texts, else the text."""
    out: list[SpecialToken] = []
    taken: set[str] = set()
    for text, token_id in specials:
        role = _KNOWN_ROLES.get(text, text)
        role = role if role not in taken else text
        taken.add(role)
        out.append(SpecialToken(role, text, int(token_id)))
    return out


def _hf_normalizer(normalize: str | None, lowercase: bool) -> dict[str, Any] | None:
    norms: list[dict[str, Any]] = []
    if normalize is not None:
        norms.append({"type": normalize})
    if lowercase:
        norms.append({"type": "Lowercase"})
    if len(norms) <= 1:
        return norms[0] if norms else None
    return {"type": "Sequence", "normalizers": norms}


_BYTE_LEVEL = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True}


def _hf_pre_tokenizer(pattern: str) -> dict[str, Any]:
    if pattern == GPT2_PATTERN:
        return {**_BYTE_LEVEL, "use_regex": True}
    split = {
        "type": "Split",
        "pattern": {"Regex": pattern},
        "behavior": "Isolated",
        "invert": False,
    }
    return {"type": "Sequence", "pretokenizers": [split, {**_BYTE_LEVEL, "use_regex": False}]}


def write_hf_json(
    path: Path, model: BPEModel, *, lowercase: bool, normalize: str | None, pattern: str
) -> Path:
    """Write an HF ``tokenizer.json`` whose encode/decode give the same ids."""
    specials = sorted((s.id, s.text) for s in model.specials)
    vocab: dict[str, int] = {text: i for i, text in specials}
    for i, data in sorted(model.token_bytes.items()):
        vocab[bytes_to_token(data)] = i
    token = model.token_bytes
    added = [
        {"id": i, "content": text, "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": True}
        for i, text in specials
    ]  # fmt: skip
    doc = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": _hf_normalizer(normalize, lowercase),
        "pre_tokenizer": _hf_pre_tokenizer(pattern),
        "post_processor": None,
        "decoder": {**_BYTE_LEVEL, "use_regex": True},
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
            "merges": [
                [bytes_to_token(token[a]), bytes_to_token(token[b])] for a, b, _ in model.merges
            ],
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


def _hf_merge(item: Any, where: str, key: str) -> tuple[str, str]:
    """One HF merge: ``"left right"`` or ``["left", "right"]``."""
    parts = item.split(" ") if isinstance(item, str) else item
    if not isinstance(parts, list) or len(parts) != 2 or not all(isinstance(p, str) for p in parts):
        raise ValueError(f"{where}: {key} must be 'left right' or [left, right], got {item!r:.60}")
    return parts[0], parts[1]


def _hf_specials(doc: dict[str, Any], where: str) -> list[tuple[str, Any]]:
    """(content, id) of each added token, type-checked (ids are checked by the caller)."""
    added = doc.get("added_tokens") or []
    _typed(added, list, where, "'added_tokens'")
    out = []
    for k, item in enumerate(added):
        at = f"'added_tokens'[{k}]"
        out.append((_key(item, "content", str, where, at), _key(item, "id", int, where, at)))
    return out


def read_hf_json(path: Path) -> dict[str, Any]:
    """Read an HF ``tokenizer.json`` of a byte-level BPE: ``model`` and the settings.

    Fields are type-checked and ids checked against the number of tokens before
    anything is built; a problem is a ValueError naming the file and the key.
    """
    doc = read_json(path, "HF tokenizer")
    where = f"HF tokenizer file {str(path)!r}"
    _typed(doc, dict, where, "the top level")
    model = _key(doc, "model", dict, where)
    if model.get("type") != "BPE":
        raise ValueError(f"{where}: model type {model.get('type')!r} is not BPE")
    vocab: dict[str, Any] = _key(model, "vocab", dict, where, "'model'")
    raw_merges = _key(model, "merges", list, where, "'model'")
    added = _hf_specials(doc, where)
    try:
        pattern = _parse_pre_tokenizer(doc.get("pre_tokenizer"), where)
        normalize, lowercase = _parse_normalizer(doc.get("normalizer"), where)
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{where}: malformed normalizer or pre_tokenizer ({exc})") from None
    count = len(vocab) + sum(1 for text, _ in added if text not in vocab)
    specials = _with_roles(
        (text, _check_id(i, count, where, f"'added_tokens'[{k}]['id']"))
        for k, (text, i) in enumerate(added)
    )
    special_ids = {s.id for s in specials}
    id_to_bytes = {}
    for text, i in vocab.items():
        token_id = _check_id(i, count, where, f"'model'['vocab'][{text!r}]")
        if token_id not in special_ids:
            id_to_bytes[token_id] = token_to_bytes(text)
    merges = []
    for k, item in enumerate(raw_merges):
        left, right = _hf_merge(item, where, f"'model'['merges'][{k}]")
        try:
            merges.append((vocab[left], vocab[right], vocab[left + right]))
        except KeyError as exc:
            raise ValueError(
                f"{where}: merge {k} ({left!r}, {right!r}) names {exc} "
                "which is not in the vocabulary"
            ) from None
    try:
        bpe = model_from_table(id_to_bytes, merges, specials)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    return {"model": bpe, "lowercase": lowercase, "normalize": normalize, "pattern": pattern}


# ---------------------------------------------------------------- GPT-2 files


def read_gpt2_files(vocab_json: Path, merges_txt: Path) -> dict[str, Any]:
    """Read GPT-2's ``vocab.json`` and ``merges.txt``; ``<|endoftext|>`` becomes ``eos``."""
    vocab = read_json(vocab_json, "GPT-2 vocab")
    if not isinstance(vocab, dict):
        raise ValueError(f"GPT-2 vocab file {str(vocab_json)!r} must hold a JSON object")
    where = f"GPT-2 merges file {str(merges_txt)!r}"
    try:
        lines = merges_txt.read_text(encoding="utf-8").split("\n")
    except (FileNotFoundError, UnicodeDecodeError) as exc:
        raise ValueError(f"{where} cannot be read: {exc}") from None
    specials = []
    id_to_bytes = {}
    vocab_where = f"GPT-2 vocab file {str(vocab_json)!r}"
    for text, i in vocab.items():
        token_id = _check_id(i, len(vocab), vocab_where, f"{text!r}")
        if text == "<|endoftext|>":
            specials.append(SpecialToken("eos", text, token_id))
        else:
            id_to_bytes[token_id] = token_to_bytes(text)
    merges = []
    for n, line in enumerate(lines, 1):
        if not line or line.startswith("#version"):
            continue
        parts = line.split(" ")
        if len(parts) != 2 or parts[0] + parts[1] not in vocab:
            raise ValueError(f"{where} line {n}: bad merge {line!r}")
        left, right = parts
        if left not in vocab or right not in vocab:
            raise ValueError(f"{where} line {n}: unknown token")
        merges.append((vocab[left], vocab[right], vocab[left + right]))
    try:
        return {"model": model_from_table(id_to_bytes, merges, specials)}
    except ValueError as exc:
        raise ValueError(
            f"GPT-2 files {str(vocab_json)!r} and {str(merges_txt)!r}: {exc}"
        ) from None


# ---------------------------------------------------------------- tiktoken ranks


def read_tiktoken_ranks(path: Path) -> dict[bytes, int]:
    """Read a ``.tiktoken`` file: ``base64(token) rank`` per line."""
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
    """The two parts BPE with ranks below ``rank`` leaves of ``token`` (O(n log n))."""

    def lower_rank(left: bytes, right: bytes) -> int:
        found = ranks.get(left + right, NO_MERGE)
        return found if found < rank else NO_MERGE

    parts = merge_heap([token[i : i + 1] for i in range(len(token))], lower_rank, _join)
    if len(parts) != 2:
        raise ValueError(f"token {token!r} (rank {rank}) cannot be built from lower-ranked tokens")
    return parts[0], parts[1]


def _join(left: bytes, right: bytes, rank: int) -> bytes:
    return left + right


def tiktoken_model(ranks: dict[bytes, int], special_tokens: dict[str, int] | None) -> BPEModel:
    """The model of tiktoken ``mergeable_ranks`` (a token's id is its rank)."""
    specials = dict(special_tokens or {})
    count = len(ranks) + len(specials)
    for token, rank in ranks.items():
        _check_id(rank, count, "tiktoken ranks", f"the rank of {token!r:.40}")
    for text, token_id in specials.items():
        _check_id(token_id, count, "tiktoken special tokens", f"{text!r}")
    id_to_bytes = {r: t for t, r in ranks.items()}
    if len(id_to_bytes) != len(ranks):
        raise ValueError("tiktoken ranks are not unique")
    merges = []
    for rank in sorted(id_to_bytes):
        token = id_to_bytes[rank]
        if len(token) >= 2:
            left, right = _split_token(token, rank, ranks)
            merges.append((ranks[left], ranks[right], rank))
    return model_from_table(id_to_bytes, merges, _with_roles(specials.items()))


def tiktoken_ranks(model: BPEModel) -> dict[bytes, int]:
    """tiktoken ``mergeable_ranks`` of ``model``: token bytes -> id (special tokens excluded)."""
    return {data: i for i, data in model.token_bytes.items()}


def write_tiktoken_ranks(path: Path, model: BPEModel) -> Path:
    """Write ``base64(token) rank`` lines, the ``.tiktoken`` format (no specials)."""
    lines = [
        f"{base64.b64encode(data).decode('ascii')} {i}"
        for i, data in sorted(model.token_bytes.items())
    ]
    return atomic_write_text(path, "\n".join(lines) + "\n")
