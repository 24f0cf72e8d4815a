"""``${key.path}`` and ``${env:NAME,default}`` interpolation over a plain config tree.

A string that is exactly one ``${...}`` takes the referenced value with its type
(a float stays a float, a section stays a section); inside longer text the value
is formatted into the string. ``\\${`` is a literal ``${``. Environment values and
defaults are parsed like override values (``32`` is an int, ``abc`` a string).

Resolution is bounded (``limits``): reference chains, the text built and the values
copied by references. ``to_dict_env_unresolved`` resolves everything except the
environment, for saving a config without the secrets it read.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from .config import Config, suggest_key, to_plain
from .errors import ConfigError, a_kind
from .limits import MAX_DEPTH, MAX_INTERPOLATED_CHARS, check_tree
from .values import parse_value

__all__ = [
    "EnvText",
    "escape",
    "escape_tree",
    "has_interpolation",
    "resolve",
    "resolve_interpolations",
    "to_dict_env_unresolved",
]

_TOKEN = re.compile(r"\\\$\{|\$\{([^${}]*)\}|\$\{")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_REF = re.compile(r"(?<!\\)\$\{")
_MISSING = object()


def has_interpolation(value: Any) -> bool:
    """Whether ``value`` is a string holding an (unescaped) ``${``."""
    return isinstance(value, str) and _REF.search(value) is not None


def escape(text: str) -> str:
    """Text that resolves back to ``text`` unchanged (each ``${`` written ``\\${``)."""
    return text.replace("${", "\\${")


def escape_tree(value: Any) -> Any:
    """``value`` (plain) with every string escaped, so resolving it changes nothing."""
    if isinstance(value, str):
        return escape(value)
    if isinstance(value, dict):
        return {k: escape_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [escape_tree(v) for v in value]
    return value


def resolve_interpolations(cfg: Mapping[str, Any]) -> Config:
    """A ``Config`` of ``cfg`` (a mapping built in code) with its interpolations resolved."""
    return Config(resolve(to_plain(cfg)))


def to_dict_env_unresolved(cfg: Mapping[str, Any], *, saved: bool = False) -> dict[str, Any]:
    """``cfg`` as a plain dict with every ``${env:...}`` left as written, others resolved.

    Text built from an environment value keeps the reference (``"Bearer ${env:TOKEN}"``)
    and so does a key referring to one, so no resolved secret is in the result. A
    ``Config`` loaded from a file (or made from one by overrides, merges, sweeps) is
    resolved again from its unresolved form; any other mapping is taken as final.
    With ``saved``, strings are in file form: a literal ``${`` is written ``\\${``
    (what ``save_config`` writes).
    """
    meta = cfg._meta if isinstance(cfg, Config) else {}
    raw = meta.get("raw")
    if raw is None:
        plain = to_plain(cfg)
        return escape_tree(plain) if saved else plain
    return _export(resolve(to_plain(raw), keep_env=True), saved)


def _export(value: Any, saved: bool) -> Any:
    if isinstance(value, str):
        if isinstance(value, EnvText):
            return value.saved if saved else str(value)
        return escape(value) if saved else value
    if isinstance(value, dict):
        return {k: _export(v, saved) for k, v in value.items()}
    if isinstance(value, list):
        return [_export(v, saved) for v in value]
    return value


def resolve(tree: dict[str, Any], *, keep_env: bool = False) -> dict[str, Any]:
    """A new plain tree with every interpolation in ``tree`` replaced by its value.

    Parts referenced more than once may be shared (wrap or copy the result before
    changing it). Refused with a ``ConfigError`` naming the key: references chained
    or a result nested deeper than ``MAX_DEPTH``, a result of more than ``MAX_VALUES`` values,
    more than ``MAX_INTERPOLATED_CHARS`` characters built into text. With
    ``keep_env``, each ``${env:...}`` (and text or values built from one) stays as
    written: strings holding one are :class:`EnvText`.
    """
    resolver = _Resolver(tree, keep_env)
    result = resolver.resolve_all()
    if not resolver.expanded:  # the result has the shape of ``tree``, checked on input
        return result
    try:
        check_tree(result, "the config")
    except ConfigError:  # again, key by key, to name the key at fault
        counted = len(result)
        for key, value in result.items():
            if isinstance(value, (dict, list)):
                counted = check_tree(value, f"key '{key}'", start=2, counted=counted)
        raise
    return result


class EnvText(str):
    """Text holding ``${env:...}`` left unresolved (``resolve(..., keep_env=True)``).

    The string itself shows the text with each reference as written; ``saved`` is the
    same text escaped for a config file, so that loading it resolves only the
    environment references again.
    """

    saved: str


def _env_text(shown: str, saved: str) -> EnvText:
    text = EnvText(shown)
    text.saved = saved
    return text


class _Resolver:
    """Resolves by key path (a tuple, so keys holding dots work), memoised, cycle-checked."""

    def __init__(self, root: dict[str, Any], keep_env: bool = False) -> None:
        self.root = root
        self.keep_env = keep_env
        self.done: dict[tuple[str, ...], Any] = {}
        self.active: list[tuple[str, ...]] = []
        self.chars = 0  # characters built into text so far (MAX_INTERPOLATED_CHARS)
        self.expanded = False  # whether a reference put a section or list in another place

    def resolve_all(self) -> dict[str, Any]:
        return {key: self.resolve_path((key,)) for key in self.root}

    def resolve_path(self, path: tuple[str, ...]) -> Any:
        if path in self.done:
            return self.done[path]
        if path in self.active:
            chain = [*self.active[self.active.index(path) :], path]
            cycle = " -> ".join(".".join(p) for p in chain)
            raise ConfigError(f"interpolation cycle: {cycle}; break it by writing a value")
        if len(self.active) >= MAX_DEPTH:
            raise ConfigError(
                f"key '{'.'.join(path)}': sections and ${{...}} references that lead to "
                f"further references nest more than {MAX_DEPTH} deep; write a value somewhere "
                "in the chain"
            )
        self.active.append(path)
        value = self.resolve_value(self.lookup(path), path, ".".join(path))
        self.active.pop()
        self.done[path] = value
        return value

    def lookup(self, path: tuple[str, ...]) -> Any:
        node: Any = self.root
        for part in path:
            if not isinstance(node, dict) or part not in node:
                return _MISSING
            node = node[part]
        return node

    def resolve_value(self, value: Any, path: tuple[str, ...] | None, where: str) -> Any:
        """Resolve ``value`` found at ``path`` (``None`` inside a list: not addressable)."""
        if isinstance(value, dict):
            if path is None:
                return {k: self.resolve_value(v, None, f"{where}.{k}") for k, v in value.items()}
            return {k: self.resolve_path((*path, k)) for k in value}
        if isinstance(value, list):
            return [self.resolve_value(v, None, f"{where}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, str) and "${" in value:
            return self.resolve_string(value, where)
        return value

    def resolve_string(self, text: str, where: str) -> Any:
        parts: list[str] = []
        saved: list[str] | None = None  # the escaped form, once an env reference is kept
        pos = 0
        for match in _TOKEN.finditer(text):
            literal = text[pos : match.start()]
            parts.append(literal)
            pos = match.end()
            token = match.group(0)
            if saved is not None:
                saved.append(escape(literal))
            if token == "\\${":
                parts.append("${")
                if saved is not None:
                    saved.append("\\${")
                continue
            if match.group(1) is None:
                raise ConfigError(
                    f"key '{where}': unterminated or nested '${{' in {text!r}; write "
                    "${key.path} or ${env:NAME}, or \\${ for a literal ${"
                )
            value = self.reference(match.group(1).strip(), where)
            if token == text:
                if isinstance(value, (dict, list)):
                    self.expanded = True
                return value
            if isinstance(value, (dict, list)):
                raise ConfigError(
                    f"key '{where}': {token} is {a_kind(value)} and cannot be "
                    f"embedded in the text {text!r}; use it alone as the whole value"
                )
            if isinstance(value, EnvText) and saved is None:
                saved = [escape(p) for p in parts]
            piece = _format(value)
            parts.append(piece)
            if saved is not None:
                saved.append(value.saved if isinstance(value, EnvText) else escape(piece))
        parts.append(text[pos:])
        size = sum(map(len, parts))
        self.chars += size
        if self.chars > MAX_INTERPOLATED_CHARS:
            raise ConfigError(
                f"key '{where}': interpolation builds more than {MAX_INTERPOLATED_CHARS:,} "
                f"characters of text (this value alone {size:,}; references that repeat "
                "other values many times over?); config values are expected to be far smaller"
            )
        if saved is None:
            return "".join(parts)
        saved.append(escape(text[pos:]))
        return _env_text("".join(parts), "".join(saved))

    def reference(self, expr: str, where: str) -> Any:
        if expr.startswith("env:"):
            if self.keep_env:
                token = f"${{{expr}}}"
                self.env(expr[4:], where, check_only=True)
                return _env_text(token, token)
            return self.env(expr[4:], where)
        if ":" in expr or not expr or any(not p or p != p.strip() for p in expr.split(".")):
            raise ConfigError(
                f"key '{where}': '${{{expr}}}' is not a valid interpolation; write "
                "${key.path} or ${env:NAME} (or ${env:NAME,default})"
            )
        path = tuple(expr.split("."))
        if self.lookup(path) is _MISSING:
            hint = suggest_key(expr, self.root)
            raise ConfigError(f"key '{where}' refers to ${{{expr}}}, which does not exist{hint}")
        return self.resolve_path(path)

    def env(self, spec: str, where: str, check_only: bool = False) -> Any:
        name, sep, default = spec.partition(",")
        name = name.strip()
        if not _ENV_NAME.fullmatch(name):
            raise ConfigError(
                f"key '{where}': '${{env:{spec}}}' needs an environment variable name "
                "(letters, digits, _), e.g. ${env:DATA_DIR} or ${env:DATA_DIR,/tmp/data}"
            )
        if check_only:
            return None
        raw = os.environ.get(name)
        if raw is None:
            if not sep:
                raise ConfigError(
                    f"key '{where}' reads ${{env:{name}}}, but the environment variable "
                    f"{name} is not set; set it or give a default: ${{env:{name},VALUE}}"
                )
            raw = default.strip()
        return parse_value(raw, where=f"key '{where}' (from ${{env:{name}}})")


def _format(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
