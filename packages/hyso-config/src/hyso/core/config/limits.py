"""What hyso-config refuses to read: the size and depth limits, and text it cannot save.

Config files, overrides and environment values may come from careless or hostile
hands, so everything that could grow without bound is bounded, and each check runs
before the step that would recurse or allocate without limit. Every limit raises a
``ConfigError`` naming the file, override or key at fault. The figures are far
beyond what a training config needs.
"""

from __future__ import annotations

import re
from typing import Any

from .errors import ConfigError

__all__ = [
    "MAX_DEPTH",
    "MAX_FILES",
    "MAX_FILE_BYTES",
    "MAX_INTERPOLATED_CHARS",
    "MAX_SWEEP_POINTS",
    "MAX_VALUES",
    "bracket_depth",
    "check_depth_of_text",
    "check_text",
    "check_tree",
    "has_surrogate",
]

MAX_DEPTH = 100
"""Levels of nested mappings and lists in a config (the top-level mapping is level 1)."""
MAX_VALUES = 1_000_000
"""Values in one parsed document or one resolved config, counted with aliases and
``${...}`` references expanded."""
MAX_FILE_BYTES = 16 * 1024 * 1024
"""Bytes in one config file (a regular file; FIFOs and devices are refused)."""
MAX_FILES = 100
"""Files read to load one config: the file and its ``_base_`` files, counted each time read."""
MAX_INTERPOLATED_CHARS = 10_000_000
"""Characters of text that ``${...}`` interpolation may build into one config."""
MAX_SWEEP_POINTS = 10_000
"""Points in one sweep grid (the product of the list lengths)."""

# Patterns compiled on first use (``re`` caches them), so importing stays cheap.
_JSON_STRING = r'"(?:[^"\\]|\\.)*"'
_NOT_BRACKETS = r"[^\[\](){}]+"
_SURROGATE = "[\ud800-\udfff]"


def has_surrogate(text: str) -> bool:
    """Whether ``text`` holds a lone surrogate (``\\udc80``), which UTF-8 cannot encode."""
    return not text.isascii() and re.search(_SURROGATE, text) is not None


def check_text(text: str, where: str) -> None:
    """Refuse text with a lone surrogate: it cannot be written to a file or a log."""
    if has_surrogate(text):
        pos = re.search(_SURROGATE, text).start()  # type: ignore[union-attr]
        raise ConfigError(
            f"{where}: holds the lone surrogate {text[pos]!r} at character {pos}, which is "
            "not valid Unicode text (an undecodable byte?); give UTF-8 text"
        )


def bracket_depth(text: str, *, json: bool = False) -> int:
    """An upper bound of the nesting of the value ``text`` spells (a Python literal, YAML
    flow, or JSON where ``json`` skips strings), from its brackets; the scan stops at
    ``MAX_DEPTH + 1``."""
    opened = text.count("[") + text.count("{") + text.count("(")
    if opened <= MAX_DEPTH:  # the common case: too few brackets to matter
        return opened
    if json:
        text = re.sub(_JSON_STRING, "", text, flags=re.DOTALL)
    depth = deepest = 0
    for char in re.sub(_NOT_BRACKETS, "", text):
        if char in "[({":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_DEPTH:
                    break
        elif depth:
            depth -= 1
    return deepest


def check_depth_of_text(text: str, where: str, *, json: bool = False) -> None:
    """Refuse ``text`` whose brackets nest deeper than ``MAX_DEPTH``, before parsing it."""
    depth = bracket_depth(text, json=json)
    if depth > MAX_DEPTH:
        raise ConfigError(
            f"{where}: nests more than {MAX_DEPTH} levels deep (counted from its brackets); "
            "flatten it"
        )


def check_tree(
    data: Any, where: str, *, max_values: int = MAX_VALUES, start: int = 1, counted: int = 0
) -> int:
    """Refuse a parsed tree deeper than ``MAX_DEPTH`` or holding more than ``max_values``
    values (shared parts counted each time they appear). Iterative, so a deep or
    self-containing tree cannot exhaust the stack. ``start`` is the level of ``data``,
    ``counted`` the values already counted elsewhere; returns ``counted`` plus the
    values of ``data``."""
    count = counted
    level, depth = [data], start
    while level:  # breadth first, one level of nesting at a time
        if depth > MAX_DEPTH:
            raise ConfigError(
                f"{where}: nests more than {MAX_DEPTH} levels deep (mappings and lists inside "
                "each other, counting aliases and ${...} references); flatten it"
            )
        below: list[Any] = []
        for node in level:
            children = node.values() if isinstance(node, dict) else node
            count += len(children)
            if count > max_values:
                raise ConfigError(
                    f"{where}: expands to more than {max_values:,} values (through YAML "
                    "aliases or ${...} references that repeat a section?); config files "
                    "are expected to be far smaller"
                )
            for child in children:
                if isinstance(child, (dict, list)):
                    below.append(child)
        level, depth = below, depth + 1
    return count
