"""Streamed preparation of a user corpus: fingerprint, tokenizer, token shards.

Three passes over ``data.paths``, none of which holds the corpus: the fingerprint reads
every file's bytes in blocks; the tokenizer (unless cached) is trained on the training
documents as they stream, its word counting in worker processes; the shards are
written by :func:`~hyso.core.train.data.shards.write_shards`. The tokenizer and the
shards are cached under ``cache_dir``, named by the corpus fingerprint (and the
tokenizer's hash), so a second run reads them, and an interrupted one resumes.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hyso.core.train.data.corpus import CorpusError, check_val_fraction
from hyso.core.train.data.shards import (
    SHARD_BYTES,
    ShardedTokens,
    ShardWriteReport,
    load_shards,
    write_shards,
)
from hyso.core.train.data.stream import corpus_fingerprint, expand_sources, iter_split_documents
from hyso.core.train.data.token_cache import cache_key

__all__ = ["PreparedShards", "StreamedCorpus", "default_workers", "prepare_shards"]


def default_workers() -> int:
    """Processes that encode and count by default: up to 2 CPUs."""
    return min(2, os.cpu_count() or 1)


class StreamedCorpus:
    """A streamed corpus as ``hyso train`` records it: the fingerprint and split sizes,
    no text (the validation text is decoded from its shards when asked for)."""

    def __init__(self, index: dict[str, Any], val_tokens: ShardedTokens, tokenizer: Any) -> None:
        self.name = "files"
        self.index = index
        self._val_tokens = val_tokens
        self._tokenizer = tokenizer

    def digest(self) -> str:
        """The corpus fingerprint's SHA-256 (files, settings)."""
        return str(self.index["corpus"]["sha256"])

    def fingerprint(self) -> dict[str, Any]:
        """Files with their sizes and hashes, settings, and the split sizes."""
        splits = self.index["splits"]
        return {
            **self.index["corpus"],
            "split": "streamed by document, validation while under val_fraction of bytes",
            "train_docs": splits["train"]["docs"],
            "val_docs": splits["val"]["docs"],
            "train_bytes": splits["train"]["text_bytes"],
            "val_bytes": splits["val"]["text_bytes"],
        }

    @property
    def val_bytes(self) -> int:
        """UTF-8 bytes of the validation documents joined by newlines."""
        val = self.index["splits"]["val"]
        return int(val["text_bytes"]) + max(0, int(val["docs"]) - 1)

    @property
    def val_text(self) -> str:
        """The validation documents joined by newlines, decoded from the shards."""
        return "".join(self.val_chunks())

    def val_chunks(self) -> Iterator[str]:
        """:attr:`val_text` a document at a time (memory flat whatever the split's size)."""
        for k, ids in enumerate(self._val_tokens.documents()):
            yield ("\n" if k else "") + self._tokenizer.decode(ids[:-1].tolist())


@dataclass
class PreparedShards:
    """What :func:`prepare_shards` produced."""

    corpus: StreamedCorpus
    tokenizer: Any
    tokenizer_path: Path
    tokenizer_sha256: str
    tokenizer_cached: bool
    train_tokens: ShardedTokens
    val_tokens: ShardedTokens
    tokens_cached: bool
    directory: Path
    report: ShardWriteReport | None
    seconds: float

    def prepared_fields(self) -> dict[str, Any]:
        """The fields ``hyso train``'s prepared data shares with these."""
        names = (
            "corpus",
            "tokenizer",
            "tokenizer_path",
            "tokenizer_sha256",
            "tokenizer_cached",
            "train_tokens",
            "val_tokens",
            "tokens_cached",
        )
        return {name: getattr(self, name) for name in names}


def prepare_shards(
    data: Mapping[str, Any],
    cache_dir: Path,
    tok_mod: Any,
    vocab_size: int,
    *,
    workers: int | None = None,
    shard_bytes: int = SHARD_BYTES,
    log: Callable[[str], None] = print,
    given: tuple[Any, Path] | None = None,
) -> PreparedShards:
    """Fingerprint ``data.paths``, load or train the tokenizer, load or write the shards.

    ``given``: a tokenizer and the file it was saved to (``model.init_from``'s), used
    instead of training one.
    """
    start = time.perf_counter()
    workers = default_workers() if workers is None else workers
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    text_key = str(data.get("text_key", "text"))
    val_fraction = check_val_fraction(data.get("val_fraction", 0.1))
    files = expand_sources(data["paths"])
    fp = corpus_fingerprint(files, text_key, val_fraction)
    if given is None:
        tok_path = cache_dir / "tokenizers" / f"bpe-{fp['sha256'][:16]}-v{vocab_size}.json"
        what = f"the training documents of {fp['bytes']:,} bytes, streamed"
        texts = lambda: _train_texts(files, text_key, val_fraction)  # noqa: E731
        tokenizer, tok_cached = load_or_train_tokenizer(
            tok_mod, tok_path, vocab_size, texts, what, log, workers
        )
    else:
        (tokenizer, tok_path), tok_cached = given, True
    tok_sha = hashlib.sha256(tok_path.read_bytes()).hexdigest()
    key = cache_key(f"{fp['sha256']}\0shards\0{shard_bytes}", tok_sha)
    directory = cache_dir / "shards" / key
    loaded = load_shards(directory)
    report = None
    if loaded is None:
        log(f"tokenizing {fp['bytes']:,} bytes into shards in {directory} ({workers} workers)")
        docs = ((s, d.text, n) for s, d, n in iter_split_documents(files, text_key, val_fraction))
        header = {"key": key, "tokenizer_sha256": tok_sha, "corpus": fp}
        report = write_shards(
            directory,
            docs,
            tokenizer_path=tok_path,
            tokenizer_loader=tok_mod.HysoBPETokenizer.load,
            vocab_size=tokenizer.vocab_size,
            eos_id=tokenizer.eos_token_id,
            header=header,
            shard_bytes=shard_bytes,
            workers=workers,
            log=log,
        )
        loaded = load_shards(directory, verify=False)
        if loaded is None:  # pragma: no cover - only if the disk lies to us
            raise OSError(f"shards in {directory} unreadable right after writing them")
    _check_splits(loaded, files)
    return PreparedShards(
        corpus=StreamedCorpus(loaded, loaded["tokens"]["val"], tokenizer),
        tokenizer=tokenizer,
        tokenizer_path=tok_path,
        tokenizer_sha256=tok_sha,
        tokenizer_cached=tok_cached,
        train_tokens=loaded["tokens"]["train"],
        val_tokens=loaded["tokens"]["val"],
        tokens_cached=report is None,
        directory=directory,
        report=report,
        seconds=time.perf_counter() - start,
    )


def _check_splits(index: Mapping[str, Any], files: Sequence[Path]) -> None:
    counts = {s: index["splits"][s]["docs"] for s in ("train", "val")}
    if not counts["train"] or not counts["val"]:
        raise CorpusError(
            f"data.paths: the files {[str(f) for f in files]} hold {sum(counts.values())} "
            f"document(s) ({counts['train']} train, {counts['val']} validation); a "
            "train/validation split needs at least 2 (a .txt file is cut into documents "
            "at blank lines every 8 KiB or so)"
        )


def _train_texts(files: Sequence[Path], text_key: str, val_fraction: float) -> Iterator[str]:
    for split, doc, _ in iter_split_documents(files, text_key, val_fraction):
        if split == "train":
            yield doc.text


def load_or_train_tokenizer(
    tok_mod: Any,
    path: Path,
    vocab_size: int,
    texts: Callable[[], Iterable[str]],
    what: str,
    log: Callable[[str], None],
    workers: int | None = None,
) -> tuple[Any, bool]:
    """The cached tokenizer at ``path`` (and ``True``), or one trained on ``texts()``
    (described as ``what`` in the log), saved there (and ``False``)."""
    if path.is_file():
        try:
            return tok_mod.HysoBPETokenizer.load(path), True
        except (OSError, ValueError) as exc:
            log(f"cached tokenizer {path} unreadable ({exc}); training a new one")
    log(f"training a byte-level BPE tokenizer (vocab {vocab_size}) on {what}")
    tokenizer = tok_mod.HysoBPETokenizer()
    workers_kw = {} if workers is None else {"num_workers": workers}
    tokenizer.train(texts(), vocab_size=vocab_size, **workers_kw)
    path.parent.mkdir(parents=True, exist_ok=True)
    tokenizer.save(path)  # versioned JSON, written atomically
    return tokenizer, False
