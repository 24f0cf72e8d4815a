"""A custom split pattern loses no text, gives HF ``Split``'s ids, and cannot hang."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hyso.core.tokenizer import HysoBPETokenizer, pretokenize
from hyso.core.tokenizer.bytes_map import bytes_to_token
from hyso.core.tokenizer.pretokenize import PatternSplitter

PATTERNS = (r"\w+", r"\w*", r"[a-z]+", r" ?\p{L}+", r"\s+", r"(?=a)")
SAMPLES = [
    "Hello, world! It's 42 o'clock...  ok\n",
    "a,,b  c\t\td!?",
    ",x, ",
    "naïve — 東京 😀!!",
    "",
]


@pytest.fixture(scope="module")
def word_tok(corpus: list[str]) -> HysoBPETokenizer:
    return HysoBPETokenizer(pattern=r"\w+").train(corpus, vocab_size=500)


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60))
def test_text_the_pattern_does_not_match_is_kept(word_tok: HysoBPETokenizer, text: str) -> None:
    assert word_tok.decode(word_tok.encode(text)) == text
    assert "".join(PatternSplitter(r"\w+")(text)) == text


def test_unmatched_text_is_its_own_piece() -> None:
    assert PatternSplitter(r"\w+")("a,,b  c!") == ["a", ",,", "b", "  ", "c", "!"]
    assert PatternSplitter(r"\w*")("a,,b") == ["a", ",", ",", "b"]  # empty matches split too
    assert PatternSplitter(r"\w+", lines=True)("a.\n.b\n") == ["a", ".\n", ".", "b", "\n"]


def test_ids_and_merges_match_hf_split(
    tmp_path: Path, corpus_factory: Callable[..., list[str]]
) -> None:
    import tokenizers
    from tokenizers import Regex, pre_tokenizers, trainers

    lines = corpus_factory(300, seed=5)
    for pattern in PATTERNS:
        ours = HysoBPETokenizer(pattern=pattern).train(lines, vocab_size=420)
        hf = tokenizers.Tokenizer.from_file(str(ours.to_hf(tmp_path / "tok.json")))
        for text in [*SAMPLES, *lines[:40]]:
            assert ours.encode(text) == hf.encode(text, add_special_tokens=False).ids, pattern
        fresh = tokenizers.Tokenizer(tokenizers.models.BPE())
        fresh.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(pattern), "isolated"),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
        trainer = trainers.BpeTrainer(
            vocab_size=420,
            special_tokens=list(ours.special_tokens.values()),
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        fresh.train_from_iterator(lines, trainer)
        hf_merges = [tuple(m) for m in json.loads(fresh.to_str())["model"]["merges"]]
        token = ours.model.token_bytes
        our_merges = [
            (bytes_to_token(token[a]), bytes_to_token(token[b])) for a, b, _ in ours.merges
        ]
        assert our_merges == hf_merges, pattern


def test_a_backtracking_pattern_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pretokenize, "PATTERN_BASE_SECONDS", 0.3)
    tok = HysoBPETokenizer(pattern=r"(a|aa)+$")
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"pattern '\(a\|aa\)\+\$' took over 0\.3 s"):
        tok.encode("a" * 40 + "b")  # minutes of backtracking without the time budget
    assert time.perf_counter() - start < 5
    with pytest.raises(ValueError, match="backtracking"):
        HysoBPETokenizer(pattern=r"(a|aa)+$").train(["a" * 40 + "b"], vocab_size=300)
