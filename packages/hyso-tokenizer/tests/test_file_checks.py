"""Tokenizer files are checked field by field before anything is built from them."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hyso.core.tokenizer import BPEModel, HysoBPETokenizer, HysoSimpleTokenizer


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Any]:
    tok = HysoBPETokenizer(special_tokens={"eos": "<|endoftext|>"})
    tok.train(["hello world, lower lowest newer newest"] * 5, vocab_size=300)
    own = json.loads(tok.save(tmp_path / "own.json").read_text(encoding="utf-8"))
    hf = json.loads(tok.to_hf(tmp_path / "hf.json").read_text(encoding="utf-8"))
    return {"tok": tok, "own": own, "hf": hf, "dir": tmp_path}


def _write(folder: Path, name: str, doc: Any) -> Path:
    path = folder / name
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


OWN_CASES: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "huge id": (
        lambda d: d["special_tokens"][0].__setitem__("id", 2 * 10**9),
        r"'special_tokens'\[0\]\['id'\] is id 2000000000, but the file has 277 tokens",
    ),
    "negative id": (
        lambda d: d["tokens"][-1].__setitem__(0, -1),
        r"'tokens'\[275\]\[0\] is id -1",
    ),
    "lowercase no": (lambda d: d.__setitem__("lowercase", "no"), "'lowercase' must be true"),
    "pattern int": (lambda d: d.__setitem__("pattern", 5), "'pattern' must be a string"),
    "token not a pair": (lambda d: d["tokens"].append(7), r"'tokens'\[276\] must be \[id, token\]"),
    "repeated id": (
        lambda d: d["tokens"].append([d["tokens"][-1][0], "x"]),
        "repeats id",
    ),
    "duplicate bytes": (
        lambda d: d["tokens"].append([277, d["tokens"][-1][1]]),
        "are both the token",
    ),
    "merge as string": (lambda d: d["merges"].append("a b"), r"'merges'\[\d+\] must be"),
}


@pytest.mark.parametrize("case", OWN_CASES)
def test_own_format_fields_are_checked(files: dict[str, Any], case: str) -> None:
    mutate, message = OWN_CASES[case]
    doc = json.loads(json.dumps(files["own"]))
    mutate(doc)
    path = _write(files["dir"], "bad.json", doc)
    with pytest.raises(ValueError, match=message) as info:
        HysoBPETokenizer.load(path)
    assert str(path) in str(info.value)


HF_CASES: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "no content": (
        lambda d: d["added_tokens"][0].pop("content"),
        r"'added_tokens'\[0\]\['content'\]",
    ),
    "integer merges": (
        lambda d: d["model"].__setitem__("merges", [5]),
        r"'model'\['merges'\]\[0\]",
    ),
    "string ids": (
        lambda d: d["model"]["vocab"].__setitem__("a", "70"),
        r"'model'\['vocab'\]\['a'\] must be an integer",
    ),
    "vocab list": (
        lambda d: d["model"].__setitem__("vocab", list(d["model"]["vocab"])),
        r"'model'\['vocab'\] must be an object",
    ),
    "huge added id": (
        lambda d: d["added_tokens"][0].__setitem__("id", 2 * 10**9),
        r"'added_tokens'\[0\]\['id'\] is id 2000000000",
    ),
    "top level list": (lambda d: d.clear(), "missing or malformed field 'model'"),
}


@pytest.mark.parametrize("case", HF_CASES)
def test_hf_fields_are_checked(files: dict[str, Any], case: str) -> None:
    mutate, message = HF_CASES[case]
    doc = json.loads(json.dumps(files["hf"]))
    mutate(doc)
    path = _write(files["dir"], "bad.json", doc)
    with pytest.raises(ValueError, match=message) as info:
        HysoBPETokenizer.from_hf(path)
    assert str(path) in str(info.value)


def test_gpt2_and_tiktoken_ids_are_checked(files: dict[str, Any]) -> None:
    folder: Path = files["dir"]
    hf = files["hf"]
    merges = [" ".join(m) if isinstance(m, list) else m for m in hf["model"]["merges"]]
    (folder / "merges.txt").write_text("\n".join(merges) + "\n", encoding="utf-8")
    vocab = dict(hf["model"]["vocab"])
    good = HysoBPETokenizer.from_gpt2(_write(folder, "v.json", vocab), folder / "merges.txt")
    assert good.encode("hello lowest") == files["tok"].encode("hello lowest")
    for value, message in ((2 * 10**9, "is id 2000000000"), ("5", "must be an integer")):
        path = _write(folder, "v.json", {**vocab, "<|endoftext|>": value})
        with pytest.raises(ValueError, match=message) as info:
            HysoBPETokenizer.from_gpt2(path, folder / "merges.txt")
        assert str(path) in str(info.value)
    ranks = files["tok"].to_tiktoken_ranks()
    with pytest.raises(ValueError, match=re.escape("'<|endoftext|>' is id -1")):
        HysoBPETokenizer.from_tiktoken(ranks, {"<|endoftext|>": -1})


def test_models_refuse_duplicate_pairs_and_bytes(files: dict[str, Any]) -> None:
    model: BPEModel = files["tok"].model
    a, b, _ = model.merges[0]
    with pytest.raises(ValueError, match=r"merges 0 and \d+ both merge the pair"):
        BPEModel(model.byte_ids, (*model.merges, (a, b, model.vocab_size)), model.specials)
    with pytest.raises(
        ValueError, match=r"1999723 unused ids \(first 0\); the largest id is 1999999"
    ):
        BPEModel(model.byte_ids, model.merges, (model.specials[0]._replace(id=1_999_999),))


def test_simple_tokenizer_flags_must_be_booleans(tmp_path: Path) -> None:
    path = HysoSimpleTokenizer().save(tmp_path / "s.json")
    doc = json.loads(path.read_text(encoding="utf-8"))
    for key in ("lowercase", "split_punctuation"):
        _write(tmp_path, "s.json", {**doc, key: "no"})
        with pytest.raises(ValueError, match=f"'{key}' must be true or false"):
            HysoSimpleTokenizer.load(path)
