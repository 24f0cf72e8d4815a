"""PyYAML set up for configs: safe loading, YAML-1.2-style scalars, refused pitfalls.

Differences from ``yaml.safe_load``, each fixing a trap users fall into:

- ``1e-4`` is a float (PyYAML needs a dot: ``1.0e-4``);
- a key repeated in one mapping is an error (PyYAML keeps the last silently);
- ``yes``/``no``/``on``/``off`` unquoted are refused as ambiguous (YAML 1.1 reads a
  boolean, YAML 1.2 a string): write ``true``/``false`` or quote them;
- ``1:30`` and ``2024-01-01`` stay strings (no base-60 numbers, no dates);
- keys must be strings; tags that build other types (``!!python/object``,
  ``!!binary``, ``!!set``, ``!!timestamp``...) are refused;
- a document nested deeper than ``limits.MAX_DEPTH`` or expanding (through aliases)
  to more than ``limits.MAX_VALUES`` values is refused before anything recurses
  over it.

Errors are ``yaml.MarkedYAMLError`` subclasses carrying line and column; the
loader turns them into ``ConfigError``. This module imports PyYAML, so it is only
imported when a file is read or written.
"""

from __future__ import annotations

import math
import re
from typing import Any, ClassVar

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, ScalarNode

from .errors import short
from .limits import MAX_DEPTH, MAX_VALUES, check_tree

__all__ = ["HysoDumper", "HysoLoader", "dump_yaml", "load_yaml"]

_TAG = "tag:yaml.org,2002:"
_AMBIGUOUS_TAG = "tag:hyso,2026:ambiguous-bool"
_DIGITS = r"[0-9](?:_?[0-9])*"
_FOLDED = frozenset("\r\x85\u2028\u2029")
_EXP = r"(?:[eE][-+]?[0-9]+)"

_RESOLVERS: list[tuple[str, str, str]] = [
    (_TAG + "null", r"^(?:~|null|Null|NULL|)$", "~nN"),
    (_TAG + "bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    (_AMBIGUOUS_TAG, r"^(?:yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF)$", "yYnNoO"),
    (
        _TAG + "int",
        r"^(?:[-+]?(?:0|[1-9](?:_?[0-9])*)|0x(?:_?[0-9a-fA-F])+|0o(?:_?[0-7])+|0b(?:_?[01])+)$",
        "-+0123456789",
    ),
    (
        _TAG + "float",
        rf"^(?:[-+]?(?:{_DIGITS}\.(?:{_DIGITS})?{_EXP}?|\.{_DIGITS}{_EXP}?|{_DIGITS}{_EXP})"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+.0123456789",
    ),
    (_TAG + "merge", r"^(?:<<)$", "<"),
]

_Base: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class HysoLoader(_Base):  # type: ignore[misc, valid-type]
    """Safe loader with the scalar rules above, duplicate-key and key-type checks."""

    yaml_implicit_resolvers: ClassVar[dict[Any, list[Any]]] = {}

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, MappingNode):
            seen: dict[Any, Any] = {}
            for key_node, _ in node.value:
                if key_node.tag == _TAG + "merge":
                    continue
                if not isinstance(key_node, ScalarNode):
                    kind = "mapping" if isinstance(key_node, MappingNode) else "list"
                    raise ConstructorError(
                        None,
                        None,
                        f"a key is a {kind}; config keys must be strings",
                        key_node.start_mark,
                    )
                key = self.construct_object(key_node, deep=True)
                if not isinstance(key, str):
                    raise ConstructorError(
                        None,
                        None,
                        f"key {key!r} is of type {type(key).__name__}; config keys must be strings "
                        f"(quote it: '{key}')",
                        key_node.start_mark,
                    )
                if key in seen:
                    first = seen[key].line + 1
                    raise ConstructorError(
                        None,
                        None,
                        f"duplicate key '{key}' (first defined on line {first}); keep one of them",
                        key_node.start_mark,
                    )
                seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)

    def flatten_mapping(self, node: Any) -> None:
        # ``<<`` merge keys are flattened recursively, one level per chained merge.
        self._merge_depth = getattr(self, "_merge_depth", 0) + 1
        try:
            if self._merge_depth > MAX_DEPTH:
                raise ConstructorError(
                    None, None, f"'<<' merges chain more than {MAX_DEPTH} deep", node.start_mark
                )
            super().flatten_mapping(node)
        finally:
            self._merge_depth -= 1

    def compose_node(self, parent: Any, index: Any) -> Any:
        # Only the pure-Python loader composes here (recursively); libyaml stops at
        # 1000 levels itself, and ``load_yaml`` checks the built tree against MAX_DEPTH.
        self._compose_depth = getattr(self, "_compose_depth", 0) + 1
        try:
            if self._compose_depth > MAX_DEPTH:
                raise ComposerError(
                    None,
                    None,
                    f"the document nests more than {MAX_DEPTH} levels deep; flatten it",
                    self.peek_event().start_mark,
                )
            return super().compose_node(parent, index)
        finally:
            self._compose_depth -= 1

    def construct_undefined(self, node: Any) -> Any:
        raise ConstructorError(
            None,
            None,
            f"tag {node.tag!r} is not allowed: config files hold plain values only "
            "(strings, numbers, booleans, null, lists, mappings)",
            node.start_mark,
        )


def _construct_int(loader: HysoLoader, node: Any) -> int:
    text = loader.construct_scalar(node)
    try:
        return int(str(text).replace("_", ""), 0)
    except ValueError:
        raise ConstructorError(
            None, None, f"{short(text)} is not an integer (at most 4300 digits)", node.start_mark
        ) from None


def _construct_float(loader: HysoLoader, node: Any) -> float:
    text = str(loader.construct_scalar(node))
    low = text.lower()
    if low in (".inf", "+.inf"):
        return math.inf
    if low == "-.inf":
        return -math.inf
    if low == ".nan":
        return math.nan
    try:
        return float(text.replace("_", ""))
    except ValueError:
        raise ConstructorError(
            None, None, f"{short(text)} is not a number", node.start_mark
        ) from None


def _construct_ambiguous(loader: HysoLoader, node: Any) -> Any:
    text = loader.construct_scalar(node)
    raise ConstructorError(
        None,
        None,
        f"'{text}' is ambiguous (a boolean in YAML 1.1, a string in YAML 1.2): "
        f"write true or false, or quote it ('{text}') for the text",
        node.start_mark,
    )


def _refuse(loader: HysoLoader, node: Any) -> Any:
    raise ConstructorError(
        None,
        None,
        f"tag {node.tag!r} is not allowed: config values must be strings, numbers, "
        "booleans, null, lists or mappings",
        node.start_mark,
    )


for _tag, _pattern, _first in _RESOLVERS:
    HysoLoader.add_implicit_resolver(_tag, re.compile(_pattern), list(_first))
HysoLoader.add_constructor(_TAG + "int", _construct_int)
HysoLoader.add_constructor(_TAG + "float", _construct_float)
HysoLoader.add_constructor(_AMBIGUOUS_TAG, _construct_ambiguous)
for _name in ("binary", "set", "omap", "pairs", "timestamp"):
    HysoLoader.add_constructor(_TAG + _name, _refuse)
HysoLoader.add_constructor(None, HysoLoader.construct_undefined)


class HysoDumper(yaml.SafeDumper):
    """Safe dumper that quotes every string ``HysoLoader`` would read as something else."""

    yaml_implicit_resolvers = HysoLoader.yaml_implicit_resolvers

    def ignore_aliases(self, data: Any) -> bool:
        return True

    def represent_str(self, data: str) -> Any:
        # YAML folds NEL and the Unicode line/paragraph separators (and CR) in plain
        # or single-quoted text; double quotes escape them, so they survive.
        if any(ch in _FOLDED for ch in data):
            return self.represent_scalar(_TAG + "str", data, style='"')
        return super().represent_str(data)


HysoDumper.add_representer(str, HysoDumper.represent_str)


def load_yaml(text: str, where: str = "YAML text", max_values: int = MAX_VALUES) -> Any:
    """Parse one YAML document with ``HysoLoader`` (raises ``yaml.YAMLError``).

    Aliases may repeat a node many times over ("billion laughs") or nest it in
    itself; a document deeper than ``MAX_DEPTH`` or expanding to more than
    ``max_values`` values is refused (a ``ConfigError`` naming ``where``) before
    anything walks it recursively.
    """
    loader = HysoLoader(text)
    try:
        data = loader.get_single_data()
    finally:
        loader.dispose()
    if isinstance(data, (dict, list)):
        check_tree(data, where, max_values=max_values)
    return data


def dump_yaml(data: Any, *, flow: bool = False) -> str:
    """YAML text for plain ``data``, keys in their order, that ``load_yaml`` reads back equal."""
    return yaml.dump(
        data,
        Dumper=HysoDumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=flow,
        width=10_000 if flow else 88,
    )
