"""Long pieces: the heap merge and the position-tracking trainer give the plain loops' results."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hyso.core.tokenizer import HysoBPETokenizer, bpe_model, bpe_train
from hyso.core.tokenizer.bpe_train import learn_merges

# Few characters, so long runs of mergeable pairs (and overlapping ones: "aaa") are common.
runs = st.text(alphabet="ab é", min_size=0, max_size=400)


@pytest.fixture(scope="module")
def runs_tok() -> HysoBPETokenizer:
    texts = ["a" * 300, "ab" * 200, "aab" * 50, "é" * 90, "ba" * 33 + "a" * 7, "a b é"]
    return HysoBPETokenizer().train(texts, vocab_size=400)


def _plain(tok: HysoBPETokenizer, piece: str) -> tuple[int, ...]:
    """The ids of ``piece`` from the plain loop alone (the reference)."""
    saved = bpe_model.LONG_PIECE
    bpe_model.LONG_PIECE = 1 << 62
    try:
        return tok._tables.encode_piece(piece)
    finally:
        bpe_model.LONG_PIECE = saved


@settings(max_examples=300, deadline=None)
@given(piece=runs)
def test_heap_merge_gives_the_plain_loops_ids(runs_tok: HysoBPETokenizer, piece: str) -> None:
    tables = runs_tok._tables
    ids = [tables.byte_id[b] for b in piece.encode("utf-8")]
    assert tuple(tables.merge_long(ids)) == _plain(runs_tok, piece)


@settings(max_examples=100, deadline=None)
@given(piece=st.text(min_size=0, max_size=200))
def test_heap_merge_on_any_text(trained: HysoBPETokenizer, piece: str) -> None:
    tables = trained._tables
    try:
        data = piece.encode("utf-8")
    except UnicodeEncodeError:
        return
    ids = [tables.byte_id[b] for b in data]
    assert tuple(tables.merge_long(ids)) == _plain(trained, piece)


def test_long_pieces_round_trip(runs_tok: HysoBPETokenizer) -> None:
    # Their time bound is a probe in tests/adversarial (a capped child process).
    for text in ("a" * 200_000, "ab" * 100_000, "é" * 100_000):
        assert runs_tok.decode(runs_tok.encode(text)) == text


word_counts = st.dictionaries(
    st.text(alphabet="abc d", min_size=1, max_size=150), st.integers(1, 5), max_size=12
)


@settings(max_examples=150, deadline=None)
@given(counts=word_counts)
def test_long_word_training_gives_the_plain_merges(counts: dict[str, int]) -> None:
    saved = bpe_train.LONG_WORD
    try:
        bpe_train.LONG_WORD = 1 << 62
        plain = learn_merges(counts, 256 + 60)
        bpe_train.LONG_WORD = 1  # every word of two or more symbols takes the tracked path
        tracked = learn_merges(counts, 256 + 60)
    finally:
        bpe_train.LONG_WORD = saved
    assert tracked.merges == plain.merges


def test_training_on_a_long_run_merges_it_whole(tmp_path: Path) -> None:
    # Its time bound is a probe in tests/adversarial (a capped child process).
    path = tmp_path / "one.txt"
    path.write_text("a" * 1_000_000 + "\n" + "ab" * 200_000 + "\n", encoding="utf-8")
    tok = HysoBPETokenizer().train(path, vocab_size=400, num_workers=1)
    assert tok.decode(tok.encode("a" * 1000)) == "a" * 1000
    assert Counter(map(len, map(tok.id_to_token, tok.encode("a" * 1024)))) == {1024: 1}
