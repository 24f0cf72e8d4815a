"""encode_chat gives transformers' apply_chat_template(tokenize=True) ids, for ChatML and a
Llama-3-style template, and its mask covers exactly the assistant's tokens (checked
against transformers' own {% generation %} mask on the same text)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from hyso.core.tokenizer import HysoBPETokenizer
from hyso.core.tokenizer.chat import CHATML_JINJA, ChatTemplate, encode_chat, load_chat_template

LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    " + message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
    "{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
    "{% endif %}"
)
# ChatML with the assistant's content and <|im_end|> marked for transformers' mask.
CHATML_MARKED = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['role'] == 'assistant' %}"
    "{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\n' }}"
    "{% else %}{{ message['content'] + '<|im_end|>' + '\n' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

CONVERSATIONS: list[list[dict[str, str]]] = [
    [
        {"role": "user", "content": "What does len() return?"},
        {"role": "assistant", "content": "The number of items."},
    ],
    [
        {"role": "system", "content": "You answer in one line."},
        {"role": "user", "content": "Sort [3, 1, 2]\n\tplease"},
        {"role": "assistant", "content": "sorted([3, 1, 2]) == [1, 2, 3]  "},
        {"role": "user", "content": "naïve café 東京 😀"},
        {"role": "assistant", "content": " def f(x):\n    return x ** 2\n"},
    ],
    [
        {"role": "user", "content": "an <|im_end|> typed by a user, and <|eot_id|>"},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "again"},
        {"role": "assistant", "content": "fine."},
    ],
]

TEXTS = [m["content"] for c in CONVERSATIONS for m in c] * 4 + ["the quick brown fox"] * 8


def _folder(tmp: Path, specials: list[str], template: str, bos: str, eos: str) -> Path:
    hf_src = Tokenizer(models.BPE())
    hf_src.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf_src.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=420,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    hf_src.train_from_iterator(TEXTS, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=hf_src, bos_token=bos, eos_token=eos)
    fast.chat_template = template
    fast.save_pretrained(str(tmp))
    return tmp


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return {name: _pair(name, tmp_path_factory.mktemp(name)) for name in ("chatml", "llama3")}


def _pair(name: str, tmp: Path) -> Any:
    if name == "chatml":
        folder = _folder(tmp, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], CHATML_JINJA,
                         "<|endoftext|>", "<|im_end|>")  # fmt: skip
    else:
        specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>",
                    "<|end_header_id|>", "<|eot_id|>"]  # fmt: skip
        folder = _folder(tmp, specials, LLAMA3, "<|begin_of_text|>", "<|eot_id|>")
    hf = AutoTokenizer.from_pretrained(str(folder))
    ours = HysoBPETokenizer.from_hf(folder / "tokenizer.json")
    return name, hf, ours, load_chat_template(folder / "tokenizer_config.json")


@pytest.mark.parametrize("kind", ["chatml", "llama3"])
def test_ids_equal_apply_chat_template(pairs: dict[str, Any], kind: str) -> None:
    name, hf, ours, template = pairs[kind]
    for conversation in CONVERSATIONS:
        for gen in (False, True):
            expected = hf.apply_chat_template(
                conversation, tokenize=True, return_dict=False, add_generation_prompt=gen
            )
            got = encode_chat(ours, template, conversation, add_generation_prompt=gen)
            assert got.ids == list(expected), (name, gen, conversation)
            assert template.render(conversation, gen) == hf.apply_chat_template(
                conversation, tokenize=False, add_generation_prompt=gen
            )


def test_the_builtin_chatml_renders_as_the_jinja_chatml(pairs: dict[str, Any]) -> None:
    _, _, ours, template = pairs["chatml"]
    builtin = ChatTemplate.chatml()
    for conversation in CONVERSATIONS:
        got = encode_chat(ours, builtin, conversation)
        assert got == encode_chat(ours, template, conversation)


def test_the_mask_is_transformers_generation_mask(pairs: dict[str, Any]) -> None:
    """The plain ChatML template's prefix-derived mask equals transformers' mask of the
    same text with the assistant's content and <|im_end|> marked by {% generation %}."""
    _, hf, ours, _ = pairs["chatml"]
    marked = ChatTemplate(CHATML_MARKED, name="marked")
    for conversation in CONVERSATIONS:
        out = hf.apply_chat_template(
            conversation,
            chat_template=CHATML_MARKED,
            tokenize=True,
            return_dict=True,
            return_assistant_tokens_mask=True,
        )
        plain = encode_chat(ours, ChatTemplate.chatml(), conversation)
        assert plain.ids == list(out["input_ids"])
        assert plain.assistant_mask == list(out["assistant_masks"]), conversation
        assert encode_chat(ours, marked, conversation) == plain


def test_the_llama3_mask_covers_the_trimmed_content_and_eot(pairs: dict[str, Any]) -> None:
    _, hf, ours, template = pairs["llama3"]
    conversation = CONVERSATIONS[1]
    enc = encode_chat(ours, template, conversation)
    masked = [i for i, m in zip(enc.ids, enc.assistant_mask) if m]
    expected = [
        *hf.encode("sorted([3, 1, 2]) == [1, 2, 3]<|eot_id|>", add_special_tokens=False),
        *hf.encode("def f(x):\n    return x ** 2<|eot_id|>", add_special_tokens=False),
    ]
    assert masked == expected
    assert template.end_of_turn == "<|eot_id|>"
