"""The tiktoken encoder: chosen only where it gives the pure-Python ids, and forced off
by the environment; refused with the reason where asked for and not possible."""

from __future__ import annotations

import pytest

from hyso.core.tokenizer import HysoBPETokenizer
from hyso.core.tokenizer.bpe_model import BPEModel
from hyso.core.tokenizer.fast import BACKEND_ENV, tiktoken_blocker

from .conftest import on_backend
from .test_hf_layouts import MULTILINGUAL

A, B, C = ord("a"), ord("b"), ord("c")


def _abc_model(merges: list[tuple[int, int, int]]) -> BPEModel:
    return BPEModel(byte_ids=tuple(range(256)), merges=tuple(merges))


def test_auto_uses_tiktoken_and_the_environment_forces_python(
    trained: HysoBPETokenizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert HysoBPETokenizer(model=trained.model).backend == "tiktoken"
    monkeypatch.setenv(BACKEND_ENV, "python")
    assert HysoBPETokenizer(model=trained.model).backend == "python"
    assert HysoBPETokenizer(model=trained.model, backend="tiktoken").backend == "python"
    monkeypatch.setenv(BACKEND_ENV, "rust")
    with pytest.raises(ValueError, match=f"{BACKEND_ENV} may only be 'python'.*'rust'"):
        HysoBPETokenizer(model=trained.model)
    monkeypatch.delenv(BACKEND_ENV)
    with pytest.raises(ValueError, match=r"backend must be one of .*'fast'"):
        HysoBPETokenizer(model=trained.model, backend="fast")


def test_merges_that_tiktoken_ranks_would_change_stay_in_python() -> None:
    # "bc" is merged before "ab", so BPE leaves "a"+"bc" of "abc" and never merges them;
    # tiktoken would join any pair whose bytes are a token and give "abc".
    model = _abc_model([(B, C, 256), (A, B, 257), (257, C, 258)])
    tok = HysoBPETokenizer(model=model, special_tokens=None)
    assert tok.backend == "python"
    assert tok.encode("abc") == [A, 256]
    assert "ranks imply b'a' + b'bc'" in str(tiktoken_blocker(model, tok.pattern))
    with pytest.raises(ValueError, match=r"backend='tiktoken' cannot encode.*ranks imply"):
        HysoBPETokenizer(model=model, backend="tiktoken")


def test_a_vocabulary_with_huge_tokens_stays_in_python() -> None:
    # Eleven doublings of "a" make a 2,048-byte token: the check would re-merge it.
    merges = [(A, A, 256)] + [(256 + k, 256 + k, 257 + k) for k in range(10)]
    model = _abc_model(merges)
    tok = HysoBPETokenizer(model=model, special_tokens=None)
    assert "2048 bytes long" in str(tiktoken_blocker(model, tok.pattern))
    assert tok.backend == "python"
    assert tok.decode(tok.encode("a" * 5000)) == "a" * 5000


def test_merged_ids_out_of_merge_order_and_foreign_patterns_stay_in_python(
    trained: HysoBPETokenizer,
) -> None:
    swapped = _abc_model([(A, B, 257), (B, C, 256)])
    assert "do not grow in merge order" in str(tiktoken_blocker(swapped, trained.pattern))
    assert HysoBPETokenizer(model=swapped).backend == "python"
    words = HysoBPETokenizer(model=trained.model, pattern=r"\w+")
    assert words.backend == "python"
    with pytest.raises(ValueError, match="split pattern is not one of"):
        HysoBPETokenizer(model=trained.model, pattern=r"\w+", backend="tiktoken")


def test_normalisation_specials_and_batches_give_the_python_ids(corpus: list[str]) -> None:
    tok = HysoBPETokenizer(lowercase=True, normalize="NFKC", backend="python")
    tok.train([*corpus, *MULTILINGUAL], vocab_size=700)
    fast = on_backend(tok, "tiktoken")
    texts = [*MULTILINGUAL, *corpus[:60], "<eos>A<bos> ﬁ <pad>", "", "  \n"]
    for text in texts:
        for allowed in ((), "all", {"<bos>"}):
            assert fast.encode(text, True, allowed) == tok.encode(text, True, allowed), text
    kw = {"allowed_special": "all", "padding": True, "return_attention_mask": True}
    assert fast.encode_batch(texts, **kw) == tok.encode_batch(texts, **kw)
    assert fast.encode_batch(texts) == tok.encode_batch(texts)


def test_a_lone_surrogate_is_still_a_value_error(trained_on: HysoBPETokenizer) -> None:
    with pytest.raises(ValueError, match="lone surrogate U\\+D800 at index 2"):
        trained_on.encode("ab\ud800c")
    with pytest.raises(ValueError, match=r"texts\[1\] holds a lone surrogate"):
        trained_on.encode_batch(["ok", "x\udfff"])
