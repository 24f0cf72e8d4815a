"""Keep values read from the environment out of run files.

A config value written ``${env:NAME}`` (or built from one, directly or through
``${other.key}`` references) is often a secret: a token, a password in a URL, a
private path. Run files record such a value as the expression the config holds,
never as its resolved text, as Hydra records interpolations.

The unresolved tree comes from what hyso-config remembers on a loaded ``Config``
(the tree before resolution); a config built without it has nothing to redact.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["env_derived_paths", "redact_env", "unresolved_tree"]

# ``${expr}`` not preceded by a backslash (``\${`` is a literal).
_INTERP = re.compile(r"(?<!\\)\$\{([^${}]*)\}")


def unresolved_tree(cfg: Any) -> dict[str, Any] | None:
    """The config tree before interpolations were resolved, if ``cfg`` remembers it."""
    meta = getattr(cfg, "_meta", None)
    raw = meta.get("raw") if isinstance(meta, Mapping) else None
    return raw if isinstance(raw, dict) else None


def env_derived_paths(raw: Mapping[str, Any]) -> dict[tuple[str, ...], str]:
    """``{key path: unresolved text}`` of every value that reads the environment,
    directly (``${env:NAME}``) or through references to such a value."""
    leaves: dict[tuple[str, ...], str] = {}
    _collect(raw, (), leaves)
    tainted = {p for p, text in leaves.items() if any(_is_env(e) for e in _INTERP.findall(text))}
    changed = True
    while changed:  # follow ${a.b} references to values already known to read the env
        changed = False
        for path, text in leaves.items():
            if path in tainted:
                continue
            refs = [tuple(e.strip().split(".")) for e in _INTERP.findall(text) if not _is_env(e)]
            if any(_under(ref, tainted) for ref in refs):
                tainted.add(path)
                changed = True
    return {p: leaves[p] for p in tainted}


def redact_env(resolved: Any, cfg: Any) -> Any:
    """``resolved`` (a plain tree) with every environment-derived value replaced by
    its unresolved expression, e.g. ``"${env:API_TOKEN}"``."""
    raw = unresolved_tree(cfg)
    if raw is None:
        return resolved
    paths = env_derived_paths(raw)
    if not paths:
        return resolved
    return _replace(resolved, (), paths)


def _is_env(expr: str) -> bool:
    return expr.strip().startswith("env:")


def _under(ref: tuple[str, ...], tainted: set[tuple[str, ...]]) -> bool:
    """``ref`` names a tainted value or a section holding one."""
    return any(path[: len(ref)] == ref for path in tainted)


def _collect(node: Any, path: tuple[str, ...], out: dict[tuple[str, ...], str]) -> None:
    if isinstance(node, str):
        if _INTERP.search(node):
            out[path] = node
    elif isinstance(node, Mapping):
        for key, value in node.items():
            _collect(value, (*path, str(key)), out)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _collect(value, (*path, str(i)), out)


def _replace(node: Any, path: tuple[str, ...], paths: dict[tuple[str, ...], str]) -> Any:
    if path in paths:
        return paths[path]
    if isinstance(node, Mapping):
        return {k: _replace(v, (*path, str(k)), paths) for k, v in node.items()}
    if isinstance(node, list):
        return [_replace(v, (*path, str(i)), paths) for i, v in enumerate(node)]
    return node
