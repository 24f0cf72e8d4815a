"""Streaming readers for user corpora: documents come out one at a time, never a whole
file at once, so memory does not grow with the corpus.

Sources (``data.paths``): globs, files and folders (read recursively) of

- ``.txt``: cut into documents at blank lines. A document ends at the first blank line
  at least ``DOC_TARGET_BYTES`` after its start; failing one within ``DOC_MAX_BYTES``,
  at the last line end before that; failing that, at ``DOC_MAX_BYTES`` (moved back to a
  character boundary). The newline at a cut is dropped: the end-of-document token
  stands for it, so the documents joined by newlines are the file (a cut inside a line
  is the one exception). The cuts depend on the text alone, not on how it is read.
- ``.jsonl``: one document per line (an object with ``text_key``, or a JSON string),
  read line by line; a bad line is an error naming the file and line.
- ``.parquet``: one document per row of column ``text_key``, read in record batches
  through ``pyarrow`` (the optional extra ``hyso-train[parquet]``), imported only here.

The split is decided while streaming, document by document: a document goes to
validation while validation holds less than ``val_fraction`` of the bytes seen so far
(and training holds one already); otherwise to training. It depends only on the
documents and ``val_fraction``. The corpus fingerprint hashes every file's bytes, read
in blocks, together with the settings the documents and the split depend on.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hyso.core.train.data.corpus import CorpusError

__all__ = [
    "DOC_MAX_BYTES",
    "DOC_TARGET_BYTES",
    "STREAM_FORMAT_VERSION",
    "SUFFIXES",
    "SplitDecider",
    "StreamDocument",
    "corpus_fingerprint",
    "expand_sources",
    "iter_documents",
    "iter_split_documents",
]

STREAM_FORMAT_VERSION = 1
SUFFIXES = (".txt", ".jsonl", ".parquet")
DOC_TARGET_BYTES = 8 << 10
DOC_MAX_BYTES = 1 << 20
_BLOCK = 1 << 20
_PARQUET_ROWS = 1024


@dataclass(frozen=True)
class StreamDocument:
    """One document of a streamed corpus: where it came from and its text."""

    name: str
    text: str


def expand_sources(paths: str | Sequence[str]) -> list[Path]:
    """The files of ``data.paths`` (globs, files, folders), sorted and without repeats.

    A folder contributes its ``.txt``/``.jsonl``/``.parquet`` files at any depth; a file
    named or globbed directly must have one of those suffixes.
    """
    patterns = [paths] if isinstance(paths, str) else list(paths)
    if not patterns:
        raise CorpusError("data.paths: the list of globs is empty")
    files: set[Path] = set()
    for pattern in patterns:
        if not isinstance(pattern, str) or not pattern:
            raise CorpusError(f"data.paths: {pattern!r} is not a glob pattern string")
        matched = [Path(m) for m in glob.glob(os.path.expanduser(pattern), recursive=True)]
        found = 0
        for m in matched:
            if m.is_dir():
                inner = [p for p in m.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES]
                files.update(inner)
                found += len(inner)
            elif m.is_file():
                if m.suffix.lower() not in SUFFIXES:
                    raise CorpusError(
                        f"data.paths: {m} is not a .txt, .jsonl or .parquet file (glob {pattern!r})"
                    )
                files.add(m)
                found += 1
        if not found:
            raise CorpusError(f"data.paths: the glob {pattern!r} matches no file")
    return sorted(files)


def corpus_fingerprint(files: Sequence[Path], text_key: str, val_fraction: float) -> dict[str, Any]:
    """A JSON-able record of the files (size, SHA-256) and the settings; ``sha256`` is the
    digest that names the corpus's tokenizer and shards."""
    entries = []
    h = hashlib.sha256()
    head = (
        f"stream-v{STREAM_FORMAT_VERSION}\0{DOC_TARGET_BYTES}\0{DOC_MAX_BYTES}\0"
        f"{text_key}\0{val_fraction!r}\n"
    )
    h.update(head.encode())
    for path in files:
        digest, size = _file_sha256(path)
        entries.append({"file": str(path), "bytes": size, "sha256": digest})
        h.update(f"{path}\0{size}\0{digest}\n".encode())
    return {
        "format_version": STREAM_FORMAT_VERSION,
        "kind": "files",
        "files": entries,
        "text_key": text_key,
        "val_fraction": val_fraction,
        "bytes": sum(e["bytes"] for e in entries),
        "sha256": h.hexdigest(),
    }


def _file_sha256(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    try:
        with path.open("rb") as fh:
            while block := fh.read(_BLOCK):
                h.update(block)
                size += len(block)
    except OSError as exc:
        raise CorpusError(f"data.paths: cannot read {path}: {exc.strerror}") from None
    return h.hexdigest(), size


def iter_documents(files: Iterable[Path], text_key: str = "text") -> Iterator[StreamDocument]:
    """Every non-blank document of ``files``, in order, one at a time."""
    for path in files:
        suffix = path.suffix.lower()
        if suffix == ".txt":
            yield from _txt_documents(path)
        elif suffix == ".jsonl":
            yield from _jsonl_documents(path, text_key)
        elif suffix == ".parquet":
            yield from _parquet_documents(path, text_key)
        else:
            raise CorpusError(f"data.paths: {path} is not a .txt, .jsonl or .parquet file")


class SplitDecider:
    """The streaming train/validation split: ``decide(num_bytes)`` returns the split of
    the next document (see the module docstring)."""

    def __init__(self, val_fraction: float) -> None:
        self.val_fraction = val_fraction
        self.seen = 0
        self.val_bytes = 0
        self.train_docs = 0

    def decide(self, num_bytes: int) -> str:
        """``"train"`` or ``"val"`` for a document of ``num_bytes`` UTF-8 bytes."""
        self.seen += num_bytes
        if self.train_docs and self.val_bytes < self.val_fraction * self.seen:
            self.val_bytes += num_bytes
            return "val"
        self.train_docs += 1
        return "train"


def iter_split_documents(
    files: Sequence[Path], text_key: str, val_fraction: float
) -> Iterator[tuple[str, StreamDocument, int]]:
    """``(split, document, utf8_bytes)`` for every document, the split decided as it
    streams."""
    decider = SplitDecider(val_fraction)
    for doc in iter_documents(files, text_key):
        size = len(doc.text.encode("utf-8"))
        yield decider.decide(size), doc, size


# ---------------------------------------------------------------- .txt


def _txt_documents(path: Path) -> Iterator[StreamDocument]:
    offset = 0  # byte offset of buf[pos] in the file
    buf = b""
    pos = 0
    try:
        with path.open("rb") as fh:
            eof = False
            while True:
                if not eof and len(buf) - pos <= DOC_MAX_BYTES:
                    buf = buf[pos:]  # keep what is left, once per block read
                    pos = 0
                    while not eof and len(buf) <= DOC_MAX_BYTES:
                        block = fh.read(_BLOCK)
                        eof = not block
                        buf += block
                if pos >= len(buf):
                    return
                end, skip = _txt_cut(buf, pos, eof)
                text = _decode(buf[pos:end], path, offset)
                if text.strip():
                    yield StreamDocument(f"{path}#{offset}", text)
                offset += end + skip - pos
                pos = end + skip
    except OSError as exc:
        raise CorpusError(f"data.paths: cannot read {path}: {exc.strerror}") from None


def _txt_cut(buf: bytes, pos: int, eof: bool) -> tuple[int, int]:
    """Where the document starting at ``buf[pos]`` ends, and how many bytes the cut drops.

    ``buf`` holds more than ``DOC_MAX_BYTES`` bytes after ``pos`` unless the file ends
    within them."""
    limit = pos + DOC_MAX_BYTES
    blank = buf.find(b"\n\n", pos + max(0, DOC_TARGET_BYTES - 1), limit + 1)
    if blank >= 0:
        return blank + 1, 1  # keep the first newline, drop the second
    if eof and len(buf) <= limit:
        return len(buf), 0
    line = buf.rfind(b"\n", pos, limit)
    if line >= 0:
        return line, 1
    end = limit
    while end > pos and (buf[end] & 0xC0) == 0x80:  # not inside a UTF-8 character
        end -= 1
    return (end if end > pos else limit), 0


def _decode(data: bytes, path: Path, offset: int) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(
            f"data.paths: {path} is not valid UTF-8 (byte {offset + exc.start}: {exc.reason})"
        ) from None


# ---------------------------------------------------------------- .jsonl


def _jsonl_documents(path: Path, text_key: str) -> Iterator[StreamDocument]:
    try:
        with path.open("rb") as fh:
            for lineno, raw in enumerate(fh, 1):
                if not raw.strip():
                    continue
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise CorpusError(
                        f"data.paths: {path}:{lineno} is not valid UTF-8 "
                        f"(byte {exc.start} of the line: {exc.reason})"
                    ) from None
                text = _jsonl_text(line, path, lineno, text_key)
                if text.strip():
                    yield StreamDocument(f"{path}:{lineno}", text)
    except OSError as exc:
        raise CorpusError(f"data.paths: cannot read {path}: {exc.strerror}") from None


def _jsonl_text(line: str, path: Path, lineno: int, text_key: str) -> str:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise CorpusError(
            f"data.paths: {path}:{lineno} is not JSON ({exc.msg} at column {exc.colno})"
        ) from None
    value = record.get(text_key) if isinstance(record, dict) else record
    if not isinstance(value, str):
        raise CorpusError(
            f"data.paths: {path}:{lineno} has no string field {text_key!r} (set data.text_key)"
        )
    return value


# ---------------------------------------------------------------- .parquet


def _parquet_documents(path: Path, text_key: str) -> Iterator[StreamDocument]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise CorpusError(
            f"data.paths: {path} is a Parquet file; reading it needs pyarrow "
            "(pip install 'hyso-train[parquet]')"
        ) from None
    try:
        pf = pq.ParquetFile(path)
    except (OSError, ValueError) as exc:
        raise CorpusError(f"data.paths: {path} is not a readable Parquet file ({exc})") from None
    if text_key not in pf.schema_arrow.names:
        raise CorpusError(
            f"data.paths: {path} has no column {text_key!r} (columns: "
            f"{', '.join(pf.schema_arrow.names)}; set data.text_key)"
        )
    row = 0
    for batch in pf.iter_batches(batch_size=_PARQUET_ROWS, columns=[text_key]):
        for value in batch.column(0).to_pylist():
            row += 1
            if value is None:
                continue
            if not isinstance(value, str):
                raise CorpusError(
                    f"data.paths: {path} row {row}: column {text_key!r} holds "
                    f"{type(value).__name__}, not text"
                )
            if value.strip():
                yield StreamDocument(f"{path}#row{row}", value)
