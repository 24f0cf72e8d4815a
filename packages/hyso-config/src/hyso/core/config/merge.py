"""Deep merge: mappings merge key by key, everything else (lists included) is replaced.

A mapping on the override side that holds ``_replace_: true`` replaces the base
mapping whole instead of merging into it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .config import Config, to_plain
from .errors import ConfigError

__all__ = ["REPLACE_KEY", "deep_merge", "merge_config", "strip_markers"]

REPLACE_KEY = "_replace_"


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
    from .interpolation import resolve
    from .overrides import mapping_to_overrides

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
