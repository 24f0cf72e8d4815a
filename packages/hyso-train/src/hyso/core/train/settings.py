"""The ``training`` section: every key the Trainer or ``hyso train`` reads, documented.

Keywords win over ``config.training``; every value is checked, and an unknown key is an
error naming the closest known one. Keys of a caller's own live under ``training.extra``.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Iterable, Mapping
from typing import Any, NoReturn

from hyso.core.train.errors import TrainingConfigError

__all__ = [
    "COMMAND_ONLY_KEYS",
    "TrainingSettings",
    "as_plain_dict",
    "closest_key",
    "config_origin",
    "resolve_settings",
]

_PRECISIONS = ("fp32", "bf16", "fp16")
_INTERVALS = ("epoch", "step")
_NAN_POLICIES = ("error", "skip")
_STRATEGIES = ("auto", "ddp", "fsdp")
_LOGGERS = ("csv", "tensorboard", "mlflow", "wandb")
_MIXED_PRECISIONS = ("bf16",)


@dataclasses.dataclass(frozen=True)
class TrainingSettings:
    """How a run trains (the ``training`` section). Step counts are optimizer steps."""

    epochs: int | None = None
    """Passes over the training data (``fit(epochs=...)`` wins); null: 1."""
    max_steps: int | None = None
    """Stop after this many optimizer steps; null: run every epoch."""
    batch_size: int = 16
    """Windows per batch (``hyso train``; library users build their own loader)."""
    grad_accum_steps: int = 1
    """Batches whose gradients add up to one optimizer step."""
    lr: float = 1e-3
    """Peak learning rate of AdamW (``hyso train``; the Trainer uses the optimizer given)."""
    betas: tuple[float, float] = (0.9, 0.95)
    """AdamW's two moment decay rates (``hyso train``)."""
    weight_decay: float = 0.0
    """AdamW weight decay on matrices; norms and biases get none (``hyso train``)."""
    warmup_steps: int = 0
    """Linear warmup steps of the ``step`` schedule (``hyso train``)."""
    min_lr_ratio: float = 0.1
    """Cosine decay ends at this fraction of ``lr`` (``hyso train``)."""
    scheduler_interval: str = "epoch"
    """Step the LR scheduler every ``epoch`` or every ``step``."""
    max_grad_norm: float | None = None
    """Clip the gradients' global norm to this; null: no clipping."""
    precision: str = "fp32"
    """``fp32``, ``bf16`` or ``fp16`` (autocast; fp16 adds a gradient scaler)."""
    log_every: int = 10
    """Steps between training-loss rows in metrics.csv."""
    eval_every: int | None = None
    """Steps between validations; null: once per epoch."""
    save_every: int | None = None
    """Steps between checkpoints; null: once per epoch."""
    nan_policy: str = "error"
    """On a NaN/inf loss: ``error`` stops the run, ``skip`` drops that step."""
    seed: int | None = None
    """Seed of model init, shuffling and sampling; null: torch's seed (``hyso train``: 0)."""
    device: str | None = None
    """``cpu``, ``cuda``, ``cuda:1`` ...; null: where the model already is."""
    num_threads: int | None = None
    """torch's intra-op CPU threads (``hyso train``); null: torch's default."""
    progress_bar: bool = True
    """Show a progress bar on rank 0."""
    strategy: str = "auto"
    """Under torchrun: ``auto``/``ddp`` (replicas) or ``fsdp`` (sharded, FSDP2)."""
    dist_timeout_s: float = 300.0
    """Seconds a process waits for its peers before the launch fails."""
    loggers: tuple[str, ...] = ("csv",)
    """Where rows go: ``csv`` (metrics.csv, always) plus ``tensorboard``, ``mlflow``, ``wandb``."""
    mixed_precision: str | None = None
    """``fsdp`` only: ``bf16`` keeps parameters in bf16 for compute, reduces gradients in fp32."""
    compile: bool = False
    """Compile the model with ``torch.compile`` before training (the first steps are slow)."""
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """Keys of your own, unchecked (``training.extra.my_key``); every other key is checked."""

    def __post_init__(self) -> None:
        _check_int("grad_accum_steps", self.grad_accum_steps, minimum=1)
        _check_int("log_every", self.log_every, minimum=1)
        _check_int("batch_size", self.batch_size, minimum=1)
        _check_int("warmup_steps", self.warmup_steps, minimum=0)
        for name in ("eval_every", "save_every", "max_steps", "epochs", "num_threads"):
            _check_int(name, getattr(self, name), minimum=1, optional=True)
        _check_int("seed", self.seed, minimum=0, optional=True)
        _check_number("max_grad_norm", self.max_grad_norm, positive=True, optional=True)
        _check_number("lr", self.lr, positive=True)
        _check_number("weight_decay", self.weight_decay)
        _check_number("dist_timeout_s", self.dist_timeout_s, positive=True)
        if not _is_number(self.min_lr_ratio) or not 0 <= self.min_lr_ratio <= 1:
            _fail("min_lr_ratio", "a number in [0, 1]", self.min_lr_ratio)
        betas = self.betas
        if (
            not isinstance(betas, (list, tuple))
            or len(betas) != 2
            or not all(_is_number(b) and 0 <= b < 1 for b in betas)
        ):
            _fail("betas", "two numbers in [0, 1), e.g. [0.9, 0.95]", betas)
        object.__setattr__(self, "betas", (float(betas[0]), float(betas[1])))
        _check_choice("precision", self.precision, _PRECISIONS)
        _check_choice("scheduler_interval", self.scheduler_interval, _INTERVALS)
        _check_choice("nan_policy", self.nan_policy, _NAN_POLICIES)
        _check_choice("strategy", self.strategy, _STRATEGIES)
        if self.mixed_precision is not None:
            _check_choice("mixed_precision", self.mixed_precision, _MIXED_PRECISIONS)
            if self.strategy != "fsdp":
                needs = f"null unless training.strategy is 'fsdp' (it is {self.strategy!r})"
                _fail("mixed_precision", needs, self.mixed_precision)
        if not isinstance(self.compile, bool):
            _fail("compile", "true or false", self.compile)
        if self.device is not None and not isinstance(self.device, str):
            _fail("device", "a string such as 'cpu' or 'cuda'", self.device)
        if not isinstance(self.progress_bar, bool):
            _fail("progress_bar", "true or false", self.progress_bar)
        _check_loggers(self.loggers)
        object.__setattr__(self, "loggers", tuple(self.loggers))
        if not isinstance(self.extra, Mapping):
            _fail("extra", "a mapping of your own keys", self.extra)
        object.__setattr__(self, "extra", dict(self.extra))

    def to_dict(self) -> dict[str, Any]:
        """Plain data (``betas`` as a list)."""
        data = dataclasses.asdict(self)
        data["betas"] = list(self.betas)
        data["loggers"] = list(self.loggers)
        return data


_FIELDS = tuple(f.name for f in dataclasses.fields(TrainingSettings))

COMMAND_ONLY_KEYS = frozenset(
    {"batch_size", "lr", "betas", "weight_decay", "warmup_steps", "min_lr_ratio", "num_threads"}
)
"""Keys ``hyso train`` reads to build its loader, optimizer and schedule; the Trainer does not."""


def as_plain_dict(obj: Any) -> dict[str, Any]:
    """A plain dict from a Mapping, an object with ``to_dict()``, or ``None``."""
    if obj is None:
        return {}
    if hasattr(obj, "to_dict"):
        obj = obj.to_dict()
    if isinstance(obj, Mapping):
        return {str(k): v for k, v in obj.items()}
    raise TrainingConfigError(
        f"expected a mapping or an object with to_dict(), got {type(obj).__name__}"
    )


def closest_key(key: str, known: Iterable[str], prefix: str = "") -> str:
    """``"; did you mean 'prefix.x'?"`` for the known key closest to ``key``, or ``""``."""
    close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
    return f"; did you mean {prefix + close[0]!r}?" if close else ""


def resolve_settings(config: Any = None, **overrides: Any) -> TrainingSettings:
    """Merge ``config.training`` with keyword ``overrides`` into checked settings.

    An unknown key, in the config or as a keyword, is a ``TrainingConfigError`` naming
    the key, the closest known key and the config file or override it came from; keys
    of the caller's own belong in ``training.extra``.
    """
    unknown = [k for k in overrides if k not in _FIELDS]
    if unknown:
        raise TrainingConfigError(
            f"unknown training setting(s) {sorted(unknown)}{closest_key(unknown[0], _FIELDS)}; "
            f"known: {sorted(_FIELDS)}"
        )
    values = as_plain_dict(_section(config, "training"))
    for key in values:
        if key not in _FIELDS:
            where = config_origin(config)(f"training.{key}")
            raise TrainingConfigError(
                f"{where}: unknown key training.{key}{closest_key(key, _FIELDS, 'training.')} "
                "(keys of your own go under training.extra)"
            )
    values.update(overrides)
    return TrainingSettings(**values)


def config_origin(cfg: Any) -> Any:
    """A function naming where a key path of ``cfg`` came from: its override or file."""
    source, overrides = _source_and_overrides(cfg)

    def where(path: str) -> str:
        path = path.rstrip(".")
        for text in overrides:
            key = text.lstrip("+~").split("=", 1)[0].strip()
            if key == path or path.startswith(key + ".") or key.startswith(path + "."):
                return f"override {text!r}" + (f" (on {source})" if source else "")
        return f"config file {source}" if source else "config"

    return where


def _source_and_overrides(cfg: Any) -> tuple[str | None, list[str]]:
    try:
        from hyso.core.config import get_overrides, get_source
    except ImportError:  # pragma: no cover - hyso-config is a dependency
        return None, []
    return get_source(cfg), list(get_overrides(cfg))


def _section(config: Any, name: str) -> Any:
    if config is None:
        return None
    if isinstance(config, Mapping):
        return config.get(name)
    if hasattr(config, "to_dict"):
        return config.to_dict().get(name)
    return getattr(config, name, None)


def _is_number(value: Any) -> bool:
    """A finite int or float (not a bool, NaN or infinity)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _fail(name: str, expected: str, value: Any) -> NoReturn:
    raise TrainingConfigError(f"training.{name} must be {expected}, got {value!r}")


def _check_int(name: str, value: Any, *, minimum: int, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        kind = "an integer" + (" or null" if optional else "")
        _fail(name, f"{kind} >= {minimum}", value)


def _check_number(name: str, value: Any, *, positive: bool = False, optional: bool = False) -> None:
    if value is None and optional:
        return
    ok = _is_number(value) and (value > 0 if positive else value >= 0)
    if not ok:
        kind = ("a finite positive number" if positive else "a finite number >= 0") + (
            " or null" if optional else ""
        )
        _fail(name, kind, value)


def _check_loggers(value: Any) -> None:
    """A list of distinct names from ``_LOGGERS`` that includes ``csv``."""
    expected = f"a list of distinct names from {list(_LOGGERS)} including 'csv'"
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        _fail("loggers", expected, value)
    unknown = [v for v in value if v not in _LOGGERS]
    if unknown:
        _fail(
            "loggers", f"{expected} (unknown: {unknown}{closest_key(unknown[0], _LOGGERS)})", value
        )
    if len(set(value)) != len(value) or "csv" not in value:
        _fail("loggers", f"{expected} (metrics.csv is the run's record)", value)


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        _fail(name, f"one of {list(choices)}", value)
