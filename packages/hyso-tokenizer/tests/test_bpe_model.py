"""The one source of a BPE tokenizer: BPEModel, the tables derived from it, role ids."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hyso.core.tokenizer import BPEModel, HysoBPETokenizer, HysoSimpleTokenizer, SpecialToken
from hyso.core.tokenizer.serialization import read_bpe_json, read_hf_json

BYTES = tuple(range(256))  # byte b has id b


def test_token_bytes_follow_from_the_merges() -> None:
    a, b, c = ord("a"), ord("b"), ord("c")
    model = BPEModel(BYTES, ((a, b, 256), (256, c, 257)), (SpecialToken("eos", "<eos>", 258),))
    assert model.token_bytes[256] == b"ab" and model.token_bytes[257] == b"abc"
    assert model.vocab_size == 259
    tok = HysoBPETokenizer(model=model)
    assert tok.encode("abcab") == [257, 256]
    assert tok.decode([257, 258]) == "abc<eos>"
    assert tok.eos_token_id == 258 and tok.token_id("eos") == 258
    assert tok.pad_token_id is None
    assert tok.token_to_id(b"abc") == 257 and tok.id_to_token(258) == "<eos>"


@pytest.mark.parametrize(
    ("merges", "specials", "message"),
    [
        (((300, 97, 256),), (), r"merge 0 \(300, 97\) -> 256 uses id 300 before any merge"),
        (((97, 98, 99),), (), r"merge \(97, 98\) -> 99 does not concatenate"),
        (((97, 98, 256),), (("eos", "<eos>", 256),), r"ids \[256\] are both special and ordinary"),
        ((), (("eos", "<eos>", 300),), r"44 unused ids \(first 256\)"),
        ((), (("eos", "<eos>", 256), ("eos", "<e>", 257)), "role 'eos' is given twice"),
        ((), (("eos", "", 256),), "special token 'eos' must be a non-empty str"),
        (((97, True, 256),), (), "merge id must be a non-negative int, got True"),
    ],
)
def test_inconsistent_models_are_clear_errors(
    merges: tuple[tuple[int, int, int], ...],
    specials: tuple[tuple[str, str, int], ...],
    message: str,
) -> None:
    with pytest.raises(ValueError, match=message):
        BPEModel(BYTES, merges, specials)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="256 distinct ids"):
        BPEModel(BYTES[:-1])


def test_the_model_round_trips_through_the_constructor(trained: HysoBPETokenizer) -> None:
    twin = HysoBPETokenizer(model=trained.model)
    assert twin.model == trained.model
    text = "the river<eos> stations 1999"
    assert twin.encode(text, allowed_special="all") == trained.encode(text, allowed_special="all")
    with pytest.raises(ValueError, match="either in special_tokens or in model"):
        HysoBPETokenizer(special_tokens={"eos": "<eos>"}, model=trained.model)


def test_role_ids_come_from_properties_and_token_id(trained: HysoBPETokenizer) -> None:
    assert trained.role_ids == {"pad": 0, "bos": 1, "eos": 2, "unk": 3, "mask": 4}
    assert [trained.pad_token_id, trained.mask_token_id] == [0, 4]
    with pytest.raises(ValueError, match=r"needs a 'sep' special token.*roles: pad, bos, eos, unk"):
        trained.token_id("sep")
    with pytest.raises(AttributeError):
        trained.sep_token_id  # noqa: B018  (no attribute invented from a name)
    simple = HysoSimpleTokenizer(special_tokens={"unk": "<unk>", "sep": "<sep>"})
    assert simple.token_id("sep") == 1 and simple.unk_token_id == 0
    assert simple.pad_token_id is None


def test_readers_return_constructor_arguments(tmp_path: Path, trained: HysoBPETokenizer) -> None:
    own = read_bpe_json(trained.save(tmp_path / "t.json"))
    assert set(own) == {"model", "lowercase", "normalize", "pattern", "cache_size"}
    assert own["model"] == trained.model
    hf = read_hf_json(trained.to_hf(tmp_path / "tokenizer.json"))
    assert set(hf) == {"model", "lowercase", "normalize", "pattern"}
    assert HysoBPETokenizer(**hf).encode("stations") == trained.encode("stations")


def test_a_token_no_merge_builds_is_refused(tmp_path: Path, trained: HysoBPETokenizer) -> None:
    path = trained.to_hf(tmp_path / "tokenizer.json")
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["model"]["merges"] = doc["model"]["merges"][:-1]  # the last token loses its merge
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(ValueError, match=r"tokenizer.json.*is built by no merge") as info:
        HysoBPETokenizer.from_hf(path)
    assert f"id {trained.vocab_size - 1}" in str(info.value)


def test_unused_ids_templates_and_added_tokens_are_checked() -> None:
    eos = SpecialToken("eos", "<eos>", 300)
    model = BPEModel(BYTES, (), (eos,), unused=tuple(range(256, 300)))
    assert model.vocab_size == 301 and model.template_ids() == ((), (300,))
    tok = HysoBPETokenizer(model=model)
    assert tok.encode("ab", add_special_tokens=True) == [97, 98, 300]
    with pytest.raises(ValueError, match="token id 257 is an unused id"):
        tok.decode([97, 257])
    with pytest.raises(ValueError, match="id 97 is declared unused but is a token"):
        BPEModel(BYTES, (), (eos,), unused=(97, *range(256, 300)))
    with pytest.raises(ValueError, match="template id 256 is not a token"):
        BPEModel(BYTES, (), (eos,), unused=tuple(range(256, 300)), template=((256,), ()))
    with pytest.raises(ValueError, match="ignore_merges must be a bool"):
        BPEModel(BYTES, ignore_merges=1)  # type: ignore[arg-type]
    word = SpecialToken("word", "<w>", 256, special=False)
    tok = HysoBPETokenizer(
        model=BPEModel(BYTES, (), (word, eos._replace(id=257)), template=((), ()))
    )
    assert tok.encode("a<w><eos>") == [97, 256, *b"<eos>"]  # <w> always matched
    assert tok.decode([256, 257], skip_special_tokens=True) == "<w>"
    assert tok.encode("a", add_special_tokens=True) == [97]  # an empty template
