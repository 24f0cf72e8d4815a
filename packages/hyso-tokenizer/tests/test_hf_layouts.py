"""The tokenizer.json layouts real models ship, built here from small vocabularies with
HF ``tokenizers`` and loaded with from_hf: the ids must be HF's on multilingual text."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from tokenizers import (
    AddedToken,
    Regex,
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
    trainers,
)

from hyso.core.tokenizer import HysoBPETokenizer
from hyso.core.tokenizer.fast import LLAMA3_PATTERN, QWEN2_PATTERN

from .test_bpe_encode import assigned_text

MULTILINGUAL = [
    "Hello, World! It's 2024 and we'RE testing: naïve café, Ürün, straße, İstanbul.",
    "Ça coûte 1234567 € — déjà vu? Ñandú, São Paulo, Łódź, Crème brûlée.",
    "東京は日本の首都です。北京欢迎你！大阪 2024年",
    "مرحبا بالعالم، هذا اختبار ١٢٣ للنص العربي.",
    "emoji 😀🚀👍🏽 family 👨‍👩‍👧 flags 🇫🇷 ☃ ★",
    "def f(x):\n\tif x >= 10:\n\t\treturn x ** 2  # square\n    return {'a': [1, 2, 3]}\n",
    "spaces    runs\t\ttabs\n\n\nnewlines   \n  trailing   ",
    "digits 0 12 345 6789 3.14159 1,000,000 +49-30-1234567",
    "e\u0301 composed vs é, Å vs A\u030a, ﬁ ligature, ＦＵＬＬ width",
]
CORPUS = [line for _ in range(6) for line in MULTILINGUAL] + [
    "the quick brown fox jumps over the lazy dog " * 3,
    "lower lowest newer newest wider widest river rivers station stations",
]


def _train(tok: Tokenizer, specials: list[str], vocab_size: int = 700) -> Tokenizer:
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer)
    return tok


def _split_then_bytes(pattern: str) -> pre_tokenizers.PreTokenizer:
    return pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(pattern), "isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )


def gpt2_layout() -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=True)
    return _train(tok, ["<|endoftext|>"])


def llama3_layout() -> Tokenizer:
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = _split_then_bytes(LLAMA3_PATTERN)
    tok.decoder = decoders.ByteLevel()
    _train(tok, ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"])
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence(
        [
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(
                single="<|begin_of_text|> $A",
                pair="<|begin_of_text|> $A <|begin_of_text|> $B:1",
                special_tokens=[("<|begin_of_text|>", bos)],
            ),
        ]
    )
    return tok


def qwen2_layout() -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = _split_then_bytes(QWEN2_PATTERN)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    _train(tok, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    # A non-special added token, as Qwen3 ships <think>: always matched, never skipped.
    tok.add_tokens([AddedToken("<think>", special=False, normalized=False)])
    return tok


def bos_eos_layout() -> Tokenizer:
    """GPT-2's split with a template that wraps the text in BOS and EOS."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    _train(tok, ["<pad>", "<s>", "</s>"])
    s, e = tok.token_to_id("<s>"), tok.token_to_id("</s>")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> $B:1 </s>:1",
        special_tokens=[("<s>", s), ("</s>", e)],
    )
    return tok


LAYOUTS = {
    "gpt2": gpt2_layout,
    "llama3": llama3_layout,
    "qwen2": qwen2_layout,
    "bos-eos": bos_eos_layout,
}
SPECIAL_TEXTS = {
    "gpt2": "a<|endoftext|>b <|endoftext|>",
    "llama3": "<|begin_of_text|>hi<|eot_id|> there<|end_of_text|>",
    "qwen2": "<|im_start|>user\n<think>东京</think><|im_end|>\n<|endoftext|>",
    "bos-eos": "<s>inner</s> <pad>",
}


@pytest.fixture(scope="module", params=sorted(LAYOUTS))
def hf_file(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    hf = LAYOUTS[request.param]()
    path = tmp_path_factory.mktemp(request.param) / "tokenizer.json"
    hf.save(str(path))
    return request.param, hf, path


@pytest.fixture(scope="module")
def pair(hf_file: Any, backend: str) -> Any:
    """Each layout, loaded on each encoder (every layout qualifies for tiktoken)."""
    name, hf, path = hf_file
    ours = HysoBPETokenizer.from_hf(path, backend=backend)
    assert ours.backend == backend
    return name, hf, ours


def test_ids_equal_hf_on_multilingual_text(pair: Any) -> None:
    name, hf, ours = pair
    texts = [*MULTILINGUAL, SPECIAL_TEXTS[name], "", " ", "\n"]
    for text in texts:
        for add in (False, True):
            expected = hf.encode(text, add_special_tokens=add).ids
            assert ours.encode(text, add, allowed_special="all") == expected, (name, add, text)
    batch = [e.ids for e in hf.encode_batch(texts)]
    assert ours.encode_batch(texts, add_special_tokens=True, allowed_special="all") == batch


@settings(max_examples=150, deadline=None)
@given(text=assigned_text)
def test_ids_equal_hf_on_any_text(pair: Any, text: str) -> None:
    name, hf, ours = pair
    for special in ("", *SPECIAL_TEXTS[name].split(" ")[:1]):
        mixed = special + text + special
        assert ours.encode(mixed, True, allowed_special="all") == hf.encode(mixed).ids, name


def test_decode_equals_hf(pair: Any) -> None:
    name, hf, ours = pair
    for text in [*MULTILINGUAL, SPECIAL_TEXTS[name]]:
        ids = hf.encode(text).ids
        for skip in (False, True):
            assert ours.decode(ids, skip_special_tokens=skip) == hf.decode(ids, skip), (name, skip)
        stream = ours.stream_decoder(skip_special_tokens=True)
        streamed = "".join(stream.feed(i) for i in ids) + stream.flush()
        assert streamed == hf.decode(ids, skip_special_tokens=True)


def test_special_token_ids_and_roles_follow_the_file(pair: Any) -> None:
    name, hf, ours = pair
    for content, token_id in hf.get_added_tokens_decoder().items():
        assert ours.token_to_id(token_id.content) == content
    roles = {
        "gpt2": {"eos": "<|endoftext|>"},
        "llama3": {"bos": "<|begin_of_text|>", "eos": "<|end_of_text|>"},
        "qwen2": {"eos": "<|endoftext|>"},
        "bos-eos": {"pad": "<pad>", "bos": "<s>", "eos": "</s>"},
    }[name]
    for role, text in roles.items():
        assert ours.token_id(role) == hf.token_to_id(text), (name, role)
    # Plain encode treats special-token text as text (tiktoken's encode_ordinary) ...
    text = SPECIAL_TEXTS[name]
    special_ids = {t for t in ours.special_token_ids.values()}
    plain = ours.encode(text)
    if name == "qwen2":  # ... but a non-special added token is always matched, as in HF
        assert ours.token_to_id("<think>") in plain
        assert not (set(plain) & (special_ids - {ours.token_to_id("<think>")}))
    else:
        assert not set(plain) & special_ids
    assert ours.decode(plain) == text


def test_the_export_loads_back_in_hf_with_the_same_ids(pair: Any, tmp_path: Path) -> None:
    name, hf, ours = pair
    again = Tokenizer.from_file(str(ours.to_hf(tmp_path / "tokenizer.json")))
    twin = HysoBPETokenizer.load(ours.save(tmp_path / "own.json"))
    assert twin.model == ours.model
    for text in [*MULTILINGUAL, SPECIAL_TEXTS[name]]:
        for add in (False, True):
            expected = hf.encode(text, add_special_tokens=add).ids
            assert again.encode(text, add_special_tokens=add).ids == expected, (name, add)
            assert twin.encode(text, add, allowed_special="all") == expected


def _llama3_by_hand() -> dict[str, Any]:
    """A Llama-3-style tokenizer.json written out by hand: the merges would split
    "abc" as a + bc, but "abc" is in the vocabulary and ignore_merges uses it whole."""
    from hyso.core.tokenizer.bytes_map import HF_BYTE_ORDER, bytes_to_token

    vocab = {bytes_to_token(bytes([b])): i for i, b in enumerate(HF_BYTE_ORDER)}
    merges = [["b", "c"], ["a", "b"], ["ab", "c"], ["Ġ", "a"]]
    for left, right in merges:
        vocab[left + right] = len(vocab)
    size = len(vocab)
    added = [
        {"id": size + k, "content": text, "single_word": False, "lstrip": False,
         "rstrip": False, "normalized": False, "special": True}
        for k, text in enumerate(["<|begin_of_text|>", "<|end_of_text|>"])
    ]  # fmt: skip
    split = {"type": "Split", "pattern": {"Regex": LLAMA3_PATTERN}, "behavior": "Isolated",
             "invert": False}  # fmt: skip
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                  "use_regex": False}  # fmt: skip
    template = {
        "type": "TemplateProcessing",
        "single": [
            {"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
            {"Sequence": {"id": "A", "type_id": 0}},
        ],
        "pair": [
            {"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
            {"Sequence": {"id": "A", "type_id": 0}},
            {"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 1}},
            {"Sequence": {"id": "B", "type_id": 1}},
        ],
        "special_tokens": {
            "<|begin_of_text|>": {
                "id": "<|begin_of_text|>",
                "ids": [size],
                "tokens": ["<|begin_of_text|>"],
            }
        },
    }
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [split, byte_level]},
        "post_processor": {
            "type": "Sequence",
            "processors": [{**byte_level, "add_prefix_space": True}, template],
        },
        "decoder": {**byte_level, "use_regex": True},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "ignore_merges": True,
            "byte_fallback": False,
            "vocab": vocab,
            "merges": merges,
        },
    }


def test_a_hand_written_llama3_file_uses_whole_pieces(tmp_path: Path) -> None:
    doc = _llama3_by_hand()
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    hf = Tokenizer.from_file(str(path))
    ours = HysoBPETokenizer.from_hf(path)
    vocab = doc["model"]["vocab"]
    assert ours.encode("abc") == [vocab["abc"]] == hf.encode("abc", add_special_tokens=False).ids
    assert ours.encode("xabc") == [vocab["x"], vocab["a"], vocab["bc"]]  # merged: no whole token
    for text in ["abc abc xabc ab bc", *MULTILINGUAL]:
        for add in (False, True):
            assert ours.encode(text, add) == hf.encode(text, add_special_tokens=add).ids
    assert ours.bos_token_id == doc["added_tokens"][0]["id"]
    assert ours.encode("abc", add_special_tokens=True)[0] == ours.bos_token_id
    # Without ignore_merges the same file gives the merges' split, as HF does.
    doc["model"]["ignore_merges"] = False
    path.write_text(json.dumps(doc), encoding="utf-8")
    plain = HysoBPETokenizer.from_hf(path)
    assert plain.encode("abc") == [vocab["a"], vocab["bc"]]
    assert plain.encode("abc") == Tokenizer.from_file(str(path)).encode("abc").ids[1:]
    # The template's token is bos whatever its text.
    size = doc["added_tokens"][0]["id"]
    doc["added_tokens"][0]["content"] = "<|first|>"
    doc["added_tokens"][1]["content"] = "<|last|>"
    bert = {"type": "BertProcessing", "cls": ["<|first|>", size], "sep": ["<|last|>", size + 1]}
    doc["post_processor"]["processors"][1] = bert
    path.write_text(json.dumps(doc), encoding="utf-8")
    bert = HysoBPETokenizer.from_hf(path)
    assert (bert.bos_token_id, bert.eos_token_id) == (size, size + 1)
    assert bert.encode("abc", True) == Tokenizer.from_file(str(path)).encode("abc").ids


def _sentencepiece_bpe(metaspace: bool) -> Tokenizer:
    tok = Tokenizer(models.BPE(byte_fallback=not metaspace, unk_token="<unk>"))
    if metaspace:  # Mistral's newer files
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
    else:  # Llama 2's
        tok.normalizer = normalizers.Sequence(
            [normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")]
        )
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<s>", "</s>"],
                                  show_progress=False)  # fmt: skip
    tok.train_from_iterator(CORPUS, trainer)
    return tok


@pytest.mark.parametrize(
    ("metaspace", "component"),
    [(False, r"'model'\['byte_fallback'\]"), (True, "pre_tokenizer Metaspace")],
)
def test_sentencepiece_style_bpe_is_refused_naming_the_component(
    tmp_path: Path, metaspace: bool, component: str
) -> None:
    path = tmp_path / "tokenizer.json"
    _sentencepiece_bpe(metaspace).save(str(path))
    with pytest.raises(ValueError, match=f"{component} is SentencePiece-style BPE") as info:
        HysoBPETokenizer.from_hf(path)
    assert str(path) in str(info.value)


def test_unsupported_added_token_flags_and_post_processors_are_refused(tmp_path: Path) -> None:
    hf = gpt2_layout()
    path = tmp_path / "tokenizer.json"
    hf.save(str(path))
    doc = json.loads(path.read_text(encoding="utf-8"))
    cases = {
        "lstrip": (
            lambda d: d["added_tokens"][0].__setitem__("lstrip", True),
            r"'added_tokens'\[0\] \('<\|endoftext\|>'\) sets 'lstrip'",
        ),
        "post": (
            lambda d: d.__setitem__("post_processor", {"type": "Mystery"}),
            "post_processor 'Mystery' is not supported",
        ),
        "prefix space": (
            lambda d: d["pre_tokenizer"].__setitem__("add_prefix_space", True),
            "only ByteLevel",
        ),
    }
    for mutate, message in cases.values():
        bad = json.loads(json.dumps(doc))
        mutate(bad)
        path.write_text(json.dumps(bad), encoding="utf-8")
        with pytest.raises(ValueError, match=message):
            HysoBPETokenizer.from_hf(path)


def test_tokenizer_config_beside_the_file_names_the_roles(tmp_path: Path) -> None:
    llama3_layout().save(str(tmp_path / "tokenizer.json"))
    config = {
        "bos_token": {"content": "<|begin_of_text|>", "special": True},  # an AddedToken
        "eos_token": "<|eot_id|>",  # an instruct model's end of turn
        "pad_token": "<|end_of_text|>",
    }
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    for path in (tmp_path, tmp_path / "tokenizer.json"):
        ours = HysoBPETokenizer.from_hf(path)
        assert ours.special_tokens["eos"] == "<|eot_id|>"
        assert ours.special_tokens["pad"] == "<|end_of_text|>"
        assert ours.special_tokens["bos"] == "<|begin_of_text|>"
    config["eos_token"] = 7
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ValueError, match=r"tokenizer_config.json.*'eos_token' must be a string"):
        HysoBPETokenizer.from_hf(tmp_path)


def test_a_token_with_two_roles_keeps_both(tmp_path: Path) -> None:
    """Qwen2 pads with its eos token: one token, two roles, both kept through every file."""
    qwen2_layout().save(str(tmp_path / "tokenizer.json"))
    config = {"eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>", "bos_token": None}
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    ours = HysoBPETokenizer.from_hf(tmp_path)
    assert ours.pad_token_id == ours.eos_token_id == ours.token_to_id("<|endoftext|>")
    assert ours.bos_token_id is None
    assert HysoBPETokenizer.load(ours.save(tmp_path / "own.json")).model == ours.model
    again = HysoBPETokenizer.from_hf(ours.to_hf(tmp_path / "out"))
    assert again.role_ids == ours.role_ids
    config["pad_token"] = "<|nope|>"
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ValueError, match=r"config.json'.*'pad_token' '<\|nope\|>' is no added"):
        HysoBPETokenizer.from_hf(tmp_path)


def test_training_a_loaded_tokenizer_keeps_its_template_flags_and_roles(tmp_path: Path) -> None:
    qwen2_layout().save(str(tmp_path / "tokenizer.json"))
    (tmp_path / "tokenizer_config.json").write_text(
        json.dumps({"eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>"}), encoding="utf-8"
    )
    llama3_layout().save(str(tmp_path / "llama3.json"))
    for path in (tmp_path, tmp_path / "llama3.json"):
        before = HysoBPETokenizer.from_hf(path)
        after = HysoBPETokenizer.from_hf(path).train(CORPUS[:20], vocab_size=400)
        old, new = before.model, after.model
        assert [(s.text, s.special) for s in new.specials] == [
            (s.text, s.special) for s in old.specials
        ]
        assert after.special_tokens == before.special_tokens
        assert new.ignore_merges == old.ignore_merges
        wrapped = after.encode("hi", add_special_tokens=True)
        assert after.decode(wrapped) == before.decode(before.encode("hi", add_special_tokens=True))
