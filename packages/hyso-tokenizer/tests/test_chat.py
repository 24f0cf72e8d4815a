"""Chat records, templates and assistant-masked ids (hyso.core.tokenizer.chat)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hyso.core.tokenizer import HysoBPETokenizer
from hyso.core.tokenizer.chat import (
    CHATML_JINJA,
    IGNORE_INDEX,
    ChatDataError,
    ChatTemplate,
    ChatTemplateError,
    encode_chat,
    load_chat_template,
    read_chat_file,
    read_chat_records,
)

CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "hi"},
    {"role": "assistant", "content": "Hello there"},
    {"role": "user", "content": "naïve café 😀"},
    {"role": "assistant", "content": "ok  \n"},
]


@pytest.fixture(scope="module")
def tok() -> HysoBPETokenizer:
    lines = [m["content"] for m in CONVERSATION] * 5 + ["<|im_start|>assistant\n"] * 5
    return HysoBPETokenizer().train(lines, vocab_size=330)


# -- records -----------------------------------------------------------------------------


def test_records_of_both_kinds_are_read() -> None:
    lines = [
        json.dumps({"messages": CONVERSATION, "id": 7}),
        "",
        json.dumps({"prompt": "2+2?", "completion": "4"}),
    ]
    first, second = read_chat_records(lines, "d.jsonl")
    assert (first.line, second.line) == (1, 3)
    assert first.as_dicts() == CONVERSATION
    assert second.messages == (("user", "2+2?"), ("assistant", "4"))


@pytest.mark.parametrize(
    ("line", "fault"),
    [
        ('{"messages": [', "not JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"text": "x"}', "neither 'messages' nor 'prompt'"),
        ('{"prompt": "x"}', "'completion' must be a string, got nothing"),
        ('{"prompt": "x", "completion": 3}', "'completion' must be a string, got int"),
        ('{"messages": []}', "non-empty list"),
        ('{"messages": [{"role": "user", "content": "x"}]}', "no 'assistant' message"),
        ('{"messages": [{"role": "bot", "content": "x"}]}', "messages[0]: role must be one of"),
        ('{"messages": [{"role": "user", "content": null}]}', "content must be a string"),
        ('{"messages": [{"role": "user", "content": "x", "name": "a"}]}', "other than"),
        ('{"messages": [], "prompt": "a", "completion": "b"}', "both"),
    ],
)
def test_a_malformed_line_names_file_line_and_fault(line: str, fault: str) -> None:
    good = json.dumps({"prompt": "a", "completion": "b"})
    with pytest.raises(ChatDataError) as info:
        list(read_chat_records([good, "", line], "data/chat.jsonl"))
    assert str(info.value).startswith("data/chat.jsonl:3")
    assert fault in str(info.value)


def test_a_file_is_validated_whole_before_anything_is_returned(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    good = json.dumps({"prompt": "a", "completion": "b"})
    path.write_text("\n".join([good] * 50 + ['{"prompt": "a"'] + [good] * 5), encoding="utf-8")
    with pytest.raises(ChatDataError, match=rf"{path.name}:51: not JSON"):
        read_chat_file(path)
    path.write_bytes(good.encode() + b"\n" + good.encode() + b"\n\xff\n")
    with pytest.raises(ChatDataError, match=r"c\.jsonl:3: not valid UTF-8"):
        read_chat_file(path)
    path.write_text("\n\n", encoding="utf-8")
    with pytest.raises(ChatDataError, match="holds no record"):
        read_chat_file(path)
    path.write_text(good + "\n" + good, encoding="utf-8")
    assert [r.line for r in read_chat_file(path)] == [1, 2]


# -- templates ---------------------------------------------------------------------------


def test_chatml_renders_the_known_text() -> None:
    chatml = ChatTemplate.chatml()
    msgs = CONVERSATION[1:3]
    assert chatml.render(msgs) == (
        "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nHello there<|im_end|>\n"
    )
    assert chatml.render(msgs[:1], add_generation_prompt=True) == (
        "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    )
    assert chatml.end_of_turn == "<|im_end|>"
    text, spans = chatml.render_with_spans(CONVERSATION)
    assert [text[s:e] for s, e in spans] == ["Hello there<|im_end|>", "ok  \n<|im_end|>"]


def test_the_jinja_chatml_renders_as_the_builtin() -> None:
    jinja = ChatTemplate(CHATML_JINJA, name="chatml.jinja")
    builtin = ChatTemplate.chatml()
    for gen in (False, True):
        assert jinja.render(CONVERSATION, gen) == builtin.render(CONVERSATION, gen)
    assert jinja.render_with_spans(CONVERSATION) == builtin.render_with_spans(CONVERSATION)


def test_the_mask_covers_exactly_the_assistant_tokens(tok: HysoBPETokenizer) -> None:
    enc = encode_chat(tok, ChatTemplate.chatml(), CONVERSATION)
    assert enc.ids == tok.encode(ChatTemplate.chatml().render(CONVERSATION), allowed_special="all")
    runs: list[list[int]] = []
    prev = 0
    for i, m in zip(enc.ids, enc.assistant_mask):
        if m and not prev:
            runs.append([])
        if m:
            runs[-1].append(i)
        prev = m
    assert [tok.decode(r) for r in runs] == ["Hello there<|im_end|>", "ok  \n<|im_end|>"]
    assert enc.labels == [i if m else IGNORE_INDEX for i, m in zip(enc.ids, enc.assistant_mask)]
    # the role header before an answer and the newline after it are never trained
    header = tok.encode("<|im_start|>assistant\n")
    first = enc.assistant_mask.index(1)
    assert enc.ids[first - len(header) : first] == header


def test_generation_marks_give_the_spans(tok: HysoBPETokenizer) -> None:
    source = (
        "{% for m in messages %}[{{ m['role'] }}] "
        "{% if m['role'] == 'assistant' %}{% generation %}{{ m['content'] }}{% endgeneration %}"
        "{% else %}{{ m['content'] }}{% endif %}|{% endfor %}"
    )
    marked = ChatTemplate(source, name="marked")
    assert marked.has_generation_marks
    text, spans = marked.render_with_spans(CONVERSATION)
    assert [text[s:e] for s, e in spans] == ["Hello there", "ok  \n"]
    enc = encode_chat(tok, marked, CONVERSATION)
    assert tok.decode([i for i, m in zip(enc.ids, enc.assistant_mask) if m]) == "Hello thereok  \n"


def test_a_template_whose_prefixes_differ_is_refused() -> None:
    source = "{% for m in messages %}{{ m['content'] }}{% if loop.last %}.{% endif %}{% endfor %}"
    with pytest.raises(ChatTemplateError, match="generation"):
        ChatTemplate(source, name="last").render_with_spans(CONVERSATION)


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ messages.__init__.__globals__ }}",
        "{% set ns = namespace() %}{% set ns._x = 1 %}",
        "{{ raise_exception.__globals__ }}",
        "{{ messages.append(1) }}",
    ],
)
def test_the_sandbox_refuses_unsafe_access(source: str) -> None:
    with pytest.raises(ChatTemplateError, match="sandbox"):
        ChatTemplate(source, name="evil").render(CONVERSATION)


def test_raise_exception_and_syntax_errors_are_template_errors() -> None:
    refusing = (
        "{% if messages[0]['role'] != 'user' %}{{ raise_exception('user first') }}{% endif %}"
    )
    with pytest.raises(ChatTemplateError, match="user first"):
        ChatTemplate(refusing, name="strict").render(CONVERSATION)
    with pytest.raises(ChatTemplateError, match="syntax error at line 2"):
        ChatTemplate("ok\n{% for %}", name="broken")


def test_a_tokenizer_config_gives_template_and_special_tokens(tmp_path: Path) -> None:
    cfg = tmp_path / "tokenizer_config.json"
    source = "{{ bos_token }}{% for m in messages %}{{ m['content'] + eos_token }}{% endfor %}"
    cfg.write_text(
        json.dumps({"chat_template": source, "bos_token": "<s>", "eos_token": {"content": "</s>"}}),
        encoding="utf-8",
    )
    template = load_chat_template(cfg)
    assert template.render(CONVERSATION[1:3]) == "<s>hi</s>Hello there</s>"
    assert template.end_of_turn == "</s>"
    named = [{"name": "tool_use", "template": "x"}, {"name": "default", "template": source}]
    cfg.write_text(
        json.dumps({"chat_template": named, "bos_token": "B", "eos_token": "E"}), encoding="utf-8"
    )
    assert load_chat_template(cfg).render(CONVERSATION[1:2]) == "BhiE"
    cfg.write_text(json.dumps({"bos_token": "B"}), encoding="utf-8")
    with pytest.raises(ChatTemplateError, match="no 'chat_template'"):
        load_chat_template(cfg)
    (tmp_path / "chat_template.jinja").write_text("{{ messages | length }}", encoding="utf-8")
    assert load_chat_template(cfg).render(CONVERSATION) == "5"
    with pytest.raises(ChatTemplateError, match="no such file"):
        load_chat_template(tmp_path / "missing.json")
    assert load_chat_template("chatml").name == "chatml"


def test_importing_the_tokenizer_imports_neither_torch_nor_jinja2() -> None:
    code = (
        "import sys, hyso.core.tokenizer as t; "
        "t.encode_chat(t.HysoBPETokenizer(), t.ChatTemplate.chatml(), "
        "[{'role': 'user', 'content': 'a'}, {'role': 'assistant', 'content': 'b'}]); "
        "print('torch' in sys.modules, 'jinja2' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"
