"""Command-line overrides: the grammar, safe value parsing and typed application.

Grammar (one string each)::

    key.path=value     change an existing key (unknown keys are errors, with suggestions)
    +key.path=value    add a new key (an error if it exists)
    ~key.path          delete a key

Values: a Python literal (``1e-4``, ``[1, 2]``, ``{'a': 1}``, ``'text'``), ``true``/
``false``/``null``, ``inf``/``nan``, a YAML flow list or mapping (``[a, b]``), otherwise
the text itself. Nothing is ever evaluated as code.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NamedTuple

from .config import Config, suggest_key, to_plain
from .errors import ConfigError, a_kind, kind, suggest
from .interpolation import escape_tree, has_interpolation
from .merge import REPLACE_KEY, strip_markers

__all__ = [
    "Override",
    "apply_overrides",
    "build_config",
    "format_override",
    "mapping_to_overrides",
    "parse_override",
    "parse_overrides",
    "parse_value",
]

_WORDS: dict[str, Any] = {
    **dict.fromkeys(("true", "True", "TRUE"), True),
    **dict.fromkeys(("false", "False", "FALSE"), False),
    **dict.fromkeys(("null", "Null", "NULL", "~"), None),
    **dict.fromkeys(("inf", "+inf", ".inf", "+.inf", "Infinity"), math.inf),
    **dict.fromkeys(("-inf", "-.inf", "-Infinity"), -math.inf),
    **dict.fromkeys(("nan", ".nan", "NaN"), math.nan),
}
_SPACE = re.compile(r"\s")
_NAMEABLE = re.compile(r"[^.=\s+~][^.=\s]*")


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
    value = parse_value(raw, where=f"override {text!r}") if op != "delete" else None
    return Override(op, key, value, text)


def parse_value(text: str, where: str = "value") -> Any:
    """Parse an override value safely: literal, true/false/null, YAML flow, else the text."""
    import ast

    stripped = text.strip()
    if stripped in _WORDS:
        return _WORDS[stripped]
    try:
        value = ast.literal_eval(stripped)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        if stripped[:1] in ("[", "{"):
            return _parse_flow(stripped, where)
        return text
    return _check_literal(value, where)


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
    from .interpolation import resolve

    texts = _as_list(overrides)
    for ov in map(parse_override, texts):
        _apply(tree, ov)
    result = Config(resolve(tree))
    result._meta.update(raw=tree, source=source, overrides=[*earlier, *texts])
    return result


def format_override(key: str, value: Any) -> str:
    """The override string that sets ``key`` to ``value`` (``parse_override`` reads it back)."""
    return f"{key}={_format_value(value)}"


def mapping_to_overrides(
    base: Mapping[str, Any], override: Mapping[str, Any], merged: Mapping[str, Any]
) -> list[str] | None:
    """Override strings that turn ``base`` into ``merged = merge_config(base, override)``.

    Keys missing from ``base`` get ``+``; a change of type is a deletion and an add;
    a section holding keys an override cannot name (``a.b``, ``x=y``) is written
    whole. ``None`` when a top-level key cannot be named at all.
    """
    out: list[str] = []

    def walk(old: Mapping[str, Any], new: Mapping[str, Any], done: Any, prefix: str) -> None:
        for key, value in new.items():
            if key == REPLACE_KEY:
                continue
            path = f"{prefix}{key}"
            exists = key in old
            sub = old.get(key)
            if isinstance(value, Mapping) and not all(map(_nameable, _all_keys(value))):
                if exists:
                    out.append(f"~{path}")
                out.append("+" + format_override(path, done[key]))
            elif isinstance(value, Mapping) and isinstance(sub, Mapping):
                if value.get(REPLACE_KEY) is not True:
                    walk(sub, value, done[key], path + ".")
                    continue
                out.append(format_override(path, to_plain(value)))  # keeps the marker
            elif not exists:
                out.append("+" + format_override(path, strip_markers(value)))
            elif _fits(sub, value, path):
                out.append(format_override(path, to_plain(value)))
            else:  # a change of type: delete, then add
                out.extend([f"~{path}", "+" + format_override(path, strip_markers(value))])

    if not all(map(_nameable, override)):
        return None
    if override.get(REPLACE_KEY) is True:
        return [f"~{k}" for k in base] + ["+" + format_override(k, v) for k, v in merged.items()]
    walk(base, override, merged, "")
    return out


def _nameable(key: str) -> bool:
    return key == REPLACE_KEY or _NAMEABLE.fullmatch(key) is not None


def _all_keys(mapping: Mapping[str, Any]) -> Iterator[str]:
    for key, value in mapping.items():
        yield key
        if isinstance(value, Mapping):
            yield from _all_keys(value)


def _fits(old: Any, new: Any, key: str) -> bool:
    try:
        _typed(to_plain(old), to_plain(new), key, Override("set", key, new, key))
    except ConfigError:
        return False
    return True


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
    if "" in key.split("."):
        raise ConfigError(
            f"override {text!r}: key '{key}' has an empty part; write dotted keys like training.lr"
        )


def _parse_flow(text: str, where: str) -> Any:
    import yaml

    from ._yaml import load_yaml

    try:
        value = load_yaml(text)
    except yaml.YAMLError:
        raise ConfigError(
            f"{where}: {text!r} is neither a Python literal nor a YAML flow list/mapping; "
            f"check the brackets, or quote it to pass the text: \"'{text}'\""
        ) from None
    return _check_literal(value, where)


def _check_literal(value: Any, where: str) -> Any:
    if isinstance(value, (str, int, float, bool, type(None))):
        return value
    if isinstance(value, (list, tuple)):
        return [_check_literal(v, where) for v in value]
    if isinstance(value, dict):
        for k in value:
            if not isinstance(k, str):
                raise ConfigError(f"{where}: mapping key {k!r} must be a string; quote it")
        return {k: _check_literal(v, where) for k, v in value.items()}
    hint = " (write a list: [...])" if isinstance(value, (set, frozenset)) else ""
    raise ConfigError(f"{where}: {a_kind(value)} is not a config value{hint}")


def _apply(tree: dict[str, Any], ov: Override) -> None:
    parts = ov.key.split(".")
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
                f"override {ov.text!r}: '{where}' is {a_kind(child)} ({_short(child)}), not a "
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
                f"(value {_short(node[leaf])}); "
                f"write {ov.text[1:]} to change it"
            )
        node[leaf] = strip_markers(ov.value, ov.key)
    else:
        if leaf not in node:
            _missing(tree, ov, ov.key)
        node[leaf] = _typed(node[leaf], ov.value, ov.key, ov)


def _typed(old: Any, new: Any, key: str, ov: Override) -> Any:
    if old is None or new is None or has_interpolation(old) or has_interpolation(new):
        return strip_markers(new, key)
    if isinstance(old, dict) and isinstance(new, dict):
        if new.get(REPLACE_KEY) is True:
            return strip_markers(new, key)
        strip_markers(new, key)  # validates any _replace_ markers
        merged = dict(old)
        for sub, value in new.items():
            if sub == REPLACE_KEY:
                continue
            if sub not in old:
                raise ConfigError(
                    f"override {ov.text!r}: section '{key}' has no key '{sub}'"
                    f"{suggest(sub, old)}; add it with +{key}.{sub}=..."
                )
            merged[sub] = _typed(old[sub], value, f"{key}.{sub}", ov)
        return merged
    old_kind, new_kind = kind(old), kind(new)
    if old_kind == new_kind:
        return new
    if old_kind == "float" and new_kind == "int":
        # Stored as a float so the key keeps its type, unless that would round it.
        return float(new) if float(new) == new else new
    hint = f"; quote it to pass the text: {key}='{new}'" if old_kind == "str" else ""
    raise ConfigError(
        f"override {ov.text!r}: key '{key}' holds {a_kind(old)} ({_short(old)}) but the new "
        f"value is {a_kind(new)} ({_short(new)}); give {a_kind(old)} or null{hint}"
    )


def _missing(tree: dict[str, Any], ov: Override, key: str) -> None:
    hint = suggest_key(key, tree)
    add = "" if ov.op == "delete" else f"; to add a new key write +{ov.text.lstrip('+')}"
    raise ConfigError(f"override {ov.text!r}: no key '{key}' in the config{hint}{add}")


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _format_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (list, dict)) and _has_nonfinite(value):
        from ._yaml import dump_yaml

        return dump_yaml(value, flow=True).strip()
    return repr(to_plain(value))


def _has_nonfinite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_nonfinite(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_nonfinite(v) for v in value)
    return False
