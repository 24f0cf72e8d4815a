"""The data half of ``hyso train``: corpus, cached BPE tokenizer, cached token arrays."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hyso.core.train.commands._common import FULL_HINT, CliError, require_tokenizer
from hyso.core.train.data.corpus import Corpus, Document, load_corpus
from hyso.core.train.data.pipeline import StreamedCorpus, prepare_shards
from hyso.core.train.data.token_cache import TokenCache, cache_key

__all__ = ["DEFAULT_VOCAB_SIZE", "PreparedData", "default_cache_dir", "prepare_data"]

DEFAULT_VOCAB_SIZE = 2048


@dataclass
class PreparedData:
    """Everything the training half needs from the data half."""

    corpus: Corpus | StreamedCorpus
    tokenizer: Any
    tokenizer_path: Path
    tokenizer_sha256: str
    tokenizer_cached: bool
    train_tokens: Any  # 1-D array of token ids (numpy memmap)
    val_tokens: Any
    tokens_cached: bool
    cache_dir: Path

    @property
    def val_bytes(self) -> int:
        """UTF-8 bytes of the validation text (documents joined by newlines)."""
        return self.corpus.val_bytes

    def manifest_record(self) -> dict[str, Any]:
        """What the manifest keeps: the corpus fingerprint and tokenizer identity."""
        return {
            "fingerprint": self.corpus.fingerprint(),
            "tokenizer": {
                "type": type(self.tokenizer).__name__,
                "vocab_size": self.tokenizer.vocab_size,
                "sha256": self.tokenizer_sha256,
                "trained_on": "train split",
            },
            "train_tokens": len(self.train_tokens),
            "val_tokens": len(self.val_tokens),
            "val_bytes": self.val_bytes,
        }


def default_cache_dir() -> Path:
    """``$HYSO_CACHE_DIR``, else ``$XDG_CACHE_HOME/hyso``, else ``~/.cache/hyso``."""
    if os.environ.get("HYSO_CACHE_DIR"):
        return Path(os.environ["HYSO_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "hyso"


def prepare_data(
    data: dict[str, Any], log: Callable[[str], None] = print, workers: int | None = None
) -> PreparedData:
    """Load the corpus of ``data``, then the tokenizer and token arrays (cached).

    A user corpus (``data.paths``) is streamed into token shards by ``workers``
    processes (:mod:`hyso.core.train.data.pipeline`); the embedded corpus is read whole.
    """
    try:
        import numpy  # noqa: F401
    except ImportError:
        raise CliError(f"hyso train needs numpy for its token cache: {FULL_HINT}") from None
    tok_mod = require_tokenizer()
    vocab_size = data.get("vocab_size", DEFAULT_VOCAB_SIZE)
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 300:
        raise CliError(f"data.vocab_size must be an integer >= 300, got {vocab_size!r}")
    cache_dir = Path(os.path.expanduser(str(data.get("cache_dir") or default_cache_dir())))
    if data.get("paths"):
        shards = prepare_shards(data, cache_dir, tok_mod, vocab_size, workers=workers, log=log)
        return PreparedData(cache_dir=cache_dir, **shards.prepared_fields())
    corpus = load_corpus(data)
    fp = corpus.digest()
    tok_path = cache_dir / "tokenizers" / f"bpe-{fp[:16]}-v{vocab_size}.json"
    tokenizer, tok_cached = _load_or_train_tokenizer(tok_mod, corpus, vocab_size, tok_path, log)
    tok_sha = hashlib.sha256(tok_path.read_bytes()).hexdigest()
    eos = tokenizer.eos_token_id

    def build() -> dict[str, list[int]]:
        log(f"tokenizing {len(corpus.train)} + {len(corpus.val)} documents")
        return {
            "train": _encode_docs(tokenizer, corpus.train, eos),
            "val": _encode_docs(tokenizer, corpus.val, eos),
        }

    cache = TokenCache(cache_dir / "tokens")
    splits, hit = cache.get_or_build(cache_key(fp, tok_sha), build, tokenizer.vocab_size)
    return PreparedData(
        corpus=corpus,
        tokenizer=tokenizer,
        tokenizer_path=tok_path,
        tokenizer_sha256=tok_sha,
        tokenizer_cached=tok_cached,
        train_tokens=splits["train"],
        val_tokens=splits["val"],
        tokens_cached=hit,
        cache_dir=cache_dir,
    )


def _encode_docs(tokenizer: Any, docs: list[Document], eos: int) -> list[int]:
    """Each document's ids followed by ``eos`` (which stands for the joining newline)."""
    out: list[int] = []
    for ids in tokenizer.encode_batch([d.text for d in docs]):
        out.extend(ids)
        out.append(eos)
    return out


def _load_or_train_tokenizer(
    tok_mod: Any, corpus: Corpus, vocab_size: int, path: Path, log: Callable[[str], None]
) -> tuple[Any, bool]:
    if path.is_file():
        try:
            return tok_mod.HysoBPETokenizer.load(path), True
        except (OSError, ValueError) as exc:
            log(f"cached tokenizer {path} unreadable ({exc}); training a new one")
    log(
        f"training a byte-level BPE tokenizer (vocab {vocab_size}) on "
        f"{sum(d.num_bytes for d in corpus.train):,} bytes"
    )
    tokenizer = tok_mod.HysoBPETokenizer()
    tokenizer.train([d.text for d in corpus.train], vocab_size=vocab_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    tokenizer.save(path)  # versioned JSON, written atomically
    return tokenizer, False
