"""Reading config files: YAML/JSON parsing with located errors, and ``_base_`` composition."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .config import Config
from .errors import ConfigError, a_kind, short
from .limits import MAX_FILE_BYTES, MAX_FILES, check_depth_of_text, check_tree, has_surrogate
from .merge import REPLACE_KEY, deep_merge, strip_markers
from .overrides import build_config

__all__ = [
    "BASE_KEY",
    "FORMAT_KEY",
    "FORMAT_VERSION",
    "SUFFIXES",
    "load_config",
    "load_config_with_overrides",
    "load_raw",
    "parse_text",
    "read_config_text",
]

BASE_KEY = "_base_"
FORMAT_KEY = "_format_version_"
FORMAT_VERSION = 1
SUFFIXES = (".yaml", ".yml", ".json")
_SURROGATE_ESCAPE = r"\\u[dD][89a-fA-F]"  # a JSON escape of a surrogate (maybe paired)


def load_config(path: str | os.PathLike[str]) -> Config:
    """Load a ``.yaml``/``.yml``/``.json`` file (with its ``_base_`` files) into a ``Config``.

    Interpolations (``${training.lr}``, ``${env:NAME,default}``) are resolved.
    """
    return load_config_with_overrides(path, None)


def load_config_with_overrides(
    path: str | os.PathLike[str], override_pairs: Iterable[str] | None = None
) -> Config:
    """Load ``path``, apply overrides such as ``["training.lr=0.0001"]``, resolve interpolations.

    The result remembers its source file and the overrides (``get_source``,
    ``get_overrides``) so ``save_run_config`` can record both.
    """
    if isinstance(override_pairs, (str, bytes)):
        raise ConfigError(
            f"override_pairs must be a list of 'key=value' strings, got the single string "
            f"{override_pairs!r}: wrap it in a list"
        )
    raw = load_raw(path)
    return build_config(raw, list(override_pairs or []), source=os.fspath(path))


def load_raw(
    path: str | os.PathLike[str], _chain: tuple[Path, ...] = (), _reads: list[int] | None = None
) -> dict[str, Any]:
    """The composed, unresolved tree of ``path``: its bases merged, markers removed.

    At most ``MAX_FILES`` files are read for one call (``_reads`` counts them).
    """
    file = Path(path)
    reads = [0] if _reads is None else _reads
    reads[0] += 1
    if reads[0] > MAX_FILES:
        raise ConfigError(
            f"{file}: loading this config reads more than {MAX_FILES} files through "
            f"{BASE_KEY} (a base listed many times over?); compose fewer files",
            path=str(file),
        )
    data = parse_text(read_config_text(file, _chain), file)
    version = data.pop(FORMAT_KEY, FORMAT_VERSION)
    if not isinstance(version, int) or isinstance(version, bool) or version > FORMAT_VERSION:
        raise ConfigError(
            f"{file}: {FORMAT_KEY} is {version!r}, but this hyso-config reads format "
            f"{FORMAT_VERSION} or older: upgrade hyso-config",
            path=str(file),
        )
    bases = _base_paths(data.pop(BASE_KEY, []), file)
    _refuse_nested_base(data, file, "")
    if not bases:
        return strip_markers(data)
    if data.get(REPLACE_KEY) is not None:
        raise ConfigError(
            f"{file}: a top-level {REPLACE_KEY} would discard every file in {BASE_KEY}; "
            f"remove {BASE_KEY} instead",
            path=str(file),
        )
    here = file.resolve()
    merged: dict[str, Any] = {}
    for base in bases:
        resolved = base.resolve()
        if resolved in _chain or resolved == here:
            cycle = " -> ".join(str(p) for p in (*_chain, here, resolved))
            raise ConfigError(f"{BASE_KEY} cycle: {cycle}", path=str(file))
        merged = deep_merge(merged, load_raw(base, (*_chain, here), reads))
    return deep_merge(merged, data)


def parse_text(text: str, file: Path) -> dict[str, Any]:
    """Parse YAML or JSON ``text`` (by ``file``'s suffix); the top level must be a mapping."""
    if file.suffix.lower() == ".json":
        data = _parse_json(text, file)
    else:
        data = _parse_yaml(text, file)
    if data is None:
        raise ConfigError(
            f"{file}: the file is empty; a config file holds a mapping, e.g. "
            "'training: {lr: 0.001}'",
            path=str(file),
        )
    if not isinstance(data, dict):
        raise ConfigError(
            f"{file}: the top level is {a_kind(data)}, but a config file must hold a "
            "mapping of keys to values, e.g. 'training: {lr: 0.001}'",
            path=str(file),
            line=1,
            column=1,
        )
    return data


def read_config_text(file: Path, chain: tuple[Path, ...] = ()) -> str:
    """The UTF-8 text of config file ``file``: a regular file of at most ``MAX_FILE_BYTES``.

    A FIFO, a device (``/dev/zero``) or a socket is refused without reading from it
    (opened non-blocking, checked with ``fstat``); the read is bounded.
    """
    if file.suffix.lower() not in SUFFIXES:
        raise ConfigError(
            f"{file}: unsupported suffix '{file.suffix}'; use .yaml, .yml or .json",
            path=str(file),
        )
    try:
        data = _read_regular(file)
    except FileNotFoundError:
        who = f" (listed in {BASE_KEY} of {chain[-1]})" if chain else ""
        raise ConfigError(f"config file {file} does not exist{who}", path=str(file)) from None
    except IsADirectoryError:
        raise ConfigError(f"{file} is a folder, not a config file", path=str(file)) from None
    except OSError as exc:
        raise ConfigError(
            f"cannot read config file {file}: {exc.strerror}", path=str(file)
        ) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{file}: not UTF-8 text (bad byte at offset {exc.start})", path=str(file)
        ) from None


def _read_regular(file: Path) -> bytes:
    import stat

    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(file, flags)
    with open(fd, "rb", closefd=True) as handle:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(file)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(
                f"{file} is not a regular file (a FIFO, device or socket); config files "
                "must be regular files",
                path=str(file),
            )
        # Read what fstat promises, then on in chunks: the file may grow, and a
        # buffer of the full limit is never allocated for a small file.
        limit, size = MAX_FILE_BYTES + 1, min(info.st_size, MAX_FILE_BYTES) + 1
        chunks: list[bytes] = []
        total = 0
        while total < limit:
            chunk = handle.read(min(size, limit - total))
            if not chunk:
                break
            chunks.append(chunk)
            total, size = total + len(chunk), 1 << 16
        data = b"".join(chunks)
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(
            f"{file}: larger than {MAX_FILE_BYTES:,} bytes, the most a config file may hold",
            path=str(file),
        )
    return data


def _parse_yaml(text: str, file: Path) -> Any:
    import yaml

    from ._yaml import load_yaml

    try:
        return load_yaml(text, str(file))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if "cannot start any token" in problem and "\t" in text:
            problem += " (YAML indents with spaces, not tabs)"
        if exc.context and exc.problem and exc.context_mark is not None:
            problem += f" ({exc.context} at line {exc.context_mark.line + 1})"
        if mark is None:
            raise ConfigError(f"{file}: {problem}", path=str(file)) from None
        line, col = mark.line + 1, mark.column + 1
        raise ConfigError(
            f"{file}, line {line}, column {col}: {problem}",
            path=str(file),
            line=line,
            column=col,
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: {exc}", path=str(file)) from None


def _parse_json(text: str, file: Path) -> Any:
    import json

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise ConfigError(
                    f"{file}: duplicate key '{key}' in one JSON object; keep one of them",
                    path=str(file),
                )
            out[key] = value
        return out

    check_depth_of_text(text, str(file), json=True)
    try:
        data = json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{file}, line {exc.lineno}, column {exc.colno}: {exc.msg}",
            path=str(file),
            line=exc.lineno,
            column=exc.colno,
        ) from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise ConfigError(f"{file}: {str(exc)[:200]}", path=str(file)) from None
    if isinstance(data, (dict, list)):
        check_tree(data, str(file))
        if "\\u" in text and re.search(_SURROGATE_ESCAPE, text):
            _refuse_surrogates(data, file)
    return data


def _refuse_surrogates(data: dict[str, Any] | list[Any], file: Path) -> None:
    stack: list[Any] = [data]
    while stack:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            texts = (key, value) if isinstance(key, str) else (value,)
            if any(isinstance(t, str) and has_surrogate(t) for t in texts):
                raise ConfigError(
                    f"{file}: the string {short(value)} (key {key!r}) holds a lone surrogate "
                    "escape (\\ud800-\\udfff), which is not valid Unicode text",
                    path=str(file),
                )
            if isinstance(value, (dict, list)):
                stack.append(value)


def _base_paths(value: Any, file: Path) -> list[Path]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise ConfigError(
            f"{file}: {BASE_KEY} must be a file name or a list of them, relative to this file "
            f"(e.g. '{BASE_KEY}: base.yaml'), got {value!r}",
            path=str(file),
        )
    return [file.parent / name for name in names]


def _refuse_nested_base(data: dict[str, Any], file: Path, prefix: str) -> None:
    for key, value in data.items():
        if key == BASE_KEY and prefix:
            raise ConfigError(
                f"{file}: '{prefix}{key}' is not at the top level; {BASE_KEY} composes whole "
                "files and belongs at the top of the file",
                path=str(file),
            )
        if isinstance(value, dict):
            _refuse_nested_base(value, file, f"{prefix}{key}.")
