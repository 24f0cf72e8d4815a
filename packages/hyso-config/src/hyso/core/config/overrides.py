"""Command-line overrides: the grammar and typed application (values: ``values.py``).

Grammar (one string each)::

    key.path=value     change an existing key (unknown keys are errors, with suggestions)
    +key.path=value    add a new key (an error if it exists)
    ~key.path          delete a key

The value after ``=`` is read by :func:`hyso.core.config.values.parse_value`; the
type rule for a replaced value is :func:`hyso.core.config.merge.typed_value`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from .config import Config, suggest_key, to_plain
from .errors import ConfigError, a_kind, short
from .interpolation import escape_tree, resolve
from .limits import MAX_DEPTH, check_text, check_tree
from .merge import strip_markers, typed_value
from .values import parse_value

__all__ = ["Override", "apply_overrides", "build_config", "parse_override", "parse_overrides"]

_SPACE = re.compile(r"\s")


class Override(NamedTuple):
    """One parsed override: ``op`` is ``"set"``, ``"add"`` or ``"delete"``."""

    op: str
    key: str
    value: Any
    text: str


def parse_override(text: str) -> Override:
    """Parse one override string (see the module docstring for the grammar)."""
    if not isinstance(text, str):
        raise ConfigError(
            f"an override must be a string like 'training.lr=0.001', got "
            f"{type(text).__name__} {text!r}"
        )
    check_text(text, f"override {short(text, 100)}")
    key, eq, raw = text.partition("=")
    op = {"+": "add", "~": "delete"}.get(key[:1], "set")
    if op != "set":
        key = key[1:]
    if key[:1] in ("+", "~"):
        raise ConfigError(
            f"override {text!r}: one prefix at most; write +key=value to add a key, "
            "key=value to change one, ~key to delete one"
        )
    if op == "delete":
        if eq:
            raise ConfigError(f"override {text!r}: a deletion takes no value; write ~{key}")
    elif not eq:
        raise ConfigError(
            f"override {text!r} has no '=': write {text}=VALUE to set it"
            + ("" if op == "add" else f", or ~{text} to delete it")
        )
    _check_key(key, text)
    where = f"override {short(text, 100)}"
    value = parse_value(raw, where=where) if op != "delete" else None
    return Override(op, key, value, text)


def parse_overrides(argv: Iterable[str]) -> dict[str, Any]:
    """Parse ``["training.lr=0.0001", "model.layers=12"]`` into a nested mapping.

    The result suits ``merge_config(cfg, ...)``; deletions (``~key``) cannot be
    written as a mapping, so pass those to ``apply_overrides``.
    """
    out: dict[str, Any] = {}
    for ov in map(parse_override, _as_list(argv)):
        if ov.op == "delete":
            raise ConfigError(
                f"override {ov.text!r}: a deletion cannot be expressed as a mapping for "
                "merge_config; use apply_overrides(cfg, overrides) or load_config_with_overrides"
            )
        node = out
        parts = ov.key.split(".")
        for i, part in enumerate(parts[:-1]):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                prefix = ".".join(parts[: i + 1])
                raise ConfigError(f"override {ov.text!r} conflicts with an earlier '{prefix}=...'")
        if parts[-1] in node:
            raise ConfigError(f"override {ov.text!r}: key '{ov.key}' is set twice; keep one")
        node[parts[-1]] = ov.value
    return out


def apply_overrides(
    cfg: Mapping[str, Any], overrides: Iterable[str], *, source: str | None = None
) -> Config:
    """Apply override strings to ``cfg`` with type checks and return a new, resolved ``Config``.

    A ``Config`` loaded from a file is re-resolved from its unresolved form, so an
    override of ``training.lr`` reaches every ``${training.lr}``; other mappings are
    taken as final values. The result remembers its source and every override applied.
    """
    meta = cfg._meta if isinstance(cfg, Config) else {}
    # Without the unresolved form, values are final: escape them so text holding "${"
    # stays text, while interpolations in the overrides still resolve.
    tree = to_plain(meta["raw"]) if "raw" in meta else escape_tree(to_plain(cfg))
    return build_config(
        tree,
        overrides,
        source=source if source is not None else meta.get("source"),
        earlier=meta.get("overrides", []),
    )


def build_config(
    tree: dict[str, Any],
    overrides: Iterable[str],
    *,
    source: str | None,
    earlier: Iterable[str] = (),
) -> Config:
    """Apply ``overrides`` to the unresolved plain ``tree`` (in place), resolve, remember all."""
    texts = _as_list(overrides)
    for ov in map(parse_override, texts):
        _apply(tree, ov)
    result = Config(resolve(tree))
    result._meta.update(raw=tree, source=source, overrides=[*earlier, *texts])
    return result


def _as_list(argv: Iterable[str]) -> list[str]:
    if isinstance(argv, (str, bytes)):
        raise ConfigError(
            f"overrides must be a list of 'key=value' strings, got the single string {argv!r}: "
            "wrap it in a list"
        )
    return list(argv)


def _check_key(key: str, text: str) -> None:
    if not key:
        raise ConfigError(
            f"override {text!r} has an empty key: write KEY.PATH=VALUE, e.g. training.lr=0.001"
        )
    if _SPACE.search(key):
        raise ConfigError(
            f"override {text!r}: key '{key}' contains whitespace; write key.path=value "
            "with no spaces around '='"
        )
    parts = key.split(".")
    if "" in parts:
        raise ConfigError(
            f"override {text!r}: key '{key}' has an empty part; write dotted keys like training.lr"
        )
    if len(parts) > MAX_DEPTH:
        raise ConfigError(
            f"override {short(text)}: key has {len(parts)} parts, more than the {MAX_DEPTH} "
            "levels a config may nest"
        )


def _apply(tree: dict[str, Any], ov: Override) -> None:
    parts = ov.key.split(".")
    if isinstance(ov.value, (dict, list)):  # the section it lands in counts too
        check_tree(ov.value, f"override {short(ov.text, 100)}", start=len(parts) + 1)
    node = tree
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if part not in node:
            if ov.op != "add":
                _missing(tree, ov, ov.key)
            child = node[part] = {}
        elif not isinstance(child, dict):
            where = ".".join(parts[: i + 1])
            raise ConfigError(
                f"override {ov.text!r}: '{where}' is {a_kind(child)} ({short(child)}), not a "
                "section, so it has no keys below it"
            )
        node = child
    leaf = parts[-1]
    if ov.op == "delete":
        if leaf not in node:
            _missing(tree, ov, ov.key)
        del node[leaf]
    elif ov.op == "add":
        if leaf in node:
            raise ConfigError(
                f"override {ov.text!r}: key '{ov.key}' already exists "
                f"(value {short(node[leaf])}); "
                f"write {ov.text[1:]} to change it"
            )
        node[leaf] = strip_markers(ov.value, ov.key)
    else:
        if leaf not in node:
            _missing(tree, ov, ov.key)
        node[leaf] = typed_value(node[leaf], ov.value, ov.key, ov.text)


def _missing(tree: dict[str, Any], ov: Override, key: str) -> None:
    hint = suggest_key(key, tree)
    add = "" if ov.op == "delete" else f"; to add a new key write +{ov.text.lstrip('+')}"
    raise ConfigError(f"override {ov.text!r}: no key '{key}' in the config{hint}{add}")
