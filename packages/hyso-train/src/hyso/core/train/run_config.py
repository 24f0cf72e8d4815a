"""The whole config ``hyso train`` reads, checked in one place before anything runs.

Sections: ``model`` (hyso-models' config, checked when the model is built; its
``init_from`` key, a folder to start from, is read here), ``training``
(:class:`~hyso.core.train.settings.TrainingSettings`), ``data`` (:class:`DataSettings`),
``run`` (:class:`RunSettings`), ``finetune`` (:class:`FinetuneSettings`) and ``sweep``
(read by ``hyso sweep``). An unknown section
or key is an error naming the config file (or the override that added it), the key and
the closest known key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

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

if TYPE_CHECKING:
    from hyso.core.models.lora import LoRASettings

__all__ = [
    "DATA_FORMATS",
    "SECTIONS",
    "DataSettings",
    "FinetuneSettings",
    "RunConfig",
    "RunSettings",
    "config_origin",
    "load_run_config",
]

SECTIONS = ("model", "training", "data", "run", "finetune", "sweep")
"""Top-level sections a config may hold."""
DATA_FORMATS = ("text", "chat")
"""The values of ``data.format``."""


@dataclass(frozen=True)
class DataSettings:
    """What ``hyso train`` trains on (the ``data`` section)."""

    name: str = "python-stdlib"
    """A label for the data, kept in the manifest."""
    format: str = "text"
    """``text`` (language modelling on plain text) or ``chat`` (fine-tuning on
    conversations: loss on the assistant's tokens only)."""
    chat_template: str = "chatml"
    """With ``format: chat``: ``chatml`` or the path of a Hugging Face
    ``tokenizer_config.json`` (its Jinja ``chat_template``) or a ``.jinja`` file."""
    paths: str | list[str] | None = None
    """Globs, files or folders of ``.txt``/``.jsonl``/``.parquet`` (``chat``: ``.jsonl``
    of ``messages`` or ``prompt``/``completion`` records); null: the embedded stdlib
    corpus (``chat``: the embedded python-stdlib-instructions set)."""
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
        if self.format not in DATA_FORMATS:
            _fail("format", f"one of {list(DATA_FORMATS)}", self.format)
        if not isinstance(self.chat_template, str) or not self.chat_template:
            _fail("chat_template", "'chatml' or a tokenizer_config.json path", self.chat_template)
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
class FinetuneSettings:
    """Which weights train (the ``finetune`` section)."""

    lora: LoRASettings | None = None
    """Low-rank adapters ``{r, alpha, dropout, targets}`` (defaults 8, 16, 0.0, [q, v]; targets
    among q, k, v, out, gate, up, down, fc): the model is frozen and only the adapters
    train. null: every weight trains."""

    @classmethod
    def from_section(cls, values: Mapping[str, Any], where: Any) -> FinetuneSettings:
        """The checked section; errors name the file or override, and the key."""
        _refuse_unknown("finetune", values, cls, where)
        lora = values.get("lora")
        if lora is None:
            return cls()
        from hyso.core.models.lora import LoRASettings

        try:
            return cls(lora=LoRASettings.from_dict(lora, where="finetune.lora"))
        except ValueError as exc:
            raise TrainingConfigError(f"{where('finetune.lora')}: {exc}") from None


@dataclass(frozen=True)
class RunConfig:
    """A checked config: each section as its schema, plus the raw sections for the record."""

    model: dict[str, Any]
    training: TrainingSettings
    data: DataSettings
    run: RunSettings
    raw: dict[str, Any] = field(default_factory=dict)
    """The config as given (plain data): what the manifest records."""
    finetune: FinetuneSettings = field(default_factory=FinetuneSettings)
    """LoRA or full fine-tuning."""
    init_from: str | None = None
    """``model.init_from``: the run, ``save_pretrained`` or Hugging Face folder whose
    weights and tokenizer training starts from (null: a fresh model and tokenizer)."""


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
    for name in ("model", "training", "data", "run", "finetune"):
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
    init_from = sections["model"].pop("init_from", None)
    if init_from is not None and (not isinstance(init_from, str) or not init_from.strip()):
        raise TrainingConfigError(
            f"{where('model.init_from')}: model.init_from must be the path of a run folder, "
            f"a save_pretrained folder or a Hugging Face folder, got {init_from!r}"
        )
    return RunConfig(
        model=sections["model"],
        training=resolve_settings({"training": sections["training"]}),
        data=DataSettings(**sections["data"]),
        run=RunSettings(**sections["run"]),
        raw=plain,
        finetune=FinetuneSettings.from_section(sections["finetune"], where),
        init_from=init_from,
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
