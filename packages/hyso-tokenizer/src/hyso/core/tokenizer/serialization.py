"""Save/load HysoBPETokenizer as versioned JSON, written atomically."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .bytes_map import bytes_to_token, token_to_bytes

if TYPE_CHECKING:
    from .bpe import HysoBPETokenizer

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "atomic_write_text", "load_tokenizer", "save_tokenizer"]

FORMAT_NAME = "hyso-bpe-tokenizer"
FORMAT_VERSION = 1


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` via a temp file in the same folder, fsync and rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_tokenizer(tok: HysoBPETokenizer, path: Path) -> Path:
    """Serialise ``tok`` to ``path``."""
    doc = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "lowercase": tok.lowercase,
        "normalize": tok.normalize,
        "pattern": tok.pattern,
        "cache_size": tok.cache_size,
        "special_tokens": [
            {"role": role, "content": text, "id": tok.special_token_ids[text]}
            for role, text in tok.special_tokens.items()
        ],
        "tokens": [[i, bytes_to_token(data)] for i, data in sorted(tok._id_to_bytes.items())],
        "merges": [list(m) for m in tok.merges],
    }
    return atomic_write_text(path, json.dumps(doc, ensure_ascii=False, indent=0))


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


def load_tokenizer(cls: type[HysoBPETokenizer], path: Path) -> HysoBPETokenizer:
    """Read a file written by :func:`save_tokenizer`."""
    doc = read_json(path, "tokenizer")
    where = f"tokenizer file {str(path)!r}"
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME:
        raise ValueError(f"{where} is not a {FORMAT_NAME} file (missing or wrong 'format')")
    version = doc.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(
            f"{where} has format_version {version!r}; this version reads {FORMAT_VERSION}"
        )
    try:
        specials = [
            (str(s["role"]), str(s["content"]), _int(s["id"])) for s in doc["special_tokens"]
        ]
        id_to_bytes = {_int(i): token_to_bytes(t) for i, t in doc["tokens"]}
        merges = [(_int(a), _int(b), _int(n)) for a, b, n in doc["merges"]]
        config = {
            "lowercase": bool(doc["lowercase"]),
            "normalize": doc["normalize"],
            "pattern": str(doc["pattern"]),
            "cache_size": _int(doc["cache_size"]),
        }
        return cls._from_parts(specials, id_to_bytes, merges, **config)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{where} is damaged: missing or malformed field {exc}") from None
    except ValueError as exc:
        raise ValueError(f"{where} is damaged: {exc}") from None


def _int(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"expected an integer, got {value!r}")
    return value
