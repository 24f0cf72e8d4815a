"""``Config``: a read-only nested mapping with attribute access.

Nested sections are ``Config`` too; lists stay lists. Values are restricted to what
YAML and JSON can both hold (str, int, float, bool, None, lists, mappings with
string keys), so ``to_dict()`` is always JSON-serialisable.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from .errors import ConfigError, did_you_mean, suggest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    _MappingBase = Mapping[str, Any]
else:
    _MappingBase = Mapping

__all__ = ["Config", "get_overrides", "get_source", "iter_paths", "suggest_key", "to_plain"]

_SCALARS = (str, int, float, bool, type(None))
_MISSING = object()


class Config(_MappingBase):
    """A nested, read-only mapping: ``cfg.training.lr``, ``cfg["training"]["lr"]``.

    Build one from any mapping (``Config({"a": {"b": 1}})``) or with keywords.
    Change a config by making a new one: ``merge_config(cfg, {...})`` or overrides.
    Keys that clash with a method name (``items``, ``get``...) or start with ``_``
    are reached with item access.
    """

    __slots__ = ("_data", "_meta")

    def __init__(self, data: Mapping[str, Any] | None = None, /, **kwargs: Any) -> None:
        merged: dict[str, Any] = dict(data) if data is not None else {}
        merged.update(kwargs)
        object.__setattr__(self, "_data", _wrap_mapping(merged, ""))
        object.__setattr__(self, "_meta", {})

    # Mapping protocol -------------------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mapping):
            return NotImplemented
        return dict(self._data) == dict(other.items())

    __hash__ = None  # type: ignore[assignment]

    # Attribute access ------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in Config.__slots__:
            raise AttributeError(name)
        try:
            return self._data[name]
        except KeyError:
            hint = suggest(name, self._data)
            known = ", ".join(sorted(self._data)) or "none"
            raise AttributeError(f"config has no key '{name}'{hint} (keys here: {known})") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(
            f"Config is read-only (setting '{name}'): build a new one with "
            f"merge_config(cfg, {{'{name}': ...}}) or an override '{name}=...'"
        )

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Config is read-only (deleting '{name}'): use an override '~{name}'")

    def __dir__(self) -> list[str]:
        names = set(super().__dir__())
        names.update(k for k in self._data if k.isidentifier())
        return sorted(names)

    # Conversions -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A deep copy as plain dicts and lists (JSON-serialisable)."""
        return to_plain(self)

    def select(self, path: str, default: Any = _MISSING) -> Any:
        """The value at a dotted ``path`` (``"training.lr"``); ``default`` if absent.

        Without a default, a missing path raises ``ConfigError`` with suggestions.
        """
        node: Any = self
        for part in path.split("."):
            if isinstance(node, Config) and part in node._data:
                node = node._data[part]
                continue
            if default is not _MISSING:
                return default
            raise ConfigError(f"config has no key '{path}'{suggest_key(path, self)}")
        return node

    def __repr__(self) -> str:
        return f"Config({to_plain(self)!r})"

    def __copy__(self) -> Config:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Config:
        return _rebuild(to_plain(self), _copy_meta(self._meta))

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (to_plain(self), _copy_meta(self._meta)))


def get_overrides(cfg: Any) -> list[str]:
    """The override strings ``load_config_with_overrides`` applied to ``cfg`` ([] if none)."""
    meta = cfg._meta if isinstance(cfg, Config) else {}
    return list(meta.get("overrides", []))


def get_source(cfg: Any) -> str | None:
    """The file ``cfg`` was loaded from, or ``None`` when it was built in code."""
    meta = cfg._meta if isinstance(cfg, Config) else {}
    return meta.get("source")


def iter_paths(mapping: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    """Every dotted key path in ``mapping``, sections and leaves alike."""
    for key, value in mapping.items():
        path = f"{prefix}{key}"
        yield path
        if isinstance(value, Mapping):
            yield from iter_paths(value, path + ".")


def suggest_key(path: str, tree: Mapping[str, Any]) -> str:
    """A did-you-mean hint for the missing dotted ``path`` in ``tree`` ("" when none is close).

    Where ``path``'s sections exist, the keys beside the missing one are compared by
    name (``training.lrr`` -> ``training.lr``); otherwise every path in the tree.
    """
    parts = path.split(".")
    node: Any = tree
    depth = 0
    while depth < len(parts) - 1 and isinstance(node, Mapping) and parts[depth] in node:
        node = node[parts[depth]]
        depth += 1
    if isinstance(node, Mapping) and node:
        import difflib

        head = "".join(f"{p}." for p in parts[:depth])
        rest = parts[depth + 1 :]
        names = []
        for name in difflib.get_close_matches(parts[depth], [str(k) for k in node], 3, 0.6):
            # A misspelt section (``trainng.lr``) points at the full key when it exists.
            full = ".".join([name, *rest])
            names.append(full if rest and _has_path(node[name], rest) else name)
        if names:
            return did_you_mean([head + n for n in names])
    return suggest(path, iter_paths(tree))


def _has_path(node: Any, parts: list[str]) -> bool:
    for part in parts:
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


def to_plain(value: Any) -> Any:
    """Deep-copy ``value`` into plain dicts and lists (``Config``/mappings/tuples included)."""
    if isinstance(value, Mapping):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    return value


def _rebuild(data: dict[str, Any], meta: dict[str, Any]) -> Config:
    cfg = Config(data)
    cfg._meta.update(meta)
    return cfg


def _copy_meta(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: to_plain(v) for k, v in meta.items()}


def _wrap_mapping(data: Mapping[Any, Any], prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if not isinstance(key, str):
            where = f" in section '{prefix[:-1]}'" if prefix else ""
            raise ConfigError(
                f"config key {key!r}{where} is of type {type(key).__name__}; keys must be strings "
                f"(quote it in YAML: '{key}')"
            )
        out[key] = _wrap(value, prefix + key)
    return out


def _wrap(value: Any, path: str) -> Any:
    if isinstance(value, Config):
        return value
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, Mapping):
        cfg = Config.__new__(Config)
        object.__setattr__(cfg, "_data", _wrap_mapping(value, path + "."))
        object.__setattr__(cfg, "_meta", {})
        return cfg
    if isinstance(value, (list, tuple)):
        return [_wrap(v, f"{path}[{i}]") for i, v in enumerate(value)]
    raise ConfigError(
        f"config key '{path}' holds {value!r:.60} of type {type(value).__name__}; values must "
        "be str, int, float, bool, None, lists or mappings (convert it, e.g. with str())"
    )
