"""Training data for the ``hyso`` command: corpora, the tokenized-data cache, windows
and bits-per-byte. numpy (for the cache) is imported only when the cache is used."""

from hyso.core.train.data.compression import bits_per_byte, gzip_bits_per_byte
from hyso.core.train.data.corpus import (
    Corpus,
    CorpusError,
    Document,
    load_corpus,
    stdlib_corpus,
    user_corpus,
)
from hyso.core.train.data.token_cache import TokenCache, cache_key

__all__ = [
    "Corpus",
    "CorpusError",
    "Document",
    "TokenCache",
    "bits_per_byte",
    "cache_key",
    "gzip_bits_per_byte",
    "load_corpus",
    "stdlib_corpus",
    "user_corpus",
]
