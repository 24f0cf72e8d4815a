"""The one exception type of hyso-config, and the did-you-mean helper its messages use."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["ConfigError", "a_kind", "did_you_mean", "kind", "short", "suggest"]


class ConfigError(ValueError):
    """Any problem with a config file, an override or a config value.

    The message names the file, key or override at fault and says what to write
    instead. ``path``, ``line`` and ``column`` (1-based) are set where known.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        super().__init__(message)
        self.path = path
        self.line = line
        self.column = column


def suggest(key: str, candidates: Iterable[str], limit: int = 3, prefix: str = "") -> str:
    """Return ``"; did you mean 'a' or 'b'?"`` for the candidates closest to ``key``, or ``""``.

    ``prefix`` is put before each suggestion shown (the section the candidates are in).
    """
    import difflib

    pool = sorted(set(candidates))
    close = difflib.get_close_matches(key, pool, n=limit, cutoff=0.6)
    # A key given without its section (``lr`` for ``training.lr``) matches on its last part.
    last = key.rsplit(".", 1)[-1]
    for cand in pool:
        if cand not in close and cand.rsplit(".", 1)[-1] == last and len(close) < limit:
            close.append(cand)
    return did_you_mean([prefix + c for c in close])


def did_you_mean(names: list[str]) -> str:
    """``"; did you mean 'a', 'b' or 'c'?"`` (``""`` for no names)."""
    if not names:
        return ""
    quoted = [f"'{n}'" for n in names]
    listed = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
    return f"; did you mean {listed}?"


def kind(value: object) -> str:
    """The config type name of ``value``: bool, int, float, str, list, mapping, null..."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, list):
        return "list"
    if value is None:
        return "null"
    return type(value).__name__


def a_kind(value: object) -> str:
    """``kind(value)`` with its article: "an int", "a float", "a mapping"."""
    name = kind(value)
    return f"an {name}" if name[0] in "aeiou" else f"a {name}"


def short(value: object, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, for error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
