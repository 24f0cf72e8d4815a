"""Chat and instruction data: reading records, chat templates, assistant-masked ids.

Records are JSON lines, each ``{"messages": [{"role": ..., "content": ...}, ...]}`` or
``{"prompt": ..., "completion": ...}`` (a user turn and the assistant's answer). A
:class:`ChatTemplate` renders a conversation to text: the built-in ChatML, or the Jinja
``chat_template`` of a Hugging Face ``tokenizer_config.json`` rendered in jinja2's
immutable sandbox as ``transformers`` renders it (``trim_blocks``, ``lstrip_blocks``, the
``loopcontrols`` extension, ``raise_exception``, ``strftime_now``, ``tojson``, the
tokenizer's special tokens as ``bos_token`` ... and ``add_generation_prompt``). jinja2 is
the optional ``[chat]`` extra, imported only when a Jinja template is used.

:func:`encode_chat` gives the ids ``transformers``' ``apply_chat_template(...,
tokenize=True)`` gives (the rendered text encoded with every special token matched and
nothing added around it) and a mask of the tokens the assistant writes: its content and
the template's end-of-turn text after it (ChatML's ``<|im_end|>``, Llama 3's
``<|eot_id|>``), but not the role header before it nor the whitespace between turns.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "CHATML_JINJA",
    "IGNORE_INDEX",
    "ROLES",
    "ChatDataError",
    "ChatEncoding",
    "ChatRecord",
    "ChatTemplate",
    "ChatTemplateError",
    "encode_chat",
    "load_chat_template",
    "read_chat_file",
    "read_chat_records",
]

ROLES = ("system", "user", "assistant")
"""The roles a message may have."""
IGNORE_INDEX = -100
"""The label of a token that is not trained (the loss ignores it)."""

CHATML_JINJA = (
    "{% for message in messages %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
"""The ChatML template as Jinja: what the built-in ChatML renders, character for character."""

_GENERATION_TAG = re.compile(r"\{%-?\s*generation\s*-?%\}")
_SPECIAL_KEYS = tuple(f"{r}_token" for r in ("bos", "eos", "unk", "sep", "pad", "cls", "mask"))


class ChatDataError(ValueError):
    """A chat record is malformed; the message names the file, the line and the fault."""


class ChatTemplateError(ValueError):
    """A chat template cannot be read or refused to render (sandbox, raise_exception)."""


@dataclass(frozen=True)
class ChatRecord:
    """One validated conversation and where it was read."""

    source: str
    line: int
    messages: tuple[tuple[str, str], ...]
    """``(role, content)`` pairs in order."""

    def as_dicts(self) -> list[dict[str, str]]:
        """The messages as ``{"role", "content"}`` dicts (what templates read)."""
        return [{"role": r, "content": c} for r, c in self.messages]


# -- reading records ---------------------------------------------------------------------


def read_chat_records(lines: Iterable[str], source: str = "<lines>") -> Iterator[ChatRecord]:
    """Validated conversations from JSON ``lines`` (blank lines are skipped).

    Each record holds ``messages`` (a non-empty list of ``{"role", "content"}`` objects,
    roles from :data:`ROLES`, at least one ``assistant``) or ``prompt`` and
    ``completion`` strings; other top-level keys are ignored. A malformed line raises
    :class:`ChatDataError` naming ``source``, the line number and what is wrong.
    """
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{source}:{lineno}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ChatDataError(f"{where}: not JSON ({exc.msg}, column {exc.colno})") from None
        yield ChatRecord(source, lineno, _messages_of(record, where))


def read_chat_file(path: str | os.PathLike[str]) -> list[ChatRecord]:
    """Every conversation of a ``.jsonl`` file, read and validated whole before returning.

    Invalid UTF-8 and malformed lines raise :class:`ChatDataError` naming the file and
    line; an empty file (no record) is an error too.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ChatDataError(f"{path}: cannot read it ({exc.strerror})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        lineno = data.count(b"\n", 0, exc.start) + 1
        raise ChatDataError(
            f"{path}:{lineno}: not valid UTF-8 (byte {exc.start}: {exc.reason})"
        ) from None
    records = list(read_chat_records(text.splitlines(), str(path)))
    if not records:
        raise ChatDataError(f"{path}: holds no record (one JSON object per line)")
    return records


def _messages_of(record: Any, where: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(record, dict):
        raise ChatDataError(f"{where}: a record must be a JSON object, got {type(record).__name__}")
    has_pair = "prompt" in record or "completion" in record
    if "messages" in record and has_pair:
        raise ChatDataError(f"{where}: has both 'messages' and 'prompt'/'completion'; keep one")
    if has_pair:
        for key in ("prompt", "completion"):
            if not isinstance(record.get(key), str):
                got = type(record.get(key)).__name__ if key in record else "nothing"
                raise ChatDataError(f"{where}: '{key}' must be a string, got {got}")
        return (("user", record["prompt"]), ("assistant", record["completion"]))
    if "messages" not in record:
        raise ChatDataError(
            f"{where}: has neither 'messages' nor 'prompt' and 'completion' "
            f"(keys: {sorted(record)[:8]})"
        )
    messages = record["messages"]
    if not isinstance(messages, list) or not messages:
        raise ChatDataError(f"{where}: 'messages' must be a non-empty list, got {messages!r:.60}")
    out = tuple(_message(m, f"{where}: messages[{i}]") for i, m in enumerate(messages))
    if not any(role == "assistant" for role, _ in out):
        raise ChatDataError(f"{where}: no 'assistant' message: nothing to learn from")
    return out


def _message(message: Any, where: str) -> tuple[str, str]:
    if not isinstance(message, dict):
        raise ChatDataError(f"{where} must be an object, got {type(message).__name__}")
    extra = sorted(set(message) - {"role", "content"})
    if extra:
        raise ChatDataError(f"{where} has keys other than 'role' and 'content': {extra}")
    role, content = message.get("role"), message.get("content")
    if role not in ROLES:
        raise ChatDataError(f"{where}: role must be one of {list(ROLES)}, got {role!r}")
    if not isinstance(content, str):
        raise ChatDataError(f"{where}: content must be a string, got {type(content).__name__}")
    return role, content


# -- templates ---------------------------------------------------------------------------


Messages = Sequence[Mapping[str, str]]


class ChatTemplate:
    """Renders a conversation to text: ChatML (``source=None``) or a Jinja template.

    ``special_tokens`` are the tokenizer's special token texts by key (``bos_token``,
    ``eos_token`` ...), passed to a Jinja template as ``transformers`` passes them.
    """

    def __init__(
        self,
        source: str | None = None,
        *,
        name: str = "chatml",
        special_tokens: Mapping[str, str] | None = None,
    ) -> None:
        self.source = source
        self.name = name
        self.special_tokens = dict(special_tokens or {})
        self._compiled: Any = None
        self._end_of_turn: str | None = None
        if source is not None:
            self._compiled = _compile(source, name)

    @classmethod
    def chatml(cls) -> ChatTemplate:
        """The built-in ChatML template (no jinja2 needed)."""
        return cls(None, name="chatml")

    @property
    def has_generation_marks(self) -> bool:
        """Whether the template marks the assistant's text with ``{% generation %}``."""
        return self.source is not None and bool(_GENERATION_TAG.search(self.source))

    def render(self, messages: Messages, add_generation_prompt: bool = False) -> str:
        """The conversation as text (plus the assistant's header when asked)."""
        return self._render(messages, add_generation_prompt, None)

    def render_with_spans(
        self, messages: Messages, add_generation_prompt: bool = False
    ) -> tuple[str, list[tuple[int, int]]]:
        """The text and the ``[start, end)`` character spans the assistant writes.

        With ``{% generation %}`` marks the spans are theirs (as ``transformers`` reads
        them). Otherwise the conversation is rendered prefix by prefix: an assistant
        message's span runs from the end of the previous messages rendered with the
        generation prompt to the end of the messages up to it, trailing whitespace left
        out. A template whose prefixes are not prefixes of the whole text is an error.
        """
        if self.has_generation_marks:
            spans: list[tuple[int, int]] = []
            text = self._render(messages, add_generation_prompt, spans)
            return text, spans
        text = self.render(messages, add_generation_prompt)
        spans = []
        for k, message in enumerate(messages):
            if message["role"] != "assistant":
                continue
            head = self.render(messages[:k], add_generation_prompt=True)
            upto = self.render(messages[: k + 1])
            if not (upto.startswith(head) and text.startswith(upto)):
                raise ChatTemplateError(
                    f"chat template {self.name}: rendering messages[:{k + 1}] does not give "
                    "a prefix of the whole conversation, so the assistant's tokens cannot "
                    "be found; mark them with {% generation %} ... {% endgeneration %}"
                )
            end = len(upto.rstrip())
            if end > len(head):
                spans.append((len(head), end))
        return text, spans

    @property
    def end_of_turn(self) -> str:
        """The text the template closes an assistant message with (whitespace after it
        left out): ``<|im_end|>`` for ChatML; empty when there is none."""
        if self._end_of_turn is None:
            mark = "\ue000"
            text = self.render(
                [{"role": "user", "content": "x"}, {"role": "assistant", "content": mark}]
            )
            self._end_of_turn = text[text.rindex(mark) + 1 :].strip() if mark in text else ""
        return self._end_of_turn

    def _render(
        self, messages: Messages, add_generation_prompt: bool, spans: list[tuple[int, int]] | None
    ) -> str:
        plain = [{"role": str(m["role"]), "content": str(m["content"])} for m in messages]
        if self._compiled is None:
            text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in plain)
            return text + ("<|im_start|>assistant\n" if add_generation_prompt else "")
        return _render_jinja(
            self._compiled,
            self.name,
            spans,
            {
                **self.special_tokens,
                "messages": plain,
                "tools": None,
                "documents": None,
                "add_generation_prompt": bool(add_generation_prompt),
            },
        )

    def __repr__(self) -> str:
        return f"ChatTemplate(name={self.name!r})"


def load_chat_template(spec: str | os.PathLike[str]) -> ChatTemplate:
    """``"chatml"``, a ``tokenizer_config.json`` (its ``chat_template``, else the
    ``chat_template.jinja`` beside it) or a ``.jinja`` file."""
    if str(spec) == "chatml":
        return ChatTemplate.chatml()
    path = Path(spec)
    if not path.is_file():
        raise ChatTemplateError(
            f"chat template {spec}: no such file (use 'chatml' or a tokenizer_config.json)"
        )
    if path.suffix.lower() != ".json":
        return ChatTemplate(_read_text(path), name=str(path))
    try:
        config = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise ChatTemplateError(f"{path}: not JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(config, dict):
        raise ChatTemplateError(f"{path}: must hold a JSON object")
    source = config.get("chat_template")
    if isinstance(source, list):
        named = {t.get("name"): t.get("template") for t in source if isinstance(t, dict)}
        source = named.get("default")
    if source is None and (path.parent / "chat_template.jinja").is_file():
        source = _read_text(path.parent / "chat_template.jinja")
    if not isinstance(source, str):
        raise ChatTemplateError(
            f"{path}: no 'chat_template' string (nor a default among named templates, nor "
            "a chat_template.jinja beside it)"
        )
    specials = {}
    for key in _SPECIAL_KEYS:
        value = config.get(key)
        if isinstance(value, dict):
            value = value.get("content")
        if isinstance(value, str):
            specials[key] = value
    return ChatTemplate(source, name=str(path), special_tokens=specials)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ChatTemplateError(f"{path}: cannot read it ({exc})") from None


# -- Jinja (lazy) ------------------------------------------------------------------------

_ENV: Any = None


def _environment() -> Any:
    """The sandboxed Jinja environment, built once (jinja2 imported here only)."""
    global _ENV
    if _ENV is None:
        _ENV = _build_environment()
    return _ENV


def _build_environment() -> Any:
    try:
        import jinja2
        import jinja2.ext
        from jinja2.sandbox import ImmutableSandboxedEnvironment
    except ImportError:
        raise ChatTemplateError(
            'Jinja chat templates need jinja2: pip install "hyso-tokenizer[chat]"'
        ) from None
    from datetime import datetime

    from ._chat_jinja import generation_extension, restricted_globals

    class Sandbox(ImmutableSandboxedEnvironment):  # type: ignore[misc]
        """Refuses unsafe attribute access outright, instead of yielding an Undefined
        that renders as an empty string."""

        def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
            raise jinja2.exceptions.SecurityError(
                f"access to attribute {attribute!r} of a {type(obj).__name__} is unsafe"
            )

    env = Sandbox(
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=[generation_extension(jinja2), jinja2.ext.loopcontrols],
    )

    def tojson(x: Any, ensure_ascii: bool = False, indent: Any = None, separators: Any = None,
               sort_keys: bool = False) -> str:  # fmt: skip
        return json.dumps(
            x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
        )

    def raise_exception(message: str) -> None:
        raise jinja2.exceptions.TemplateError(message)

    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    env.globals.update(restricted_globals(jinja2))
    return env


def _compile(source: str, name: str) -> Any:
    env = _environment()
    from jinja2.exceptions import TemplateSyntaxError

    try:
        return env.from_string(source)
    except TemplateSyntaxError as exc:
        raise ChatTemplateError(
            f"chat template {name}: Jinja syntax error at line {exc.lineno}: {exc.message}"
        ) from None


def _render_jinja(
    compiled: Any, name: str, spans: list[tuple[int, int]] | None, variables: dict[str, Any]
) -> str:
    from jinja2.exceptions import SecurityError, TemplateError

    try:
        if spans is None:
            return str(compiled.render(**variables))
        blocks: list[str] = []
        with compiled.environment.track_generation(blocks, spans):
            for block in compiled.generate(**variables):
                blocks.append(block)
        return "".join(blocks)
    except SecurityError as exc:
        raise ChatTemplateError(f"chat template {name}: refused by the sandbox: {exc}") from None
    except TemplateError as exc:
        raise ChatTemplateError(f"chat template {name}: {type(exc).__name__}: {exc}") from None


# -- tokenizing --------------------------------------------------------------------------


@dataclass(frozen=True)
class ChatEncoding:
    """A conversation's token ids and which of them the assistant writes (1) or not (0)."""

    ids: list[int]
    assistant_mask: list[int]

    @property
    def labels(self) -> list[int]:
        """``ids`` where the assistant writes, :data:`IGNORE_INDEX` elsewhere."""
        return [t if m else IGNORE_INDEX for t, m in zip(self.ids, self.assistant_mask)]


def encode_chat(
    tokenizer: Any,
    template: ChatTemplate,
    messages: Messages,
    add_generation_prompt: bool = False,
) -> ChatEncoding:
    """``messages`` rendered by ``template`` and encoded by ``tokenizer`` (a
    :class:`~hyso.core.tokenizer.HysoBPETokenizer`), every special token's text matched
    and nothing added around the ids, with the assistant mask (see the module docstring).

    A token is in the mask when any of its bytes lies in an assistant span. A tokenizer
    whose normalisation changes the text is refused (the spans would not line up).
    """
    text, spans = template.render_with_spans(messages, add_generation_prompt)
    ids = tokenizer.encode(text, allowed_special="all")
    ends: list[int] = []
    pos = 0
    for token_id in ids:
        piece = tokenizer.id_to_token(token_id)
        pos += len(piece.encode("utf-8") if isinstance(piece, str) else piece)
        ends.append(pos)
    if pos != len(text.encode("utf-8")):
        raise ChatTemplateError(
            f"the tokenizer changes the text it encodes ({pos} bytes of tokens for "
            f"{len(text.encode('utf-8'))} bytes of text: lowercase or normalize), so the "
            "assistant's tokens cannot be found"
        )
    byte_spans = [(len(text[:s].encode("utf-8")), len(text[:e].encode("utf-8"))) for s, e in spans]
    mask = [0] * len(ids)
    k, start = 0, 0
    for i, end in enumerate(ends):
        while k < len(byte_spans) and start >= byte_spans[k][1]:
            k += 1
        if k == len(byte_spans):
            break
        if end > byte_spans[k][0] and end > start:
            mask[i] = 1
        start = end
    return ChatEncoding(ids, mask)
