"""Deep merge: mappings merge key by key, everything else (lists included) is replaced.

A mapping on the override side that holds ``_replace_: true`` replaces the base
mapping whole instead of merging into it. Also the typed replacement rule of
overrides (:func:`typed_value`) and the translation of a merge into override
strings (:func:`mapping_to_overrides`), so a merged config stays rebuildable.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from .config import Config, to_plain
from .errors import ConfigError, a_kind, kind, short, suggest
from .interpolation import has_interpolation, resolve
from .values import format_override

__all__ = [
    "REPLACE_KEY",
    "deep_merge",
    "mapping_to_overrides",
    "merge_config",
    "strip_markers",
    "typed_value",
]

REPLACE_KEY = "_replace_"
_NAMEABLE = re.compile(r"[^.=\s+~][^.=\s]*")


def merge_config(base: Mapping[str, Any], override: Mapping[str, Any]) -> Config:
    """Deep-merge ``override`` over ``base`` into a new ``Config``; both inputs stay untouched.

    Mappings merge recursively; lists and scalars in ``override`` replace those in
    ``base``; a mapping with ``_replace_: true`` replaces its counterpart whole. A
    ``base`` loaded from a file re-resolves its ``${...}`` references after the merge,
    passes on its source, and adds the merge to its overrides (``get_overrides``) as
    ``key=value`` strings.
    """
    for name, arg in (("base", base), ("override", override)):
        if not isinstance(arg, Mapping):
            raise ConfigError(
                f"merge_config: {name} must be a mapping (a Config or dict), "
                f"got {type(arg).__name__}"
            )
    plain = to_plain(override)
    meta = base._meta if isinstance(base, Config) else {}
    raw = meta.get("raw")
    start = to_plain(raw if raw is not None else base)
    if _wants_replace(plain, ""):
        tree = strip_markers(plain)
    else:
        tree = deep_merge(start, plain)
    if raw is None:
        return Config(tree)
    # A config loaded from a file keeps its interpolations live (as overrides do), and
    # the merge is remembered as override strings, so the run record
    # load_config_with_overrides(source, overrides) rebuilds this result.
    result = Config(resolve(tree))
    added = mapping_to_overrides(raw, plain, tree)
    if added is None:  # not expressible as overrides: no longer rebuildable from a source
        result._meta.update(raw=tree, source=None, overrides=[])
    else:
        result._meta.update(
            raw=tree, source=meta.get("source"), overrides=[*meta.get("overrides", []), *added]
        )
    return result


def deep_merge(base: dict[str, Any], override: dict[str, Any], path: str = "") -> dict[str, Any]:
    """Merge plain ``override`` over plain ``base`` (both already copies) and return ``base``."""
    for key, value in override.items():
        if key == REPLACE_KEY:
            continue
        where = f"{path}{key}"
        if isinstance(value, dict):
            if _wants_replace(value, where):
                base[key] = strip_markers(value, where)
            elif isinstance(base.get(key), dict):
                base[key] = deep_merge(base[key], value, where + ".")
            else:
                base[key] = strip_markers(value, where)
        else:
            base[key] = value
    return base


def strip_markers(value: Any, path: str = "") -> Any:
    """Remove ``_replace_`` markers (validating them) from a plain tree."""
    if isinstance(value, dict):
        _wants_replace(value, path)
        return {
            k: strip_markers(v, f"{path}.{k}" if path else k)
            for k, v in value.items()
            if k != REPLACE_KEY
        }
    if isinstance(value, list):
        return [strip_markers(v, path) for v in value]
    return value


def _wants_replace(mapping: dict[str, Any], path: str) -> bool:
    flag = mapping.get(REPLACE_KEY, False)
    if not isinstance(flag, bool):
        raise ConfigError(
            f"'{path}.{REPLACE_KEY}' must be true or false, got {flag!r}"
            if path
            else f"'{REPLACE_KEY}' must be true or false, got {flag!r}"
        )
    return flag


def typed_value(old: Any, new: Any, key: str, text: str) -> Any:
    """The value override ``text`` leaves at ``key`` where ``old`` stood, type-checked.

    The same type, an int for a float, ``null`` either way or a value holding
    ``${...}`` is fine; a mapping merges into a section key by key (each key must
    exist) unless it holds ``_replace_: true``. Anything else is a ConfigError.
    """
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
                    f"override {text!r}: section '{key}' has no key '{sub}'"
                    f"{suggest(sub, old)}; add it with +{key}.{sub}=..."
                )
            merged[sub] = typed_value(old[sub], value, f"{key}.{sub}", text)
        return merged
    old_kind, new_kind = kind(old), kind(new)
    if old_kind == new_kind:
        return new
    if old_kind == "float" and new_kind == "int":
        # Stored as a float so the key keeps its type, unless that would round it.
        return float(new) if float(new) == new else new
    hint = f"; quote it to pass the text: {key}='{new}'" if old_kind == "str" else ""
    raise ConfigError(
        f"override {text!r}: key '{key}' holds {a_kind(old)} ({short(old)}) but the new "
        f"value is {a_kind(new)} ({short(new)}); give {a_kind(old)} or null{hint}"
    )


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
        typed_value(to_plain(old), to_plain(new), key, key)
    except ConfigError:
        return False
    return True
