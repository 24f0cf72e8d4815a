"""Keep values read from the environment out of run files.

A config value written ``${env:NAME}`` (or built from one, directly or through
``${other.key}`` references) is often a secret: a token, a password in a URL, a
private path. Run files record such a value as the expression the config holds,
never as its resolved text, as Hydra records interpolations.

hyso-config knows which values read the environment
(:func:`hyso.core.config.to_dict_env_unresolved`); this module lays that view over
any tree derived from the resolved config (the run's settings, say), so every value
that differs between the two views is written as its expression.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["redact_env"]

_MISSING = object()


def redact_env(resolved: Any, cfg: Any) -> Any:
    """``resolved`` (a plain tree laid out like ``cfg``) with every value that ``cfg``
    read from the environment replaced by its unresolved expression, e.g.
    ``"${env:API_TOKEN}"``. ``cfg`` that is no loaded ``Config`` has nothing to redact."""
    from hyso.core.config import Config, to_dict_env_unresolved

    if not isinstance(cfg, Config):
        return resolved
    return _overlay(resolved, cfg.to_dict(), to_dict_env_unresolved(cfg))


def _overlay(node: Any, plain: Any, env_view: Any) -> Any:
    """``node`` where ``plain`` (the resolved config) and ``env_view`` disagree: the
    ``env_view`` value; elsewhere ``node`` unchanged."""
    if plain is _MISSING or env_view is _MISSING:
        return node
    if isinstance(node, Mapping):
        plain_map = plain if isinstance(plain, Mapping) else {}
        env_map = env_view if isinstance(env_view, Mapping) else {}
        return {
            k: _overlay(v, plain_map.get(k, _MISSING), env_map.get(k, _MISSING))
            for k, v in node.items()
        }
    if isinstance(node, list) and isinstance(plain, list) and isinstance(env_view, list):
        if len(plain) == len(env_view) == len(node):
            return [_overlay(v, p, e) for v, p, e in zip(node, plain, env_view, strict=True)]
    return env_view if plain != env_view else node
