"""Encoding and decoding: round trips, special tokens, batches, seq2seq, the cache."""

from __future__ import annotations

import importlib.util
import unicodedata
from unittest.mock import patch

import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st

from hyso.core.tokenizer import HysoBPETokenizer, TorchMissingError, pretokenize
from hyso.core.tokenizer.pretokenize import GPT2_PATTERN, GPT2Splitter

# Every plane, controls, emoji, combining marks, Turkish dotted/dotless i; no surrogates.
unicode_text = st.lists(
    st.one_of(
        st.characters(blacklist_categories=("Cs",)),
        st.sampled_from(
            ["İ", "ı", "i̇", "\u0301", "😀", "👩‍👩‍👧", "\x00", "\x1c", "\r\n", " ", "'s"]
        ),
        st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF, blacklist_categories=("Cs",)),
    ),
    max_size=80,
).map("".join)

HAS_TORCH = importlib.util.find_spec("torch") is not None


@settings(max_examples=300, deadline=None)
@given(text=unicode_text)
def test_decode_inverts_encode_for_any_unicode(trained: HysoBPETokenizer, text: str) -> None:
    ids = trained.encode(text)
    assert trained.decode(ids) == text
    assert all(0 <= i < trained.vocab_size for i in ids)


@settings(max_examples=200, deadline=None)
@given(
    parts=st.lists(
        st.one_of(unicode_text, st.sampled_from(["word ", "x\n", "  \n", " Ünï ", "\n\n "])),
        max_size=40,
    )
)
def test_fast_splitter_matches_the_gpt2_pattern(parts: list[str]) -> None:
    text = "".join(parts) * 3  # long enough to take the segmented path
    assert GPT2Splitter().findall(text) == regex.findall(GPT2_PATTERN, text)


@settings(max_examples=200, deadline=None)
@given(
    parts=st.lists(
        st.one_of(
            unicode_text, st.sampled_from(["word ", "x\n", "  \n", " Ünï ", "\n\n ", "\r\n"])
        ),
        max_size=40,
    )
)
def test_line_splitter_matches_splitting_each_line(parts: list[str]) -> None:
    text = "".join(parts) * 3
    per_line = [p for line in regex.findall(r"[^\n]*\n|[^\n]+$", text)
                for p in regex.findall(GPT2_PATTERN, line)]  # fmt: skip
    assert GPT2Splitter(lines=True).findall(text) == per_line


@settings(max_examples=150, deadline=None)
@given(
    parts=st.lists(
        st.one_of(
            unicode_text,
            st.sampled_from(["word ", "x\n", "  \n", " plain text ", "\n\n ", "\t  ", " é"]),
        ),
        max_size=40,
    ),
    block=st.integers(min_value=1, max_value=300),
)
def test_splitter_blocks_do_not_change_the_pieces(parts: list[str], block: int) -> None:
    # A long text is split block by block, each cut at a safe point; a small block size
    # puts many cuts into short texts.
    text = "".join(parts) * 8
    per_line = [p for line in regex.findall(r"[^\n]*\n|[^\n]+$", text)
                for p in regex.findall(GPT2_PATTERN, line)]  # fmt: skip
    with patch.object(pretokenize, "_BLOCK", block):
        assert GPT2Splitter().findall(text) == regex.findall(GPT2_PATTERN, text)
        assert GPT2Splitter(lines=True).findall(text) == per_line


def test_long_mostly_ascii_text_splits_as_the_gpt2_pattern() -> None:
    # Blocks of the real size: ASCII ones go to ``re``, the few with other characters
    # to the mixed path; whitespace runs straddle the block size.
    words = ["the ", "river  ", "station,\n", "\n\n", "   end. ", "\t x "]
    plain = "".join(words[(k * 7) % len(words)] for k in range(12_000))
    assert GPT2Splitter().findall(plain) == regex.findall(GPT2_PATTERN, plain)
    text = plain[:30_000] + " Ünï — 中文 " + plain[30_000:61_000] + "é\u2003 " + plain[61_000:]
    assert len(text) > 4 * pretokenize._BLOCK
    assert GPT2Splitter().findall(text) == regex.findall(GPT2_PATTERN, text)
    blocks = list(GPT2Splitter().blocks(text))
    assert len(blocks) > 4
    assert [p for b in blocks for p in b] == regex.findall(GPT2_PATTERN, text)


def test_lone_surrogate_is_a_value_error(trained: HysoBPETokenizer) -> None:
    with pytest.raises(ValueError, match=r"lone surrogate U\+D800 at index 2"):
        trained.encode("ab\ud800cd")


def test_text_that_looks_special_is_ordinary_unless_allowed(trained: HysoBPETokenizer) -> None:
    text = "end<eos>start"
    plain = trained.encode(text)
    assert trained.eos_token_id not in plain
    assert trained.decode(plain) == text
    allowed = trained.encode(text, allowed_special={"<eos>"})
    assert allowed == [*trained.encode("end"), trained.eos_token_id, *trained.encode("start")]
    assert trained.encode(text, allowed_special="all") == allowed
    assert trained.encode(text, allowed_special={"<pad>"}) == plain
    with pytest.raises(ValueError, match="unknown special tokens"):
        trained.encode(text, allowed_special={"<nope>"})


def test_add_special_tokens_and_skip_on_decode(trained: HysoBPETokenizer) -> None:
    ids = trained.encode("hello", add_special_tokens=True)
    assert ids[0] == trained.bos_token_id and ids[-1] == trained.eos_token_id
    assert trained.decode(ids) == "<bos>hello<eos>"
    assert trained.decode(ids, skip_special_tokens=True) == "hello"


def test_user_added_special_tokens(trained: HysoBPETokenizer) -> None:
    tok = HysoBPETokenizer().train(["a b c"] * 3, vocab_size=270)
    (new_id,) = tok.add_special_tokens({"sep": "<|sep|>"})
    assert new_id == tok.vocab_size - 1 == tok.token_id("sep")
    assert tok.encode("a<|sep|>b", allowed_special="all")[1] == new_id
    with pytest.raises(ValueError, match="given twice"):
        tok.add_special_tokens({"other": "<|sep|>"})


def test_decode_rejects_ids_out_of_range(trained: HysoBPETokenizer) -> None:
    with pytest.raises(ValueError, match=rf"token id {trained.vocab_size} is out of range"):
        trained.decode([1, trained.vocab_size])
    with pytest.raises(ValueError, match="token id -1 is out of range"):
        trained.decode([-1])


def test_batch_padding_truncation_and_masks(trained: HysoBPETokenizer) -> None:
    texts = ["a much longer sentence than the other one", "short"]
    plain = trained.encode_batch(texts)
    assert plain == [trained.encode(t) for t in texts]
    n0, n1 = len(plain[0]), len(plain[1])
    right = trained.encode_batch(texts, padding=True)
    pad = trained.pad_token_id
    assert right["input_ids"][1] == plain[1] + [pad] * (n0 - n1)
    assert right.attention_mask[1] == [1] * n1 + [0] * (n0 - n1)
    left = trained.encode_batch(texts, padding="longest", padding_side="left")
    assert left["input_ids"][1] == [pad] * (n0 - n1) + plain[1]
    assert left["attention_mask"][1] == [0] * (n0 - n1) + [1] * n1
    cut = trained.encode_batch(texts, padding="max_length", truncation=True, max_length=4)
    assert cut["input_ids"] == [plain[0][:4], (plain[1] + [pad] * 4)[:4]]
    with pytest.raises(
        ValueError, match=rf"sequence 0 has length {n0}, which exceeds max_length 4"
    ):
        trained.encode_batch(texts, padding="max_length", max_length=4)
    with pytest.raises(ValueError, match="needs max_length"):
        trained.encode_batch(texts, padding="max_length")
    assert trained.decode_batch(right["input_ids"], skip_special_tokens=True) == texts


@pytest.mark.skipif(HAS_TORCH, reason="checks the error raised when torch is absent")
def test_return_tensors_without_torch_names_the_extra(trained: HysoBPETokenizer) -> None:
    with pytest.raises(TorchMissingError, match=r"hyso-tokenizer\[torch\]"):
        trained.encode_batch(["a", "bb"], padding=True, return_tensors="pt")


@pytest.mark.skipif(not HAS_TORCH, reason="needs torch")
def test_return_tensors_gives_long_tensors(trained: HysoBPETokenizer) -> None:
    out = trained.encode_batch(["a", "bb cc"], padding=True, return_tensors="pt")
    assert out["input_ids"].dtype.is_floating_point is False
    assert tuple(out["input_ids"].shape) == tuple(out["attention_mask"].shape)
    assert trained.decode_batch(out["input_ids"], skip_special_tokens=True) == ["a", "bb cc"]


def test_seq2seq_helpers(trained: HysoBPETokenizer) -> None:
    ids = trained.encode("river station")
    assert trained.encode_source("river station") == [*ids, trained.eos_token_id]
    dec_in, labels = trained.encode_target("river station")
    assert dec_in == [trained.bos_token_id, *ids]
    assert labels == [*ids, trained.eos_token_id]
    batch = trained.encode_target_batch(["river station", "a"])
    width = len(dec_in)
    assert batch["decoder_input_ids"][0] == dec_in
    assert batch["labels"][1][-1] == -100 and len(batch["labels"][1]) == width
    assert batch["decoder_attention_mask"][1] == [1, 1] + [0] * (width - 2)  # BOS + "a"
    src = trained.encode_source_batch(["river station", "a"])
    assert src["input_ids"][0] == [*ids, trained.eos_token_id]


def test_cache_is_bounded_and_does_not_change_ids(corpus: list[str]) -> None:
    # The word cache is the pure-Python encoder's.
    big = HysoBPETokenizer(cache_size=100_000, backend="python").train(corpus, vocab_size=500)
    small = HysoBPETokenizer(cache_size=10, backend="python").train(corpus, vocab_size=500)
    none = HysoBPETokenizer(cache_size=0, backend="python").train(corpus, vocab_size=500)
    text = " ".join(corpus[:100])
    n_pieces = len(set(regex.findall(GPT2_PATTERN, text)))
    assert n_pieces > 10
    assert big.encode(text) == small.encode(text) == none.encode(text)
    assert len(small._cache) <= 10
    assert len(none._cache) == 0
    assert len(big._cache) == n_pieces
    for line in corpus:  # many calls: the bound holds throughout
        small.encode(line)
        assert len(small._cache) <= 10
    with pytest.raises(ValueError, match="cache_size must be a non-negative int"):
        HysoBPETokenizer(cache_size=-1)


def test_whole_token_pieces_are_kept_outside_the_cache_bound(
    trained: HysoBPETokenizer, corpus: list[str]
) -> None:
    # With ignore_merges (tiktoken's rule) every token is a piece of its own: those stay
    # in the cache for good and do not count against its bound.
    ranks = trained.to_tiktoken_ranks()
    small = HysoBPETokenizer.from_tiktoken(ranks, cache_size=10, backend="python")
    none = HysoBPETokenizer.from_tiktoken(ranks, cache_size=0, backend="python")
    assert len(small._cache) == len(none._cache) == 0
    for line in corpus:
        assert small.encode(line) == none.encode(line) == trained.encode(line)
        assert len(small._cache) <= 10
    assert " the" in small._cache and " the" in none._cache
    # Many new pieces in one text: the young generation turns over while they are resolved.
    text = " ".join(corpus[:20] + [f"zq{k}w vx{k * 7}" for k in range(40)])
    assert small.encode(text) == none.encode(text) == trained.encode(text)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_stream_decoder_yields_whole_characters(
    trained: HysoBPETokenizer, data: st.DataObject
) -> None:
    text = data.draw(unicode_text)
    ids = trained.encode(text, add_special_tokens=data.draw(st.booleans()))
    stream = trained.stream_decoder()
    pieces = [stream.feed(i) for i in ids]
    assert "".join(pieces) + stream.flush() == trained.decode(ids)
    for piece in pieces:
        assert "\ufffd" not in piece  # nothing emitted mid-character


def test_stream_decoder_holds_back_a_split_character(trained: HysoBPETokenizer) -> None:
    byte_ids = [trained.token_to_id(bytes([b])) for b in "é".encode()]
    stream = trained.stream_decoder()
    assert stream.feed(byte_ids[0]) == ""
    assert stream.feed(byte_ids[1]) == "é"
    assert stream.feed(byte_ids[0]) == ""
    assert stream.flush() == "\ufffd"


def test_bad_arguments_are_clear_errors(trained: HysoBPETokenizer) -> None:
    with pytest.raises(ValueError, match="normalize must be one of"):
        HysoBPETokenizer(normalize="NFX")
    with pytest.raises(TypeError, match="text must be str"):
        trained.encode(b"bytes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="padding must be one of"):
        trained.encode_batch(["a"], padding="sideways")
    with pytest.raises(ValueError, match="return_tensors must be None or 'pt'"):
        trained.encode_batch(["a"], return_tensors="np")
    tok = HysoBPETokenizer(special_tokens={})
    assert tok.vocab_size == 256 and tok.pad_token_id is None
    with pytest.raises(ValueError, match="needs a 'pad' special token"):
        tok.encode_batch(["a", "bb"], padding=True)


# Code points unassigned in Python's Unicode tables: ``regex`` (newer tables) may call
# one a letter while HF's Oniguruma calls it a symbol (U+3D000), so the split differs.
assigned_text = unicode_text.map(
    lambda t: "".join("\ufffd" if unicodedata.category(c) == "Cn" else c for c in t)
)


@settings(max_examples=200, deadline=None)
@given(text=assigned_text)
def test_ids_match_hf_tokenizers_on_any_text(
    hf_twin: object, trained_on: HysoBPETokenizer, text: str
) -> None:
    ids = trained_on.encode(text, allowed_special="all")
    assert hf_twin.encode(text).ids == ids  # type: ignore[attr-defined]
    assert hf_twin.decode(ids, skip_special_tokens=False) == text  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def hf_twin(trained: HysoBPETokenizer, tmp_path_factory: pytest.TempPathFactory) -> object:
    import tokenizers

    path = trained.to_hf(tmp_path_factory.mktemp("hf") / "tokenizer.json")
    return tokenizers.Tokenizer.from_file(str(path))
