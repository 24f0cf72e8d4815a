"""Text corpora for language-model training: the embedded standard-library corpus and
user files, split into train and validation by file, with a reproducible fingerprint.

The embedded corpus is the Python standard library's own top-level ``.py`` files
(``sysconfig.get_paths()["stdlib"]``): it needs no download and no file outside
Python itself. Files are taken in a fixed pseudo-random order (SHA-256 of the file
name) up to a byte budget, then assigned to train or validation greedily by bytes,
so the selection and the split depend only on the Python installation and the
settings, never on the machine or the clock.

:func:`user_corpus` reads user files whole, for small corpora in a library program;
``hyso train`` and ``hyso prepare`` stream ``data.paths`` instead
(:mod:`hyso.core.train.data.stream` and :mod:`hyso.core.train.data.pipeline`).
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import sys
import sysconfig
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_MAX_BYTES",
    "FINGERPRINT_VERSION",
    "Corpus",
    "CorpusError",
    "Document",
    "check_max_bytes",
    "check_val_fraction",
    "expand_globs",
    "load_corpus",
    "split_by_bytes",
    "stdlib_corpus",
    "user_corpus",
]

FINGERPRINT_VERSION = 1
DEFAULT_MAX_BYTES = 2_000_000
_USER_SUFFIXES = (".txt", ".jsonl")


class CorpusError(ValueError):
    """A corpus setting or file is unusable; the message names the setting or file."""


@dataclass(frozen=True)
class Document:
    """One text document and where it came from."""

    name: str
    text: str
    sha256: str

    @property
    def num_bytes(self) -> int:
        """Size of the text in UTF-8 bytes."""
        return len(self.text.encode("utf-8"))


@dataclass
class Corpus:
    """Train and validation documents plus the fingerprint that identifies them."""

    name: str
    train: list[Document]
    val: list[Document]
    source: dict[str, Any] = field(default_factory=dict)

    @property
    def train_text(self) -> str:
        """The training documents joined by newlines."""
        return "\n".join(d.text for d in self.train)

    @property
    def val_text(self) -> str:
        """The validation documents joined by newlines."""
        return "\n".join(d.text for d in self.val)

    def val_chunks(self) -> Iterator[str]:
        """:attr:`val_text` a document at a time."""
        for k, doc in enumerate(self.val):
            yield ("\n" if k else "") + doc.text

    @property
    def val_bytes(self) -> int:
        """UTF-8 bytes of :attr:`val_text`, counted without joining the documents."""
        return sum(d.num_bytes for d in self.val) + max(0, len(self.val) - 1)

    def fingerprint(self) -> dict[str, Any]:
        """A JSON-able record of which documents form each split and their hashes."""
        return {
            "format_version": FINGERPRINT_VERSION,
            "name": self.name,
            "source": self.source,
            "train": [{"name": d.name, "sha256": d.sha256} for d in self.train],
            "val": [{"name": d.name, "sha256": d.sha256} for d in self.val],
            "train_bytes": sum(d.num_bytes for d in self.train),
            "val_bytes": sum(d.num_bytes for d in self.val),
            "sha256": self.digest(),
        }

    def digest(self) -> str:
        """SHA-256 over the split assignment and every document hash."""
        h = hashlib.sha256()
        for split, docs in (("train", self.train), ("val", self.val)):
            for d in docs:
                h.update(f"{split}\0{d.name}\0{d.sha256}\n".encode())
        return h.hexdigest()


def load_corpus(data: Mapping[str, Any] | None) -> Corpus:
    """Build the corpus a config's ``data`` section asks for.

    ``data.paths`` (a glob or list of globs of ``.txt``/``.jsonl`` files) selects user
    text; otherwise the embedded standard-library corpus is used, limited to
    ``data.max_bytes`` (default ``DEFAULT_MAX_BYTES``; null: every top-level module).
    ``data.val_fraction`` (default 0.1) is the share of bytes held out for validation.
    """
    data = dict(data or {})
    val_fraction = check_val_fraction(data.get("val_fraction", 0.1))
    paths = data.get("paths")
    if paths:
        return user_corpus(paths, val_fraction=val_fraction, text_key=data.get("text_key", "text"))
    max_bytes = check_max_bytes(data.get("max_bytes", DEFAULT_MAX_BYTES))
    return stdlib_corpus(max_bytes=max_bytes, val_fraction=val_fraction)


def stdlib_corpus(max_bytes: int | None = None, val_fraction: float = 0.1) -> Corpus:
    """The embedded corpus: top-level ``.py`` files of this Python's standard library."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(root.glob("*.py"), key=lambda p: (hashlib.sha256(p.name.encode()).digest(), p))
    docs: list[Document] = []
    total = 0
    for path in files:
        if max_bytes is not None and total >= max_bytes:
            break
        try:
            text = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue  # an unreadable stdlib file is skipped; the fingerprint records the rest
        doc = _document(path.name, text)
        docs.append(doc)
        total += doc.num_bytes
    if len(docs) < 2:
        raise CorpusError(
            f"data.max_bytes: the standard-library corpus at {root} gave {len(docs)} file(s); "
            "at least 2 are needed for a train/validation split"
        )
    train, val = split_by_bytes(docs, val_fraction)
    source = {
        "kind": "python-stdlib",
        "root": str(root),
        "python": ".".join(map(str, sys.version_info[:3])),
        "max_bytes": max_bytes,
        "val_fraction": val_fraction,
    }
    return Corpus("python-stdlib", train, val, source)


def user_corpus(
    paths: str | Sequence[str], val_fraction: float = 0.1, text_key: str = "text"
) -> Corpus:
    """A corpus from user globs of ``.txt`` (one document per file) and ``.jsonl`` files
    (one document per line: an object with ``text_key`` or a JSON string).

    Two or more files split by file; a single file splits its documents (or, for one
    document, its lines) so that validation text never appears in training.
    """
    patterns = [paths] if isinstance(paths, str) else list(paths)
    files = expand_globs(patterns)
    docs: list[Document] = []
    for path in files:
        docs.extend(_read_user_file(path, text_key))
    if not docs:
        raise CorpusError(f"data.paths: the files {[str(f) for f in files]} hold no text")
    if len(files) == 1:
        docs = _split_single(docs)
    train, val = split_by_bytes(docs, val_fraction)
    source = {
        "kind": "files",
        "paths": patterns,
        "files": [str(f) for f in files],
        "val_fraction": val_fraction,
    }
    return Corpus("files", train, val, source)


def expand_globs(patterns: Iterable[str], suffixes: tuple[str, ...] = _USER_SUFFIXES) -> list[Path]:
    """The files ``patterns`` match, sorted; a glob matching nothing, or a file whose
    suffix is not in ``suffixes``, is a ``CorpusError``."""
    files: set[Path] = set()
    for pattern in patterns:
        if not isinstance(pattern, str) or not pattern:
            raise CorpusError(f"data.paths: {pattern!r} is not a glob pattern string")
        matched = [Path(m) for m in glob.glob(os.path.expanduser(pattern), recursive=True)]
        matched = [m for m in matched if m.is_file()]
        if not matched:
            raise CorpusError(f"data.paths: the glob {pattern!r} matches no file")
        for m in matched:
            if m.suffix.lower() not in suffixes:
                kinds = " or ".join(suffixes)
                raise CorpusError(f"data.paths: {m} is not a {kinds} file (glob {pattern!r})")
            files.add(m)
    return sorted(files)


def _read_user_file(path: Path, text_key: str) -> list[Document]:
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(
            f"data.paths: {path} is not valid UTF-8 (byte {exc.start}: {exc.reason})"
        ) from None
    except OSError as exc:
        raise CorpusError(f"data.paths: cannot read {path}: {exc.strerror}") from None
    if path.suffix.lower() == ".txt":
        return [_document(str(path), text)] if text.strip() else []
    docs = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CorpusError(f"data.paths: {path}:{lineno} is not JSON ({exc.msg})") from None
        if isinstance(record, dict):
            value = record.get(text_key)
        else:
            value = record
        if not isinstance(value, str):
            raise CorpusError(
                f"data.paths: {path}:{lineno} has no string field {text_key!r} (set data.text_key)"
            )
        if value.strip():
            docs.append(_document(f"{path}:{lineno}", value))
    return docs


def _split_single(docs: list[Document]) -> list[Document]:
    """One file: split its documents, or a lone document's lines into parts."""
    if len(docs) >= 2:
        return docs
    (doc,) = docs
    lines = doc.text.splitlines(keepends=True)
    if len(lines) < 2:
        raise CorpusError(
            f"data.paths: {doc.name} holds one line; a train/validation split needs two "
            "files, two documents or two lines"
        )
    parts = max(2, min(20, len(lines)))
    step = -(-len(lines) // parts)
    out = []
    for i in range(0, len(lines), step):
        out.append(_document(f"{doc.name}#L{i + 1}", "".join(lines[i : i + step])))
    return out


def split_by_bytes(
    docs: list[Document], val_fraction: float
) -> tuple[list[Document], list[Document]]:
    """Greedy by bytes: a document goes to validation while validation is short of its
    share of the bytes seen so far. Both splits get at least one document."""
    train: list[Document] = []
    val: list[Document] = []
    seen = val_bytes = 0
    for doc in docs:
        seen += doc.num_bytes
        if val_bytes < val_fraction * seen and len(train) > 0:
            val.append(doc)
            val_bytes += doc.num_bytes
        else:
            train.append(doc)
    if not val:
        val.append(train.pop())
    return train, val


def _document(name: str, text: str) -> Document:
    return Document(name, text, hashlib.sha256(text.encode("utf-8")).hexdigest())


def check_val_fraction(value: Any) -> float:
    """``data.val_fraction`` checked: a number in (0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise CorpusError(f"data.val_fraction must be a number in (0, 1), got {value!r}")
    return float(value)


def check_max_bytes(value: Any) -> int | None:
    """``data.max_bytes`` checked: a positive integer or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise CorpusError(f"data.max_bytes must be a positive integer or null, got {value!r}")
    return value
