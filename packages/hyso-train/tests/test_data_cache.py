"""The tokenized-data cache, bits per byte and the training windows."""

from __future__ import annotations

import bz2
import gzip
import itertools
import json
import lzma
import math
import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hyso.core.train.data.compression import (
    bits_per_byte,
    compressors_stream_bits_per_byte,
    gzip_bits_per_byte,
    gzip_stream_bits_per_byte,
)
from hyso.core.train.data.token_cache import TokenCache, cache_key
from hyso.core.train.data.windows import IGNORE_INDEX, MaskedLMWindows, NextTokenWindows


def _splits(n: int = 500, vocab: int = 1000) -> dict[str, list[int]]:
    rng = random.Random(0)
    return {"train": [rng.randrange(vocab) for _ in range(n)], "val": [1, 2, 3]}


def test_cache_round_trip_is_memory_mapped(tmp_path: Path) -> None:
    cache = TokenCache(tmp_path)
    splits = _splits()
    cache.store("k1", splits, vocab_size=1000)
    loaded = cache.load("k1")
    assert loaded is not None
    assert isinstance(loaded["train"], np.memmap)
    assert loaded["train"].tolist() == splits["train"]
    assert loaded["val"].tolist() == [1, 2, 3]
    index = json.loads(cache.index_path("k1").read_text())
    assert index["format_version"] == 1
    assert index["splits"]["train"]["count"] == 500


def test_large_vocab_uses_wider_dtype(tmp_path: Path) -> None:
    cache = TokenCache(tmp_path)
    cache.store("k", {"train": [70_000, 5]}, vocab_size=80_000)
    assert cache.load("k")["train"].tolist() == [70_000, 5]


def test_out_of_range_ids_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"outside \[0, 10\)"):
        TokenCache(tmp_path).store("k", {"train": [3, 10]}, vocab_size=10)


def test_get_or_build_builds_once(tmp_path: Path) -> None:
    cache = TokenCache(tmp_path)
    calls = []

    def build() -> dict[str, list[int]]:
        calls.append(1)
        return _splits()

    first, hit1 = cache.get_or_build("key", build, 1000)
    second, hit2 = cache.get_or_build("key", build, 1000)
    assert (hit1, hit2) == (False, True)
    assert len(calls) == 1
    assert first["train"].tolist() == second["train"].tolist()


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete_bin", "bad_index", "version"])
def test_damaged_entry_is_rebuilt(tmp_path: Path, damage: str) -> None:
    cache = TokenCache(tmp_path)
    splits = _splits()
    cache.store("key", splits, 1000)
    bin_path = tmp_path / "key.train.bin"
    if damage == "flip":
        data = bytearray(bin_path.read_bytes())
        data[10] ^= 0xFF
        bin_path.write_bytes(bytes(data))
    elif damage == "truncate":
        bin_path.write_bytes(bin_path.read_bytes()[:-2])
    elif damage == "delete_bin":
        bin_path.unlink()
    elif damage == "bad_index":
        cache.index_path("key").write_text("{not json")
    else:
        index = json.loads(cache.index_path("key").read_text())
        index["format_version"] = 999
        cache.index_path("key").write_text(json.dumps(index))
    assert cache.load("key") is None
    rebuilt, hit = cache.get_or_build("key", lambda: splits, 1000)
    assert not hit
    assert rebuilt["train"].tolist() == splits["train"]


def test_cache_key_depends_on_corpus_and_tokenizer() -> None:
    keys = {cache_key("a", "t"), cache_key("b", "t"), cache_key("a", "u")}
    assert len(keys) == 3
    assert cache_key("a", "t") == cache_key("a", "t")


def test_no_temp_files_left_behind(tmp_path: Path) -> None:
    TokenCache(tmp_path).store("key", _splits(), 1000)
    assert sorted(os.listdir(tmp_path)) == ["key.json", "key.train.bin", "key.val.bin"]


def test_bits_per_byte_arithmetic() -> None:
    # one bit per token (ln 2 nats), one token per byte -> one bit per byte
    assert bits_per_byte(math.log(2), 100, 100) == pytest.approx(1.0)
    # four bytes per token at 2 bits per token -> half a bit per byte
    assert bits_per_byte(2 * math.log(2), 10, 40) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="num_bytes"):
        bits_per_byte(1.0, 1, 0)


def test_gzip_bits_per_byte_matches_gzip_and_orders_texts() -> None:
    text = "def f(x):\n    return x + 1\n" * 40
    expected = 8 * len(gzip.compress(text.encode(), compresslevel=9, mtime=0)) / len(text)
    assert gzip_bits_per_byte(text) == pytest.approx(expected)
    rng = random.Random(1)
    noise = bytes(rng.randrange(256) for _ in range(4000))
    assert gzip_bits_per_byte(noise) > 7.9
    assert gzip_bits_per_byte(text) < 1.0
    with pytest.raises(ValueError, match="empty"):
        gzip_bits_per_byte("")


TEXTS = st.binary(min_size=1, max_size=3000) | st.text(min_size=1, max_size=1500)
CUTS = st.lists(st.integers(min_value=0, max_value=3000), max_size=8)


def _cut(data: bytes | str, cuts: list[int]) -> list[bytes] | list[str]:
    """``data`` split at ``cuts`` (each taken modulo ``len(data) + 1``) into non-empty
    pieces of its own type."""
    bounds = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@given(TEXTS, CUTS)
def test_streamed_gzip_equals_one_shot_for_any_cut(data: bytes | str, cuts: list[int]) -> None:
    """Compressing piece by piece gives the one-shot ``gzip -9`` size to the byte."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    chunks = _cut(raw, cuts)
    assert gzip_stream_bits_per_byte(chunks) == (gzip_bits_per_byte(raw), len(raw))


def test_streamed_gzip_of_a_large_text_and_of_nothing() -> None:
    rng = random.Random(2)
    words = ["alpha", "beta", "gamma", "delta", "\n"]
    text = " ".join(rng.choice(words) for _ in range(200_000))  # 1.2 MB: several windows
    chunks = [text[i : i + 7777] for i in range(0, len(text), 7777)]
    assert gzip_stream_bits_per_byte(chunks) == (gzip_bits_per_byte(text), len(text))
    with pytest.raises(ValueError, match="empty"):
        gzip_stream_bits_per_byte([b"", ""])


def _one_shot_bits(raw: bytes) -> tuple[float, float, float]:
    """gzip -9, xz -9e and bzip2 -9 of ``raw`` in one call each, in bits per byte."""
    return (
        8 * len(gzip.compress(raw, compresslevel=9, mtime=0)) / len(raw),
        8 * len(lzma.compress(raw, preset=9 | lzma.PRESET_EXTREME)) / len(raw),
        8 * len(bz2.compress(raw, compresslevel=9)) / len(raw),
    )


@settings(max_examples=20, deadline=None)  # each xz -9e stream sets up a 64 MiB dictionary
@given(TEXTS, CUTS)
def test_streamed_references_equal_one_shot_for_any_cut(data: bytes | str, cuts: list[int]) -> None:
    """gzip, xz and bzip2 fed piece by piece give the one-shot sizes to the byte."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    got = compressors_stream_bits_per_byte(_cut(data, cuts))  # str pieces for a str
    assert (got.gzip, got.xz, got.bzip2) == _one_shot_bits(raw)
    assert got.num_bytes == len(raw)


def test_streamed_references_of_a_large_text_rank_the_compressors() -> None:
    rng = random.Random(3)
    words = ["def", "return", "self", "alpha", "beta", "(x)", ":", "\n    "]
    text = " ".join(rng.choice(words) for _ in range(250_000))  # ~1.1 MB: 2 bzip2 blocks
    chunks = [text[i : i + 9999] for i in range(0, len(text), 9999)]
    got = compressors_stream_bits_per_byte(chunks)
    raw = text.encode()
    assert (got.gzip, got.xz, got.bzip2) == _one_shot_bits(raw)
    assert got.num_bytes == len(raw) > 1_000_000
    assert got.gzip == gzip_stream_bits_per_byte(chunks)[0]
    assert got.xz < got.gzip  # a random word stream: LZMA's range coder beats DEFLATE
    rng_noise = random.Random(4)
    noise = bytes(rng_noise.randrange(256) for _ in range(20_000))
    noisy = compressors_stream_bits_per_byte([noise[:7000], noise[7000:]])
    assert min(noisy.gzip, noisy.xz, noisy.bzip2) > 7.9
    with pytest.raises(ValueError, match="compressors_stream_bits_per_byte: the text is empty"):
        compressors_stream_bits_per_byte([b"", ""])


@given(n=st.integers(min_value=0, max_value=300), seq_len=st.integers(min_value=1, max_value=40))
def test_next_token_windows_predict_each_token_once(n: int, seq_len: int) -> None:
    tokens = np.arange(n, dtype=np.uint16)
    ds = NextTokenWindows(tokens, seq_len)
    assert len(ds) == max(0, (n - 1) // seq_len)
    targets = [t for i in range(len(ds)) for t in ds[i][1].tolist()]
    assert targets == list(range(1, 1 + ds.num_targets))
    for i in range(len(ds)):
        x, y = ds[i]
        assert x.shape == y.shape == (seq_len,)
        assert torch.equal(x[1:], y[:-1])
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_masked_lm_windows_mask_and_label() -> None:
    tokens = np.arange(5, 5 + 64 * 10, dtype=np.uint16) % 300 + 5
    ds = MaskedLMWindows(tokens, 64, mask_id=4, vocab_size=300, mask_prob=0.15, seed=3)
    assert len(ds) == 10
    chosen_total = 0
    for i in range(len(ds)):
        x, y = ds[i]
        original = torch.from_numpy(tokens[i * 64 : (i + 1) * 64].astype("int64"))
        labelled = y != IGNORE_INDEX
        assert labelled.any()
        assert torch.equal(y[labelled], original[labelled])
        assert torch.equal(x[~labelled], original[~labelled])
        assert (x[labelled] == 4).float().mean() > 0.4
        chosen_total += int(labelled.sum())
        x2, y2 = ds[i]
        assert torch.equal(x, x2) and torch.equal(y, y2)
    assert 0.08 < chosen_total / (64 * 10) < 0.25
