"""HysoSimpleTokenizer: vocabulary by frequency, unk, batches, MLM masking, save/load."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from hyso.core.tokenizer import HysoSimpleTokenizer

TEXTS = ["the cat sat", "the dog sat down", "the cat ran", "a bird"]


def built(**kw: object) -> HysoSimpleTokenizer:
    return HysoSimpleTokenizer(**kw).build_vocab(TEXTS)  # type: ignore[arg-type]


def test_vocab_by_frequency_with_specials_first() -> None:
    tok = built()
    vocab = tok.vocab
    assert [vocab[t] for t in ("<pad>", "<unk>", "<bos>", "<eos>", "<mask>")] == [0, 1, 2, 3, 4]
    # the (3) before cat/sat (2), ties alphabetical, then the singletons.
    assert sorted(vocab, key=vocab.get)[5:9] == ["the", "cat", "sat", "a"]
    small = HysoSimpleTokenizer().build_vocab(TEXTS, min_freq=2)
    assert set(small.vocab) - set(small.special_tokens.values()) == {"the", "cat", "sat"}
    capped = HysoSimpleTokenizer().build_vocab(TEXTS, max_size=6)
    assert capped.vocab_size == 6 and "the" in capped.vocab
    with pytest.raises(ValueError, match="max_size must be an int >= 5"):
        HysoSimpleTokenizer().build_vocab(TEXTS, max_size=3)


def test_unknown_words_and_round_trip() -> None:
    tok = built()
    ids = tok.encode("the zebra sat", add_special_tokens=True)
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id
    assert ids[2] == tok.unk_token_id
    assert tok.decode(ids, skip_special_tokens=True) == "the sat"
    assert tok.decode(tok.encode("the  cat\tsat")) == "the cat sat"
    with pytest.raises(ValueError, match="token id 99 is out of range"):
        tok.decode([99])


def test_punctuation_splitting_and_lowercase() -> None:
    tok = HysoSimpleTokenizer(lowercase=True, split_punctuation=True)
    assert tok.tokenize("Hello, World!") == ["hello", ",", "world", "!"]
    assert HysoSimpleTokenizer().tokenize("Hello, World!") == ["Hello,", "World!"]


def test_batch_padding_and_masks() -> None:
    tok = built()
    out = tok.encode_batch(["the cat", "a"], padding=True, padding_side="left")
    assert out["input_ids"][1] == [tok.pad_token_id, tok.encode("a")[0]]
    assert out["attention_mask"] == [[1, 1], [0, 1]]
    assert tok.decode_batch(out["input_ids"], skip_special_tokens=True) == ["the cat", "a"]
    assert tok.encode_batch(["the cat", "a"]) == [tok.encode("the cat"), tok.encode("a")]


def test_mask_tokens_80_10_10_never_specials() -> None:
    tok = built()
    row = [tok.bos_token_id, *tok.encode(" ".join(TEXTS * 200)), tok.eos_token_id]
    inputs, labels = tok.mask_tokens(row, probability=0.5, generator=random.Random(0))
    assert len(inputs) == len(labels) == len(row)
    chosen = [i for i, lab in enumerate(labels) if lab != -100]
    assert 0.45 < len(chosen) / (len(row) - 2) < 0.55
    assert 0 not in chosen and len(row) - 1 not in chosen
    assert all(labels[i] == row[i] for i in chosen)
    masked = sum(inputs[i] == tok.mask_token_id for i in chosen) / len(chosen)
    kept = sum(inputs[i] == row[i] for i in chosen) / len(chosen)
    assert 0.75 < masked < 0.85 and 0.05 < kept < 0.16
    assert all(inputs[i] == row[i] for i in range(len(row)) if labels[i] == -100)
    again = tok.mask_tokens(row, probability=0.5, generator=random.Random(0))
    assert again == (inputs, labels)
    batch_in, batch_lab = tok.mask_tokens([row[:5], row[5:9]], 1.0, random.Random(1))
    assert len(batch_in) == 2 and batch_lab[0][0] == -100


def test_mask_tokens_on_tensors() -> None:
    torch = pytest.importorskip("torch")
    tok = built()
    ids = torch.tensor([[tok.bos_token_id] + tok.encode("the cat sat") * 50])  # (1, T)
    gen = torch.Generator().manual_seed(0)
    inputs, labels = tok.mask_tokens(ids, probability=0.3, generator=gen)
    assert inputs.shape == labels.shape == ids.shape
    assert labels[0, 0].item() == -100
    chosen = labels != -100
    assert torch.equal(labels[chosen], ids[chosen])
    assert torch.equal(inputs[~chosen], ids[~chosen])


def test_save_load_and_damaged_files(tmp_path: Path) -> None:
    tok = HysoSimpleTokenizer(lowercase=True, split_punctuation=True).build_vocab(TEXTS)
    path = tok.save(tmp_path / "simple.json")
    back = HysoSimpleTokenizer.load(path)
    assert back.vocab == tok.vocab and back.lowercase and back.split_punctuation
    assert back.encode("The cat, sat!") == tok.encode("The cat, sat!")
    doc = json.loads(path.read_text(encoding="utf-8"))
    (tmp_path / "v.json").write_text(json.dumps({**doc, "format_version": 2}), encoding="utf-8")
    with pytest.raises(ValueError, match="format_version 2"):
        HysoSimpleTokenizer.load(tmp_path / "v.json")
    (tmp_path / "d.json").write_text(json.dumps({**doc, "vocab": ["a", "a"]}), encoding="utf-8")
    with pytest.raises(ValueError, match="is damaged"):
        HysoSimpleTokenizer.load(tmp_path / "d.json")
