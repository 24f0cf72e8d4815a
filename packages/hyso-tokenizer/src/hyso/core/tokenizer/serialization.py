"""Every file format of the tokenizers, as plain functions over plain data.

Readers return plain data: a :class:`BPEModel` plus settings, as a dict of
``HysoBPETokenizer`` keyword arguments (``HysoBPETokenizer(**read_hf_json(path))``).
Writers take a model and settings. Formats: the tokenizers' own versioned JSON,
HF ``tokenizer.json`` (and a folder with ``tokenizer_config.json`` for
``transformers``), GPT-2 ``vocab.json`` + ``merges.txt`` and tiktoken's
``.tiktoken`` ranks. Ids are kept as the file gives them. A damaged or foreign
file is a ``ValueError`` naming it. Files are written atomically.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import replace
from itertools import chain
from pathlib import Path
from typing import Any

from .bpe_model import MAX_UNUSED_IDS, NO_MERGE, BPEModel, SpecialToken, merge_heap
from .bytes_map import bytes_to_token, token_to_bytes
from .pretokenize import GPT2_PATTERN, NORMALIZATIONS, make_normalizer, split_pattern

__all__ = [
    "BPE_FORMAT",
    "BPE_FORMAT_VERSIONS",
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
    "unused_ids",
    "write_bpe_json",
    "write_hf_folder",
    "write_hf_json",
    "write_simple_json",
    "write_tiktoken_ranks",
]

BPE_FORMAT = "hyso-bpe-tokenizer"
SIMPLE_FORMAT = "hyso-simple-tokenizer"
FORMAT_VERSION = 1  # the simple tokenizer's, and a BPE file's that needs nothing newer
# Version 2 of the BPE file adds unused ids, a template, ignore_merges and non-special
# added tokens; it is written only when a model has one of them.
BPE_FORMAT_VERSIONS = (1, 2)


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


def _check_format(
    doc: Any, name: str, where: str, versions: tuple[int, ...] = (FORMAT_VERSION,)
) -> dict[str, Any]:
    if not isinstance(doc, dict) or doc.get("format") != name:
        raise ValueError(f"{where} is not a {name} file (missing or wrong 'format')")
    version = doc.get("format_version")
    if version not in versions or isinstance(version, bool):
        readable = " and ".join(map(str, versions))
        raise ValueError(f"{where} has format_version {version!r}; this version reads {readable}")
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


def _check_id(value: Any, count: int, where: str, key: str, gaps: int = 0) -> int:
    """A token id: an integer in [0, count + gaps), checked before anything is sized by it."""
    _typed(value, int, where, key)
    if not 0 <= value < count + gaps:
        room = f"; at most {gaps} ids may be unused" if gaps else ""
        raise ValueError(
            f"{where}: {key} is id {value}, but the file has {count} tokens "
            f"(ids 0 to {count - 1}{room})"
        )
    return int(value)


def unused_ids(ids: Iterable[int]) -> tuple[int, ...]:
    """The ids below the largest of ``ids`` that none of them is (the vocabulary's gaps)."""
    present = set(ids)
    return tuple(i for i in range(max(present, default=-1) + 1) if i not in present)


# ---------------------------------------------------------------- explicit token tables


def model_from_table(
    id_to_bytes: Mapping[int, bytes],
    merges: Iterable[tuple[int, int, int]],
    specials: Iterable[tuple[str, str, int] | SpecialToken],
    **options: Any,
) -> BPEModel:
    """The model of a file that lists every token: the table must agree with the merges.

    Single bytes give the byte ids; each merge must join two listed tokens into a
    listed token, and every longer token must be built by a merge. Two ids with
    the same bytes are refused (which one encoding gives would be arbitrary).
    ``options`` are the other :class:`BPEModel` fields (``unused``, ``template``,
    ``ignore_merges``).
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
    model = BPEModel(
        tuple(byte_of[b] for b in range(256)), tuple(merges), tuple(specials), **options
    )
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
    newer: dict[str, Any] = {}
    if model.unused:
        newer["unused_ids"] = list(model.unused)
    if model.template is not None:
        newer["template"] = [list(model.template[0]), list(model.template[1])]
    if model.ignore_merges:
        newer["ignore_merges"] = True
    if model.aliases:
        newer["aliases"] = [list(a) for a in model.aliases]
    specials = [
        {"role": s.role, "content": s.text, "id": s.id, **({} if s.special else {"special": False})}
        for s in model.specials
    ]
    version = 2 if newer or not all(s.special for s in model.specials) else 1
    doc = {
        "format": BPE_FORMAT,
        "format_version": version,
        "lowercase": lowercase,
        "normalize": normalize,
        "pattern": pattern,
        "cache_size": cache_size,
        "special_tokens": specials,
        "tokens": [[i, bytes_to_token(data)] for i, data in sorted(model.token_bytes.items())],
        "merges": [list(m) for m in model.merges],
        **newer,
    }
    return atomic_write_text(path, json.dumps(doc, ensure_ascii=False, indent=0))


def _id_list(doc: dict[str, Any], key: str, count: int, where: str, at: str) -> tuple[int, ...]:
    """A list of token ids at ``doc[key]``, each checked against ``count``."""
    items = _typed(doc[key], list, where, at)
    return tuple(_check_id(i, count, where, f"{at}[{k}]") for k, i in enumerate(items))


def _read_newer_fields(doc: dict[str, Any], count: int, where: str) -> dict[str, Any]:
    """``unused``, ``template``, ``ignore_merges`` and ``aliases`` of a version 2 file
    (absent: defaults)."""
    out: dict[str, Any] = {}
    if "unused_ids" in doc:
        out["unused"] = _id_list(doc, "unused_ids", count, where, "'unused_ids'")
    if doc.get("template") is not None:
        parts = _typed(doc["template"], list, where, "'template'")
        if len(parts) != 2:
            raise ValueError(f"{where}: 'template' must be [ids before, ids after]")
        out["template"] = tuple(
            _id_list({"t": p}, "t", count, where, f"'template'[{k}]") for k, p in enumerate(parts)
        )
    if "ignore_merges" in doc:
        out["ignore_merges"] = _key(doc, "ignore_merges", bool, where)
    if "aliases" in doc:
        aliases = _typed(doc["aliases"], list, where, "'aliases'")
        for k, item in enumerate(aliases):
            if not isinstance(item, list) or len(item) != 2:
                raise ValueError(f"{where}: 'aliases'[{k}] must be [role, id], got {item!r:.60}")
            _typed(item[0], str, where, f"'aliases'[{k}][0]")
            _check_id(item[1], count, where, f"'aliases'[{k}][1]")
        out["aliases"] = tuple(tuple(item) for item in aliases)
    return out


def read_bpe_json(path: Path) -> dict[str, Any]:
    """Read a file written by :func:`write_bpe_json`: ``model`` and the settings.

    Every field is type-checked and every id checked against the number of
    tokens before anything is built from it.
    """
    where = f"tokenizer file {str(path)!r}"
    doc = _check_format(read_json(path, "tokenizer"), BPE_FORMAT, where, BPE_FORMAT_VERSIONS)
    raw_specials = _key(doc, "special_tokens", list, where)
    tokens = _key(doc, "tokens", list, where)
    declared = doc.get("unused_ids", [])
    count = len(tokens) + len(raw_specials) + (len(declared) if isinstance(declared, list) else 0)
    newer = _read_newer_fields(doc, count, where)
    specials = []
    for k, item in enumerate(raw_specials):
        at = f"'special_tokens'[{k}]"
        specials.append((
            _key(item, "role", str, where, at),
            _key(item, "content", str, where, at),
            _check_id(_key(item, "id", int, where, at), count, where, f"{at}['id']"),
            _key(item, "special", bool, where, at) if "special" in item else True,
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
        return {"model": model_from_table(id_to_bytes, merges, specials, **newer), **settings}
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
    "<|begin_of_text|>": "bos",
    "<eos>": "eos", "</s>": "eos", "[SEP]": "eos", "<|endoftext|>": "eos",
    "<|end_of_text|>": "eos",
    "<unk>": "unk", "[UNK]": "unk",
    "<mask>": "mask", "[MASK]": "mask",
}  # fmt: skip
# tokenizer_config.json keys of the roles, in the order a token named twice keeps them.
_CONFIG_ROLES = ("bos", "eos", "unk", "mask", "pad")


def _with_roles(
    tokens: Iterable[tuple[str, int, bool]], roles: Mapping[str, str] | None = None
) -> list[SpecialToken]:
    """(text, id, special) triples with a role each: the one ``roles`` (text -> role)
    gives, else the usual one for a known text while it is free, else the text."""
    roles = dict(roles or {})
    out: list[SpecialToken] = []
    taken: set[str] = set(roles.values())
    for text, token_id, special in tokens:
        role = roles.get(text)
        if role is None:
            role = _KNOWN_ROLES.get(text, text)
            role = role if role not in taken else text
        taken.add(role)
        out.append(SpecialToken(role, text, int(token_id), special))
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


def _hf_post_processor(model: BPEModel) -> dict[str, Any] | None:
    """HF's TemplateProcessing for ``model.template`` (None when there is none)."""
    if model.template is None or model.template == ((), ()):
        return None
    names = {s.id: s.text for s in model.specials}
    for i, data in model.token_bytes.items():
        names[i] = bytes_to_token(data)
    before, after = model.template

    def items(type_id: int, sequence: str) -> list[dict[str, Any]]:
        tokens = [{"SpecialToken": {"id": names[i], "type_id": type_id}} for i in before]
        tokens.append({"Sequence": {"id": sequence, "type_id": type_id}})
        return tokens + [{"SpecialToken": {"id": names[i], "type_id": type_id}} for i in after]

    return {
        "type": "TemplateProcessing",
        "single": items(0, "A"),
        "pair": items(0, "A") + items(1, "B"),
        "special_tokens": {
            names[i]: {"id": names[i], "ids": [i], "tokens": [names[i]]} for i in {*before, *after}
        },
    }


def write_hf_json(
    path: Path, model: BPEModel, *, lowercase: bool, normalize: str | None, pattern: str
) -> Path:
    """Write an HF ``tokenizer.json`` whose encode/decode give the same ids.

    ``model.template`` becomes a TemplateProcessing post-processor; a model
    without one gets none, so HF's ``add_special_tokens`` adds nothing.
    """
    specials = sorted(model.specials, key=lambda s: s.id)
    vocab: dict[str, int] = {s.text: s.id for s in specials}
    for i, data in sorted(model.token_bytes.items()):
        vocab[bytes_to_token(data)] = i
    token = model.token_bytes
    added = [
        {"id": s.id, "content": s.text, "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": s.special}
        for s in specials
    ]  # fmt: skip
    doc = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": _hf_normalizer(normalize, lowercase),
        "pre_tokenizer": _hf_pre_tokenizer(pattern),
        "post_processor": _hf_post_processor(model),
        "decoder": {**_BYTE_LEVEL, "use_regex": True},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": model.ignore_merges,
            "vocab": vocab,
            "merges": [
                [bytes_to_token(token[a]), bytes_to_token(token[b])] for a, b, _ in model.merges
            ],
        },
    }
    return atomic_write_text(path, json.dumps(doc, ensure_ascii=False, indent=1))


def write_hf_folder(
    folder: Path, model: BPEModel, *, lowercase: bool, normalize: str | None, pattern: str
) -> Path:
    """Write ``tokenizer.json`` and ``tokenizer_config.json`` into ``folder``, which
    ``transformers.AutoTokenizer`` loads (as ``PreTrainedTokenizerFast``) with the
    roles' tokens and the ids of ``encode`` with and without ``add_special_tokens``."""
    folder.mkdir(parents=True, exist_ok=True)
    wrapped = replace(model, template=model.template_ids())
    write_hf_json(
        folder / "tokenizer.json",
        wrapped,
        lowercase=lowercase,
        normalize=normalize,
        pattern=pattern,
    )
    text = {s.id: s.text for s in model.specials}
    roles = {role: text[i] for role, i in model.role_ids().items()}
    config: dict[str, Any] = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "clean_up_tokenization_spaces": False,
        **{f"{r}_token": roles[r] for r in _CONFIG_ROLES if r in roles},
    }
    atomic_write_text(folder / "tokenizer_config.json", json.dumps(config, indent=2) + "\n")
    return folder


_SENTENCEPIECE = (
    "is SentencePiece-style BPE (as Llama 2 and Mistral ship), which is not supported: "
    "only byte-level BPE (GPT-2, Llama 3, Qwen2 layouts) is read"
)


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
        elif kind in ("Prepend", "Replace"):
            raise ValueError(f"{where}: normalizer {kind!r} {_SENTENCEPIECE}")
        else:
            raise ValueError(f"{where}: normalizer {item!r:.120} is not supported")
    return normalize, lowercase


def _parse_pre_tokenizer(node: Any, where: str) -> str:
    kind = node.get("type") if isinstance(node, dict) else None
    if kind == "Metaspace" or node is None:
        name = "Metaspace" if node is not None else "null (no byte-level split)"
        raise ValueError(f"{where}: pre_tokenizer {name} {_SENTENCEPIECE}")
    if kind == "ByteLevel":
        if node.get("add_prefix_space") or not node.get("use_regex", True):
            raise ValueError(
                f"{where}: only ByteLevel(add_prefix_space=False, use_regex=True) is supported"
            )
        return GPT2_PATTERN
    items = node.get("pretokenizers", [])
    if (
        kind == "Sequence"
        and len(items) == 2
        and items[0].get("type") == "Split"
        and "Regex" in items[0].get("pattern", {})
        and items[0].get("behavior") == "Isolated"
        and not items[0].get("invert")
        and items[1].get("type") == "ByteLevel"
        and not items[1].get("use_regex")
        and not items[1].get("add_prefix_space")
    ):
        return _typed(items[0]["pattern"]["Regex"], str, where, "the Split pattern")
    raise ValueError(
        f"{where}: pre_tokenizer {kind!r} is not a byte-level split (ByteLevel, or a Sequence "
        "of Split(Regex, 'Isolated') and ByteLevel(use_regex=false))"
    )


def _template_side(items: list[Any], names: Mapping[str, Any], where: str) -> tuple[int, ...]:
    out: list[int] = []
    for item in items:
        name = item["SpecialToken"]["id"]
        ids = _typed(names[name]["ids"], list, where, f"post_processor special token {name!r}")
        out.extend(_typed(i, int, where, f"the ids of {name!r}") for i in ids)
    return tuple(out)


def _parse_template(node: dict[str, Any], where: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(ids before, ids after) of one HF post-processor that adds tokens."""
    kind = node.get("type")
    if kind in ("BertProcessing", "RobertaProcessing"):  # [CLS] A [SEP], <s> A </s>
        cls_id, sep_id = node["cls"][1], node["sep"][1]
        return (_typed(cls_id, int, where, "'cls'"),), (_typed(sep_id, int, where, "'sep'"),)
    single = _typed(node["single"], list, where, "the TemplateProcessing 'single'")
    at = [k for k, item in enumerate(single) if "Sequence" in item]
    if len(at) != 1 or single[at[0]]["Sequence"]["id"] != "A":
        raise ValueError(f"{where}: TemplateProcessing 'single' must hold the sequence A once")
    names = _typed(node["special_tokens"], dict, where, "'special_tokens'")
    k = at[0]
    return _template_side(single[:k], names, where), _template_side(single[k + 1 :], names, where)


def _parse_post_processor(node: Any, where: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The ids HF's ``add_special_tokens=True`` adds: (before, after) the text."""
    if node is None:
        return (), ()
    items = node.get("processors", []) if node.get("type") == "Sequence" else [node]
    template: tuple[tuple[int, ...], tuple[int, ...]] = ((), ())
    for item in items:
        kind = item.get("type")
        if kind == "ByteLevel":
            continue  # it changes offsets only
        if kind not in ("TemplateProcessing", "BertProcessing", "RobertaProcessing"):
            raise ValueError(f"{where}: post_processor {kind!r} is not supported")
        if template != ((), ()):
            raise ValueError(f"{where}: post_processor adds special tokens twice")
        template = _parse_template(item, where)
    return template


def _parse_bpe_options(model: dict[str, Any], where: str) -> bool:
    """Check the BPE model's options; return ``ignore_merges``."""
    if model.get("byte_fallback"):
        raise ValueError(f"{where}: 'model'['byte_fallback'] {_SENTENCEPIECE}")
    for key in ("continuing_subword_prefix", "end_of_word_suffix", "dropout"):
        if model.get(key):
            raise ValueError(f"{where}: 'model'[{key!r}] = {model[key]!r} is not supported")
    if "ignore_merges" not in model:
        return False
    return bool(_key(model, "ignore_merges", bool, where, "'model'"))


def _parse_decoder(node: Any, where: str) -> None:
    if node is not None and node.get("type") != "ByteLevel":
        kind = node.get("type")
        extra = f" {_SENTENCEPIECE}" if kind in ("Metaspace", "Sequence", "ByteFallback") else ""
        raise ValueError(f"{where}: decoder {kind!r} is not a ByteLevel decoder{extra}")


def _hf_merge(item: Any, where: str, key: str) -> tuple[str, str]:
    """One HF merge: ``"left right"`` or ``["left", "right"]``."""
    parts = item.split(" ") if isinstance(item, str) else item
    if not isinstance(parts, list) or len(parts) != 2 or not all(isinstance(p, str) for p in parts):
        raise ValueError(f"{where}: {key} must be 'left right' or [left, right], got {item!r:.60}")
    return parts[0], parts[1]


def _hf_added(doc: dict[str, Any], where: str, normalizes: bool) -> list[tuple[str, Any, bool]]:
    """(content, id, special) of each added token, type-checked (the caller checks ids)."""
    added = doc.get("added_tokens") or []
    _typed(added, list, where, "'added_tokens'")
    out = []
    for k, item in enumerate(added):
        at = f"'added_tokens'[{k}]"
        content = _key(item, "content", str, where, at)
        for flag in ("lstrip", "rstrip", "single_word"):
            if item.get(flag):
                raise ValueError(f"{where}: {at} ({content!r}) sets {flag!r}, not supported")
        if normalizes and item.get("normalized"):
            raise ValueError(
                f"{where}: {at} ({content!r}) is matched after normalisation "
                "('normalized': true with a normalizer), not supported"
            )
        special = _key(item, "special", bool, where, at) if "special" in item else True
        out.append((content, _key(item, "id", int, where, at), special))
    return out


def _config_roles(path: Path | None) -> list[tuple[str, str]]:
    """(role, token text) pairs of a ``tokenizer_config.json`` (``bos_token`` ...), if given."""
    if path is None:
        return []
    where = f"tokenizer config file {str(path)!r}"
    config = _typed(read_json(path, "tokenizer config"), dict, where, "the top level")
    roles = []
    for role in _CONFIG_ROLES:
        value = config.get(f"{role}_token")
        if isinstance(value, dict):  # an AddedToken written out
            value = _key(value, "content", str, where, f"'{role}_token'")
        if value is not None:
            roles.append((role, _typed(value, str, where, f"'{role}_token'")))
    return roles


def _split_roles(
    roles: list[tuple[str, str]], added: list[tuple[str, Any, bool]], where: str
) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """A config's roles as text -> first role, and the (role, text) of second roles."""
    texts = {text for text, _, _ in added}
    first: dict[str, str] = {}
    more = []
    for role, text in roles:
        if text not in texts:
            raise ValueError(f"{where}: '{role}_token' {text!r} is no added token of the file")
        if text in first:
            more.append((role, text))
        else:
            first[text] = role
    return first, more


def _template_roles(
    template: tuple[tuple[int, ...], tuple[int, ...]],
    added: list[tuple[str, Any, bool]],
    roles: dict[str, str],
) -> None:
    """Without a config naming them, the one added token a template puts before the text
    is ``bos`` and the one after it ``eos`` (added to ``roles``, text -> role)."""
    text_of = {i: text for text, i, _ in added}
    for role, side in (("bos", template[0]), ("eos", template[1])):
        if role not in roles.values() and len(side) == 1 and side[0] in text_of:
            roles.setdefault(text_of[side[0]], role)


def _hf_paths(path: Path) -> tuple[Path, Path | None]:
    """``tokenizer.json`` and the ``tokenizer_config.json`` next to it (None if absent)."""
    file = path / "tokenizer.json" if path.is_dir() else path
    config = file.parent / "tokenizer_config.json"
    return file, config if file.name == "tokenizer.json" and config.is_file() else None


def read_hf_json(path: Path) -> dict[str, Any]:
    """Read an HF ``tokenizer.json`` of a byte-level BPE: ``model`` and the settings.

    ``path`` is the file or a folder holding it; a ``tokenizer_config.json`` beside
    it names the roles (``bos_token`` ...). Fields are type-checked and ids checked
    before anything is built; a problem is a ValueError naming the file and the key.
    """
    path, config = _hf_paths(path)
    config_roles = _config_roles(config)
    doc = read_json(path, "HF tokenizer")
    where = f"HF tokenizer file {str(path)!r}"
    _typed(doc, dict, where, "the top level")
    model = _key(doc, "model", dict, where)
    if model.get("type") != "BPE":
        raise ValueError(f"{where}: model type {model.get('type')!r} is not BPE")
    vocab: dict[str, Any] = _key(model, "vocab", dict, where, "'model'")
    raw_merges = _key(model, "merges", list, where, "'model'")
    ignore_merges = _parse_bpe_options(model, where)
    try:
        normalize, lowercase = _parse_normalizer(doc.get("normalizer"), where)
        pattern = _parse_pre_tokenizer(doc.get("pre_tokenizer"), where)
        template = _parse_post_processor(doc.get("post_processor"), where)
        _parse_decoder(doc.get("decoder"), where)
    except (KeyError, TypeError, AttributeError, IndexError) as exc:
        raise ValueError(f"{where}: malformed normalizer, pre_tokenizer, post_processor or "
                         f"decoder ({exc!r})") from None  # fmt: skip
    added = _hf_added(doc, where, normalize is not None or lowercase)
    roles, second_roles = _split_roles(
        config_roles, added, f"tokenizer config file {str(config)!r}"
    )
    _template_roles(template, added, roles)
    count = len(vocab) + sum(1 for text, _, _ in added if text not in vocab)
    specials = _with_roles(
        (
            (text, _check_id(i, count, where, f"'added_tokens'[{k}]['id']", MAX_UNUSED_IDS), sp)
            for k, (text, i, sp) in enumerate(added)
        ),
        roles,
    )
    special_ids = {s.id for s in specials}
    id_to_bytes = {}
    for text, i in vocab.items():
        key = f"'model'['vocab'][{text!r}]"
        token_id = _check_id(i, count, where, key, MAX_UNUSED_IDS)
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
        bpe = model_from_table(
            id_to_bytes,
            merges,
            specials,
            unused=unused_ids(chain(id_to_bytes, special_ids)),
            template=template,
            ignore_merges=ignore_merges,
            aliases=tuple((role, next(s.id for s in specials if s.text == text))
                          for role, text in second_roles),
        )  # fmt: skip
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
    """The model of tiktoken ``mergeable_ranks`` (a token's id is its rank).

    Ids no token or special token has (cl100k_base puts its special tokens after
    unused ids) become the model's unused ids; at most ``MAX_UNUSED_IDS`` of them.
    """
    specials = dict(special_tokens or {})
    count = len(ranks) + len(specials)
    for token, rank in ranks.items():
        _check_id(rank, count, "tiktoken ranks", f"the rank of {token!r:.40}", MAX_UNUSED_IDS)
    for text, token_id in specials.items():
        _check_id(token_id, count, "tiktoken special tokens", f"{text!r}", MAX_UNUSED_IDS)
    id_to_bytes = {r: t for t, r in ranks.items()}
    if len(id_to_bytes) != len(ranks):
        raise ValueError("tiktoken ranks are not unique")
    merges = []
    for rank in sorted(id_to_bytes):
        token = id_to_bytes[rank]
        if len(token) >= 2:
            left, right = _split_token(token, rank, ranks)
            merges.append((ranks[left], ranks[right], rank))
    # tiktoken looks a whole piece up before merging: ignore_merges.
    return model_from_table(
        id_to_bytes,
        merges,
        _with_roles((text, i, True) for text, i in specials.items()),
        unused=unused_ids(chain(id_to_bytes, specials.values())),
        ignore_merges=True,
    )


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
