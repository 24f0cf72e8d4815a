"""to_hf(folder) gives a folder transformers.AutoTokenizer loads with the same special
tokens and the same ids, with and without add_special_tokens."""

from __future__ import annotations

from pathlib import Path

import pytest
from tokenizers import Tokenizer
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from hyso.core.tokenizer import HysoBPETokenizer

TEXTS = [
    "Hello, World! It's 2024: naïve café, Ürün, straße.",
    "東京は日本の首都です。مرحبا بالعالم ١٢٣",
    "emoji 😀🚀👍🏽 and code: def f(x):\n\treturn x ** 2  # sq",
    "spaces    runs\t\ttabs\n\n  digits 1234567 3.14",
    "a <mask> inside <eos> text",
]


@pytest.fixture(scope="module")
def trained() -> HysoBPETokenizer:
    lines = [t * 3 for t in TEXTS] + ["the quick brown fox jumps over the lazy dog"] * 5
    return HysoBPETokenizer().train(lines, vocab_size=520)


def test_auto_tokenizer_loads_the_special_tokens(trained: HysoBPETokenizer, tmp_path: Path) -> None:
    folder = trained.to_hf(tmp_path / "tok")
    assert sorted(p.name for p in folder.iterdir()) == ["tokenizer.json", "tokenizer_config.json"]
    hf = AutoTokenizer.from_pretrained(str(folder))
    assert isinstance(hf, PreTrainedTokenizerFast)
    for role in ("bos", "eos", "pad", "unk", "mask"):
        assert getattr(hf, f"{role}_token") == trained.special_tokens[role], role
        assert getattr(hf, f"{role}_token_id") == trained.token_id(role), role


def test_auto_tokenizer_gives_identical_ids(trained: HysoBPETokenizer, tmp_path: Path) -> None:
    hf = AutoTokenizer.from_pretrained(str(trained.to_hf(tmp_path / "tok")))
    for text in TEXTS:
        for add in (False, True):
            ours = trained.encode(text, add, allowed_special="all")
            assert hf.encode(text, add_special_tokens=add) == ours, (add, text)
        ids = hf.encode(text)
        assert hf.decode(ids) == trained.decode(ids)
        assert hf.decode(ids, skip_special_tokens=True) == trained.decode(ids, True)
    batch = hf(TEXTS, padding=True)
    ours = trained.encode_batch(TEXTS, True, "all", padding=True)
    assert batch["input_ids"] == ours["input_ids"]
    assert batch["attention_mask"] == ours["attention_mask"]


def test_a_loaded_template_survives_the_folder(tmp_path: Path) -> None:
    """A Llama-3-style tokenizer (BOS only, no EOS on encode) keeps its template."""
    from tokenizers import decoders, models, pre_tokenizers, processors, trainers

    hf_src = Tokenizer(models.BPE(ignore_merges=True))
    hf_src.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf_src.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|begin_of_text|>", "<|end_of_text|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    hf_src.train_from_iterator(TEXTS * 3, trainer)
    hf_src.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", 0)]
    )
    hf_src.save(str(tmp_path / "src.json"))
    ours = HysoBPETokenizer.from_hf(tmp_path / "src.json")
    hf = AutoTokenizer.from_pretrained(str(ours.to_hf(tmp_path / "out")))
    assert (hf.bos_token, hf.eos_token) == ("<|begin_of_text|>", "<|end_of_text|>")
    for text in TEXTS:
        expected = hf_src.encode(text).ids
        assert expected[0] == 0 and expected[-1] != 1
        assert hf.encode(text) == ours.encode(text, True, "all") == expected
    back = HysoBPETokenizer.from_hf(tmp_path / "out")
    assert back.model == ours.model
    assert back.bos_token_id == 0 and back.eos_token_id == 1


def test_gaps_and_a_pad_that_is_eos_reach_transformers(
    trained: HysoBPETokenizer, tmp_path: Path
) -> None:
    """A cl100k-style vocabulary (special tokens after unused ids) whose pad is its eos."""
    from dataclasses import replace

    ranks = trained.to_tiktoken_ranks()
    n = max(ranks.values()) + 1
    gapped = HysoBPETokenizer.from_tiktoken(ranks, {"<|endoftext|>": n + 1, "<|fim|>": n + 9})
    model = replace(gapped.model, aliases=(("pad", n + 1),))
    ours = HysoBPETokenizer(model=model)
    hf = AutoTokenizer.from_pretrained(str(ours.to_hf(tmp_path / "tok")))
    assert hf.eos_token == hf.pad_token == "<|endoftext|>"
    assert hf.pad_token_id == hf.eos_token_id == n + 1
    assert hf.bos_token is None
    for text in [*TEXTS, "x<|fim|>y<|endoftext|>"]:
        for add in (False, True):
            assert hf.encode(text, add_special_tokens=add) == ours.encode(text, add, "all")
    batch = hf(TEXTS, padding=True)["input_ids"]
    assert batch == ours.encode_batch(TEXTS, True, "all", padding=True)["input_ids"]
