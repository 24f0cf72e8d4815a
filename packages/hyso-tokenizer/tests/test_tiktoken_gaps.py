"""tiktoken vocabularies whose ids have gaps (cl100k_base and o200k_base put their special
tokens after unused ids): loaded with every token at its id, encoding as tiktoken does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tiktoken
from tokenizers import Tokenizer

from hyso.core.tokenizer import GPT2_PATTERN, HysoBPETokenizer
from hyso.core.tokenizer.fast import CL100K_PATTERN, O200K_PATTERN

from .test_hf_layouts import MULTILINGUAL


@pytest.fixture(scope="module")
def gapped(trained: HysoBPETokenizer) -> tuple[dict[bytes, int], dict[str, int]]:
    """Ranks with a hole (the last merge's id) and special tokens placed after unused ids,
    the way cl100k_base places <|endoftext|> at 100257 after 100256 ranks."""
    order = sorted(trained.to_tiktoken_ranks().items(), key=lambda item: item[1])
    m = len(order)  # ranks 0 .. m-1, then the last one is dropped: a hole at m-1
    ranks = {token: rank for rank, (token, _) in enumerate(order[:-1])}
    specials = {"<|endoftext|>": m + 1, "<|fim_prefix|>": m + 2, "<|endofprompt|>": m + 17}
    return ranks, specials


@pytest.mark.parametrize(
    "pattern", [GPT2_PATTERN, CL100K_PATTERN, O200K_PATTERN], ids=["gpt2", "cl100k", "o200k"]
)
def test_encoding_equals_tiktoken_with_and_without_specials(
    gapped: tuple[dict[bytes, int], dict[str, int]], corpus: list[str], pattern: str, backend: str
) -> None:
    ranks, specials = gapped
    enc = tiktoken.Encoding(
        "gapped", pat_str=pattern, mergeable_ranks=ranks, special_tokens=specials
    )
    ours = HysoBPETokenizer.from_tiktoken(
        ranks, special_tokens=specials, pattern=pattern, backend=backend
    )
    assert ours.backend == backend
    assert ours.vocab_size == enc.n_vocab == max(specials.values()) + 1
    assert len(ours.model.unused) == ours.vocab_size - len(ranks) - len(specials) == 16
    for text, token_id in specials.items():
        assert ours.token_to_id(text) == token_id
    with_specials = "<|endoftext|>a<|fim_prefix|> b <|endofprompt|>"
    for text in [*MULTILINGUAL, *corpus[:40], with_specials]:
        assert ours.encode(text) == enc.encode_ordinary(text), text
        allowed = enc.encode(text, allowed_special="all")
        assert ours.encode(text, allowed_special="all") == allowed, text
        assert ours.decode(allowed) == enc.decode(allowed) == text
    texts = [*MULTILINGUAL, with_specials]
    assert ours.encode_batch(texts) == enc.encode_ordinary_batch(texts, num_threads=1)
    assert ours.encode_batch(texts, allowed_special="all") == enc.encode_batch(
        texts, allowed_special="all", num_threads=1
    )
    some = {"<|fim_prefix|>"}
    assert ours.encode(with_specials, allowed_special=some) == enc.encode(
        with_specials, allowed_special=some, disallowed_special=()
    )


def test_an_unused_id_is_never_produced_and_decoding_it_is_an_error(
    gapped: tuple[dict[bytes, int], dict[str, int]],
) -> None:
    ranks, specials = gapped
    ours = HysoBPETokenizer.from_tiktoken(ranks, special_tokens=specials)
    unused = ours.model.unused
    hole = max(ranks.values()) + 1
    assert unused[0] == hole and unused[-1] == specials["<|endofprompt|>"] - 1
    for bad in (hole, unused[-1]):
        with pytest.raises(ValueError, match=f"token id {bad} is an unused id"):
            ours.decode([1, bad])
        with pytest.raises(ValueError, match=f"token id {bad} is an unused id"):
            ours.id_to_token(bad)
        with pytest.raises(ValueError, match=f"token id {bad} is an unused id"):
            ours.stream_decoder().feed(bad)
    text = " ".join(MULTILINGUAL)
    assert not set(ours.encode(text, allowed_special="all")) & set(unused)


def test_gaps_survive_own_and_hf_files(
    gapped: tuple[dict[bytes, int], dict[str, int]], tmp_path: Path
) -> None:
    ranks, specials = gapped
    ours = HysoBPETokenizer.from_tiktoken(ranks, special_tokens=specials)
    path = ours.save(tmp_path / "own.json")
    assert json.loads(path.read_text(encoding="utf-8"))["format_version"] == 2
    back = HysoBPETokenizer.load(path)
    assert back.model == ours.model and back.vocab_size == ours.vocab_size
    hf = Tokenizer.from_file(str(ours.to_hf(tmp_path / "tokenizer.json")))
    again = HysoBPETokenizer.from_hf(tmp_path / "tokenizer.json")
    assert again.model.unused == ours.model.unused
    text = "<|endoftext|>" + " ".join(MULTILINGUAL)
    ids = ours.encode(text, allowed_special="all")
    assert hf.encode(text).ids == ids == again.encode(text, allowed_special="all")


def test_too_many_unused_ids_are_refused(trained: HysoBPETokenizer) -> None:
    ranks = trained.to_tiktoken_ranks()
    far = len(ranks) + 1 + 70_000
    with pytest.raises(ValueError, match=r"'<\|endoftext\|>' is id \d+, .*at most 65536 ids may"):
        HysoBPETokenizer.from_tiktoken(ranks, {"<|endoftext|>": far})
