"""Training data for the ``hyso`` command: corpora, streamed user corpora and their token
shards, the tokenized-data cache, windows and bits-per-byte. numpy (for the cache and
the shards) is imported only when they are used."""

from hyso.core.train.data.compression import (
    bits_per_byte,
    gzip_bits_per_byte,
    gzip_stream_bits_per_byte,
)
from hyso.core.train.data.corpus import (
    Corpus,
    CorpusError,
    Document,
    load_corpus,
    stdlib_corpus,
    user_corpus,
)
from hyso.core.train.data.pipeline import prepare_shards
from hyso.core.train.data.shards import ShardedTokens, load_shards, write_shards
from hyso.core.train.data.stream import expand_sources, iter_documents
from hyso.core.train.data.token_cache import TokenCache, cache_key

__all__ = [
    "Corpus",
    "CorpusError",
    "Document",
    "ShardedTokens",
    "TokenCache",
    "bits_per_byte",
    "cache_key",
    "expand_sources",
    "gzip_bits_per_byte",
    "gzip_stream_bits_per_byte",
    "iter_documents",
    "load_corpus",
    "load_shards",
    "prepare_shards",
    "stdlib_corpus",
    "user_corpus",
    "write_shards",
]
