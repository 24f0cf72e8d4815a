"""``${key.path}`` and ``${env:NAME,default}`` interpolation over a plain config tree.

A string that is exactly one ``${...}`` takes the referenced value with its type
(a float stays a float, a section stays a section); inside longer text the value
is formatted into the string. ``\\${`` is a literal ``${``. Environment values and
defaults are parsed like override values (``32`` is an int, ``abc`` a string).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from .config import Config, suggest_key, to_plain
from .errors import ConfigError, a_kind
from .values import parse_value

__all__ = ["escape", "escape_tree", "has_interpolation", "resolve", "resolve_interpolations"]

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


def resolve(tree: dict[str, Any]) -> dict[str, Any]:
    """A new plain tree with every interpolation in ``tree`` replaced by its value."""
    return _Resolver(tree).resolve_all()


class _Resolver:
    """Resolves by key path (a tuple, so keys holding dots work), memoised, cycle-checked."""

    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.done: dict[tuple[str, ...], Any] = {}
        self.active: list[tuple[str, ...]] = []

    def resolve_all(self) -> dict[str, Any]:
        return {key: self.resolve_path((key,)) for key in self.root}

    def resolve_path(self, path: tuple[str, ...]) -> Any:
        if path in self.done:
            return self.done[path]
        if path in self.active:
            chain = [*self.active[self.active.index(path) :], path]
            cycle = " -> ".join(".".join(p) for p in chain)
            raise ConfigError(f"interpolation cycle: {cycle}; break it by writing a value")
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
        pos = 0
        for match in _TOKEN.finditer(text):
            parts.append(text[pos : match.start()])
            pos = match.end()
            token = match.group(0)
            if token == "\\${":
                parts.append("${")
                continue
            if match.group(1) is None:
                raise ConfigError(
                    f"key '{where}': unterminated or nested '${{' in {text!r}; write "
                    "${key.path} or ${env:NAME}, or \\${ for a literal ${"
                )
            value = self.reference(match.group(1).strip(), where)
            if token == text:
                return to_plain(value)
            if isinstance(value, (dict, list)):
                raise ConfigError(
                    f"key '{where}': {token} is {a_kind(value)} and cannot be "
                    f"embedded in the text {text!r}; use it alone as the whole value"
                )
            parts.append(_format(value))
        parts.append(text[pos:])
        return "".join(parts)

    def reference(self, expr: str, where: str) -> Any:
        if expr.startswith("env:"):
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

    def env(self, spec: str, where: str) -> Any:
        name, sep, default = spec.partition(",")
        name = name.strip()
        if not _ENV_NAME.fullmatch(name):
            raise ConfigError(
                f"key '{where}': '${{env:{spec}}}' needs an environment variable name "
                "(letters, digits, _), e.g. ${env:DATA_DIR} or ${env:DATA_DIR,/tmp/data}"
            )
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
