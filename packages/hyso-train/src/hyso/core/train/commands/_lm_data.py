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
from hyso.core.train.data.token_cache import TokenCache, cache_key

__all__ = ["DEFAULT_VOCAB_SIZE", "PreparedData", "default_cache_dir", "prepare_data"]

DEFAULT_VOCAB_SIZE = 2048


@dataclass
class PreparedData:
    """Everything the training half needs from the data half."""

    corpus: Corpus
    tokenizer: Any
    tokenizer_path: Path
    tokenizer_sha256: str
    tokenizer_cached: bool
    train_tokens: Any  # 1-D array of token ids (numpy memmap)
    val_tokens: Any
    tokens_cached: bool
    cache_dir: Path
    tokenizer_origin: str | None = None
    """Where a tokenizer that was given (``model.init_from``) came from; None: trained."""

    @property
    def val_bytes(self) -> int:
        """UTF-8 bytes of the validation text (documents joined by newlines)."""
        return len(self.corpus.val_text.encode("utf-8"))

    def manifest_record(self) -> dict[str, Any]:
        """What the manifest keeps: the corpus fingerprint and tokenizer identity."""
        return {
            "fingerprint": self.corpus.fingerprint(),
            "tokenizer": {
                "type": type(self.tokenizer).__name__,
                "vocab_size": self.tokenizer.vocab_size,
                "sha256": self.tokenizer_sha256,
                **(
                    {"trained_on": "train split"}
                    if self.tokenizer_origin is None
                    else {"from": self.tokenizer_origin}
                ),
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
    data: dict[str, Any],
    log: Callable[[str], None] = print,
    *,
    tokenizer: Any = None,
    tokenizer_origin: str | None = None,
) -> PreparedData:
    """Load the corpus of ``data``, then the tokenizer and token arrays (cached).

    A ``tokenizer`` given (from ``tokenizer_origin``) is used instead of training one;
    the token cache is keyed on its SHA-256 as saved, like a trained one.
    """
    try:
        import numpy  # noqa: F401
    except ImportError:
        raise CliError(f"hyso train needs numpy for its token cache: {FULL_HINT}") from None
    tok_mod = require_tokenizer()
    corpus = load_corpus(data)
    vocab_size = data.get("vocab_size", DEFAULT_VOCAB_SIZE)
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 300:
        raise CliError(f"data.vocab_size must be an integer >= 300, got {vocab_size!r}")
    cache_dir = Path(os.path.expanduser(str(data.get("cache_dir") or default_cache_dir())))
    fp = corpus.digest()
    if tokenizer is None:
        tok_path = cache_dir / "tokenizers" / f"bpe-{fp[:16]}-v{vocab_size}.json"
        tokenizer, tok_cached = _load_or_train_tokenizer(tok_mod, corpus, vocab_size, tok_path, log)
    else:
        tok_path, tok_cached = _save_given_tokenizer(tokenizer, cache_dir / "tokenizers"), True
    tok_sha = hashlib.sha256(tok_path.read_bytes()).hexdigest()
    eos = tokenizer.eos_token_id
    if eos is None:
        raise CliError(
            f"the tokenizer of {tokenizer_origin or tok_path} has no end-of-text token "
            "(eos): hyso train ends every document with it"
        )

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
        tokenizer_origin=tokenizer_origin,
    )


def _save_given_tokenizer(tokenizer: Any, folder: Path) -> Path:
    """Save ``tokenizer`` in hyso's format under a name made of its SHA-256 (what the
    run folder will hold, byte for byte); return the path."""
    folder.mkdir(parents=True, exist_ok=True)
    staging = folder / f"given-{os.getpid()}.json"
    tokenizer.save(staging)  # versioned JSON, written atomically
    digest = hashlib.sha256(staging.read_bytes()).hexdigest()
    path = folder / f"given-{digest[:16]}.json"
    os.replace(staging, path)
    return path


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
