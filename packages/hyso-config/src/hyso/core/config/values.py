"""One config value as override text: safe parsing and its inverse, formatting.

The leaf of the package's value handling: overrides, interpolation (``${env:...}``
values) and merges all read and write values through this module, which imports
nothing of theirs. Values: a Python literal (``1e-4``, ``[1, 2]``, ``{'a': 1}``,
``'text'``), ``true``/``false``/``null``, ``inf``/``nan``, a YAML flow list or
mapping (``[a, b]``), otherwise the text itself. Nothing is ever evaluated as code.
"""

from __future__ import annotations

import math
from typing import Any

from .config import to_plain
from .errors import ConfigError, a_kind
from .limits import check_depth_of_text, check_text

__all__ = ["format_override", "format_value", "parse_value"]

_WORDS: dict[str, Any] = {
    **dict.fromkeys(("true", "True", "TRUE"), True),
    **dict.fromkeys(("false", "False", "FALSE"), False),
    **dict.fromkeys(("null", "Null", "NULL", "~"), None),
    **dict.fromkeys(("inf", "+inf", ".inf", "+.inf", "Infinity"), math.inf),
    **dict.fromkeys(("-inf", "-.inf", "-Infinity"), -math.inf),
    **dict.fromkeys(("nan", ".nan", "NaN"), math.nan),
}


def parse_value(text: str, where: str = "value") -> Any:
    """Parse an override value safely: literal, true/false/null, YAML flow, else the text.

    Text with a lone surrogate, or nesting deeper than ``MAX_DEPTH``, is refused
    (a ``ConfigError`` naming ``where``) before it is parsed.
    """
    import ast

    stripped = text.strip()
    if stripped in _WORDS:
        return _WORDS[stripped]
    check_text(text, where)
    check_depth_of_text(stripped, where)
    try:
        value = ast.literal_eval(stripped)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        if stripped[:1] in ("[", "{"):
            return _parse_flow(stripped, where)
        return text
    return _check_literal(value, where)


def format_override(key: str, value: Any) -> str:
    """The override string that sets ``key`` to ``value`` (``parse_override`` reads it back)."""
    return f"{key}={format_value(value)}"


def format_value(value: Any) -> str:
    """Override text for ``value`` that :func:`parse_value` reads back equal."""
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


def _parse_flow(text: str, where: str) -> Any:
    import yaml

    from ._yaml import load_yaml

    try:
        value = load_yaml(text, where)
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
