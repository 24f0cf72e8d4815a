"""Persistence and interop: own JSON, HF tokenizer.json, GPT-2 files, tiktoken ranks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hyso.core.tokenizer import HysoBPETokenizer
from hyso.core.tokenizer.bytes_map import bytes_to_token

SAMPLE = "Hello, wörld! 'tis 1999 — café 東京 😀\n\n  the <eos> end"


def test_save_load_round_trip(tmp_path: Path, corpus: list[str]) -> None:
    tok = HysoBPETokenizer(lowercase=True, normalize="NFKC", cache_size=123)
    tok.train(corpus, vocab_size=450)
    tok.add_special_tokens({"sep": "<sep>"})
    path = tok.save(tmp_path / "sub" / "tok.json")
    assert [p.name for p in path.parent.iterdir()] == ["tok.json"]  # no temp file left
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["format"] == "hyso-bpe-tokenizer" and doc["format_version"] == 1
    back = HysoBPETokenizer.load(path)
    assert back.merges == tok.merges
    assert back.special_tokens == tok.special_tokens
    assert back.token_id("sep") == tok.token_id("sep")
    assert (back.lowercase, back.normalize, back.cache_size) == (True, "NFKC", 123)
    for text in [SAMPLE, *corpus[:20]]:
        assert back.encode(text, allowed_special="all") == tok.encode(text, allowed_special="all")


def test_damaged_or_foreign_files_are_clear_errors(
    tmp_path: Path, trained: HysoBPETokenizer
) -> None:
    good = json.loads(trained.save(tmp_path / "t.json").read_text(encoding="utf-8"))
    cases = {
        "truncated": (tmp_path / "t.json").read_text(encoding="utf-8")[:200],
        "foreign": json.dumps({"model": {"type": "BPE"}}),
        "version": json.dumps({**good, "format_version": 99}),
        "no merges": json.dumps({k: v for k, v in good.items() if k != "merges"}),
        "bad merge": json.dumps({**good, "merges": [[good["merges"][0][0], 7, 300]]}),
        "gap": json.dumps({**good, "tokens": good["tokens"][:-1]}),
    }
    expected = {
        "truncated": "is not valid JSON",
        "foreign": "is not a hyso-bpe-tokenizer file",
        "version": "has format_version 99; this version reads 1",
        "no merges": "missing or malformed field 'merges'",
        "bad merge": "does not concatenate",
        "gap": "names an id not in the vocabulary|unused ids",
    }
    for name, text in cases.items():
        path = tmp_path / f"{name}.json"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(ValueError, match=expected[name]) as info:
            HysoBPETokenizer.load(path)
        assert str(path) in str(info.value)
    with pytest.raises(ValueError, match="does not exist"):
        HysoBPETokenizer.load(tmp_path / "missing.json")


def test_hf_json_round_trip_without_hf(tmp_path: Path, trained: HysoBPETokenizer) -> None:
    path = trained.to_hf(tmp_path / "tokenizer.json")
    back = HysoBPETokenizer.from_hf(path)
    assert back.merges == trained.merges
    assert back.special_token_ids == trained.special_token_ids
    assert back.encode(SAMPLE) == trained.encode(SAMPLE)


def test_hf_tokenizers_gives_identical_ids_both_ways(tmp_path: Path, corpus: list[str]) -> None:
    import tokenizers

    ours = HysoBPETokenizer(lowercase=True, normalize="NFKC").train(corpus, vocab_size=450)
    hf = tokenizers.Tokenizer.from_file(str(ours.to_hf(tmp_path / "tokenizer.json")))
    for text in [SAMPLE, "ＡＢＣ İstanbul", *corpus[:30]]:
        ids = ours.encode(text, allowed_special="all")
        assert hf.encode(text).ids == ids
        assert hf.decode(ids, skip_special_tokens=False) == ours.decode(ids)
    hf.save(str(tmp_path / "hf_saved.json"))
    again = HysoBPETokenizer.from_hf(tmp_path / "hf_saved.json")
    assert again.encode(SAMPLE, allowed_special="all") == hf.encode(SAMPLE).ids


def test_gpt2_files_load_with_their_ids(tmp_path: Path, trained: HysoBPETokenizer) -> None:
    # Write GPT-2 style files from a trained model, with ids shuffled into GPT-2's
    # layout (bytes first, in byte order), and check ids follow the file.
    token_bytes = trained.model.token_bytes
    order = sorted(token_bytes, key=lambda i: (len(token_bytes[i]) > 1, i))
    remap = {old: new for new, old in enumerate(order)}
    vocab = {bytes_to_token(token_bytes[old]): new for old, new in remap.items()}
    vocab["<|endoftext|>"] = len(vocab)
    lines = ["#version: 0.2"] + [
        f"{bytes_to_token(token_bytes[a])} {bytes_to_token(token_bytes[b])}"
        for a, b, _ in trained.merges
    ]
    (tmp_path / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (tmp_path / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    gpt2 = HysoBPETokenizer.from_gpt2(tmp_path / "vocab.json", tmp_path / "merges.txt")
    assert gpt2.eos_token_id == len(vocab) - 1
    text = SAMPLE.replace("<eos>", "")
    assert gpt2.encode(text) == [remap[i] for i in trained.encode(text)]
    (tmp_path / "merges.txt").write_text("#version: 0.2\nzz qq\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 2: bad merge"):
        HysoBPETokenizer.from_gpt2(tmp_path / "vocab.json", tmp_path / "merges.txt")


def test_tiktoken_ranks_round_trip(tmp_path: Path, trained: HysoBPETokenizer) -> None:
    path = trained.save_tiktoken(tmp_path / "hyso.tiktoken")
    back = HysoBPETokenizer.from_tiktoken(path, special_tokens=trained.special_token_ids)
    assert back.encode(SAMPLE) == trained.encode(SAMPLE)
    assert back.eos_token_id == trained.eos_token_id
    (tmp_path / "bad.tiktoken").write_text("not-base64!! x\n", encoding="ascii")
    with pytest.raises(ValueError, match="line 1: expected 'base64 rank'"):
        HysoBPETokenizer.from_tiktoken(tmp_path / "bad.tiktoken")


def test_tiktoken_encoding_gives_identical_ids(
    trained_on: HysoBPETokenizer, corpus: list[str]
) -> None:
    trained = trained_on
    import tiktoken

    from hyso.core.tokenizer import GPT2_PATTERN

    enc = tiktoken.Encoding(
        "hyso-test", pat_str=GPT2_PATTERN, mergeable_ranks=trained.to_tiktoken_ranks(),
        special_tokens=trained.special_token_ids,
    )  # fmt: skip
    for text in [SAMPLE, *corpus[:50]]:
        assert enc.encode_ordinary(text) == trained.encode(text)
    assert enc.encode("a<eos>", allowed_special="all") == trained.encode(
        "a<eos>", allowed_special="all"
    )
