"""The whole config ``hyso train`` reads, checked in one place before anything runs.

Sections: ``model`` (hyso-models' config, checked when the model is built), ``training``
(:class:`~hyso.core.train.settings.TrainingSettings`), ``data`` (:class:`DataSettings`),
``run`` (:class:`RunSettings`) and ``sweep`` (read by ``hyso sweep``). An unknown section
or key is an error naming the config file (or the override that added it), the key and
the closest known key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from hyso.core.train.data.corpus import (
    DEFAULT_MAX_BYTES,
    CorpusError,
    check_max_bytes,
    check_val_fraction,
)
from hyso.core.train.errors import TrainingConfigError
from hyso.core.train.settings import (
    TrainingSettings,
    as_plain_dict,
    closest_key,
    config_origin,
    resolve_settings,
)

__all__ = [
    "SECTIONS",
    "DataSettings",
    "RunConfig",
    "RunSettings",
    "config_origin",
    "load_run_config",
]

SECTIONS = ("model", "training", "data", "run", "sweep")
"""Top-level sections a config may hold."""


@dataclass(frozen=True)
class DataSettings:
    """What ``hyso train`` trains on (the ``data`` section)."""

    name: str = "python-stdlib"
    """A label for the data, kept in the manifest."""
    paths: str | list[str] | None = None
    """Globs, files or folders of ``.txt``/``.jsonl``/``.parquet``; null: the stdlib corpus."""
    text_key: str = "text"
    """The field of each ``.jsonl`` record that holds its text."""
    max_bytes: int | None = DEFAULT_MAX_BYTES
    """Bytes of the stdlib corpus to read; null: every top-level module."""
    val_fraction: float = 0.1
    """Share of the bytes held out for validation, in (0, 1)."""
    vocab_size: int = 2048
    """Vocabulary of the byte-level BPE tokenizer trained on the training split (>= 300)."""
    seq_len: int | None = None
    """Tokens per training window; null: ``model.max_seq_len`` (else 128)."""
    mask_prob: float = 0.15
    """Share of positions masked for encoder-only (masked LM) training, in (0, 1)."""
    cache_dir: str | None = None
    """Folder of the tokenizer and token cache; null: ``$HYSO_CACHE_DIR`` or ``~/.cache/hyso``."""

    def __post_init__(self) -> None:
        try:
            check_val_fraction(self.val_fraction)
            check_max_bytes(self.max_bytes)
        except CorpusError as exc:
            raise TrainingConfigError(str(exc)) from None
        if not isinstance(self.name, str):
            _fail("name", "a string", self.name)
        if self.paths is not None and not isinstance(self.paths, (str, list)):
            _fail("paths", "a glob, a list of globs or null", self.paths)
        if not isinstance(self.text_key, str):
            _fail("text_key", "a string", self.text_key)
        if isinstance(self.vocab_size, bool) or not isinstance(self.vocab_size, int):
            _fail("vocab_size", "an integer >= 300", self.vocab_size)
        if self.vocab_size < 300:
            _fail("vocab_size", "an integer >= 300", self.vocab_size)
        seq = self.seq_len
        if seq is not None and (isinstance(seq, bool) or not isinstance(seq, int) or seq < 1):
            _fail("seq_len", "an integer >= 1 or null", seq)
        mp = self.mask_prob
        if isinstance(mp, bool) or not isinstance(mp, (int, float)) or not 0 < mp < 1:
            _fail("mask_prob", "a number in (0, 1)", mp)
        if self.cache_dir is not None and not isinstance(self.cache_dir, str):
            _fail("cache_dir", "a folder path or null", self.cache_dir)

    def to_dict(self) -> dict[str, Any]:
        """Plain data, as ``load_corpus`` and ``prepare_data`` read it."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class RunSettings:
    """Where run folders go (the ``run`` section)."""

    root: str = "runs"
    """Folder holding the run folders (``--runs-root`` wins)."""

    def __post_init__(self) -> None:
        if not isinstance(self.root, str) or not self.root:
            raise TrainingConfigError(f"run.root must be a folder path, got {self.root!r}")


@dataclass(frozen=True)
class RunConfig:
    """A checked config: each section as its schema, plus the raw sections for the record."""

    model: dict[str, Any]
    training: TrainingSettings
    data: DataSettings
    run: RunSettings
    raw: dict[str, Any] = field(default_factory=dict)
    """The config as given (plain data): what the manifest records."""


def load_run_config(cfg: Any) -> RunConfig:
    """Check every section of ``cfg`` (a ``Config``, mapping or ``to_dict()`` object).

    Raises ``TrainingConfigError`` naming the file or override, the key and the closest
    known key for an unknown key, and the key and value for a bad value.
    """
    plain = as_plain_dict(cfg)
    where = config_origin(cfg)
    for name in plain:
        if name not in SECTIONS:
            raise TrainingConfigError(
                f"{where(name)}: unknown section {name!r}{closest_key(name, SECTIONS)}"
            )
    sections: dict[str, dict[str, Any]] = {}
    for name in ("model", "training", "data", "run"):
        value = plain.get(name) or {}
        if not isinstance(value, Mapping):
            raise TrainingConfigError(
                f"{where(name)}: section {name!r} must be a mapping, got {value!r}"
            )
        sections[name] = dict(value)
    for name, schema in (
        ("training", TrainingSettings),
        ("data", DataSettings),
        ("run", RunSettings),
    ):
        _refuse_unknown(name, sections[name], schema, where)
    return RunConfig(
        model=sections["model"],
        training=resolve_settings({"training": sections["training"]}),
        data=DataSettings(**sections["data"]),
        run=RunSettings(**sections["run"]),
        raw=plain,
    )


def _names(schema: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(schema))


def _refuse_unknown(section: str, values: Mapping[str, Any], schema: type, where: Any) -> None:
    known = _names(schema)
    for key in values:
        if key not in known:
            path = f"{section}.{key}"
            hint = " (keys of your own go under training.extra)" if section == "training" else ""
            raise TrainingConfigError(
                f"{where(path)}: unknown key {path}{closest_key(key, known, section + '.')}{hint}"
            )


def _fail(name: str, expected: str, value: Any) -> NoReturn:
    raise TrainingConfigError(f"data.{name} must be {expected}, got {value!r}")
