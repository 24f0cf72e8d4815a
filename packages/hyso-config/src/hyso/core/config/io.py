"""Writing configs: atomic YAML/JSON saves, and the config + overrides record of a run."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .config import Config, get_overrides, get_source, to_plain
from .errors import ConfigError, a_kind
from .interpolation import escape_tree, to_dict_env_unresolved
from .limits import has_surrogate
from .loader import FORMAT_KEY, FORMAT_VERSION, SUFFIXES, parse_text, read_config_text

__all__ = [
    "OVERRIDES_FILE",
    "atomic_write_text",
    "load_run_overrides",
    "save_config",
    "save_run_config",
]

OVERRIDES_FILE = "overrides.yaml"


def save_config(cfg: Any, path: str | os.PathLike[str], *, resolve_env: bool = False) -> Path:
    """Write ``cfg`` to ``path`` as YAML or JSON (by suffix), atomically.

    ``cfg`` may be a ``Config``, any mapping or an object with ``to_dict()``.
    ``load_config(path)`` gives back an equal config. ``${env:...}`` interpolations of
    a loaded ``Config`` are written as they stand in its source (so secrets read
    from the environment stay out of the file) unless ``resolve_env``; loading the
    file reads the environment again. Returns the path written.
    """
    file = Path(path)
    suffix = file.suffix.lower()
    if suffix not in SUFFIXES:
        raise ConfigError(f"{file}: unsupported suffix '{file.suffix}'; use .yaml, .yml or .json")
    data = _plain_config(cfg)
    if FORMAT_KEY in data:
        raise ConfigError(f"{file}: '{FORMAT_KEY}' is reserved for the file format; rename it")
    _refuse_surrogates(data, file)
    if resolve_env or not isinstance(cfg, Config):
        data = escape_tree(data)
    else:
        data = to_dict_env_unresolved(cfg, saved=True)
    body = {FORMAT_KEY: FORMAT_VERSION, **data}
    if suffix == ".json":
        import json

        text = json.dumps(body, indent=2, ensure_ascii=False, allow_nan=True) + "\n"
    else:
        from ._yaml import dump_yaml

        text = dump_yaml(body)
    atomic_write_text(file, text)
    return file


def save_run_config(
    cfg: Any,
    path: str | os.PathLike[str],
    overrides: Iterable[str] | None = None,
    source: str | os.PathLike[str] | None = None,
    *,
    resolve_env: bool = False,
) -> list[Path]:
    """Save the resolved config to ``path`` and, beside it, ``overrides.yaml``.

    ``${env:...}`` interpolations stay unresolved in ``path`` unless ``resolve_env``
    (see :func:`save_config`).

    ``overrides.yaml`` records ``format_version``, the source config file and the
    override strings, so ``load_config_with_overrides(source, overrides)``
    rebuilds the run's config. Without ``overrides``/``source``, those remembered
    by ``load_config_with_overrides`` on ``cfg`` are used. Returns both paths.
    """
    file = Path(path)
    record_path = file.with_name(OVERRIDES_FILE)
    if file.name == OVERRIDES_FILE:
        raise ConfigError(f"{file}: '{OVERRIDES_FILE}' is the name of the overrides record")
    if overrides is None:
        overrides = get_overrides(cfg)
    if isinstance(overrides, (str, bytes)):
        raise ConfigError("save_run_config: overrides must be a list of strings, not one string")
    texts = list(overrides)
    bad = [t for t in texts if not isinstance(t, str)]
    if bad:
        raise ConfigError(f"save_run_config: overrides must be strings, got {bad[0]!r}")
    src = os.fspath(source) if source is not None else get_source(cfg)
    record = {"format_version": FORMAT_VERSION, "source": src, "overrides": texts}
    from ._yaml import dump_yaml

    save_config(cfg, file, resolve_env=resolve_env)
    atomic_write_text(record_path, dump_yaml(record))
    return [file, record_path]


def load_run_overrides(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read ``overrides.yaml`` (or the one in folder ``path``) as a dict."""
    file = Path(path)
    if file.is_dir():
        file = file / OVERRIDES_FILE
    try:
        text = read_config_text(file)
    except ConfigError as exc:
        raise ConfigError(f"cannot read overrides record {file}: {exc}") from None
    record = parse_text(text, file)
    version = record.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version > FORMAT_VERSION:
        raise ConfigError(
            f"{file}: format_version is {version!r}; this hyso-config reads format "
            f"{FORMAT_VERSION} or older"
        )
    texts = record.get("overrides")
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise ConfigError(f"{file}: 'overrides' must be a list of strings, got {texts!r}")
    source = record.get("source")
    if source is not None and not isinstance(source, str):
        raise ConfigError(f"{file}: 'source' must be a path string or null, got {source!r}")
    return {"format_version": version, "source": source, "overrides": texts}


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` so a reader sees the old file or the whole new one.

    The project's scheme (as ``hyso.core.storage.atomic``, which this package may
    not import): a temp file ``.<name>.<pid>.<8 hex>.tmp`` in the same folder,
    written, fsynced, moved over ``path`` with ``os.replace``, then the folder fsynced.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    handle = open(tmp, "xb")
    try:
        handle.write(text.encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())
        handle.close()
        os.replace(tmp, path)
    except BaseException:
        handle.close()
        tmp.unlink(missing_ok=True)
        raise
    if os.name != "nt":  # Windows cannot open a folder to fsync it
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _refuse_surrogates(data: Any, file: Path, path: str = "") -> None:
    if isinstance(data, str):
        if has_surrogate(data):
            raise ConfigError(
                f"{file}: key '{path}' holds text with a lone surrogate, which cannot be "
                "written as UTF-8; give valid Unicode text"
            )
    elif isinstance(data, dict):
        for key, value in data.items():
            sub = f"{path}.{key}" if path else key
            _refuse_surrogates(key, file, sub)
            _refuse_surrogates(value, file, sub)
    elif isinstance(data, list):
        for i, value in enumerate(data):
            _refuse_surrogates(value, file, f"{path}[{i}]")


def _plain_config(cfg: Any) -> dict[str, Any]:
    if isinstance(cfg, Mapping):
        data = to_plain(cfg)
    elif callable(getattr(cfg, "to_dict", None)):
        data = to_plain(cfg.to_dict())
    else:
        raise ConfigError(
            f"cannot save {a_kind(cfg)}: pass a Config, a mapping or an object with to_dict()"
        )
    if not isinstance(data, dict):
        raise ConfigError(f"to_dict() returned {a_kind(data)}, not a mapping")
    Config(data)  # validates keys and value types with a clear error
    return data
