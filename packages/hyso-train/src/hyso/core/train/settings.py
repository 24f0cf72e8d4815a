"""Training settings: keywords win over ``config.training``, every value is checked."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from hyso.core.train.errors import TrainingConfigError

__all__ = ["TrainingSettings", "as_plain_dict", "resolve_settings"]

_PRECISIONS = ("fp32", "bf16", "fp16")
_INTERVALS = ("epoch", "step")
_NAN_POLICIES = ("error", "skip")
_STRATEGIES = ("auto", "ddp", "fsdp")


@dataclasses.dataclass(frozen=True)
class TrainingSettings:
    """How the Trainer trains. Step counts are optimizer steps."""

    grad_accum_steps: int = 1
    max_grad_norm: float | None = None
    precision: str = "fp32"
    log_every: int = 10
    eval_every: int | None = None
    save_every: int | None = None
    scheduler_interval: str = "epoch"
    max_steps: int | None = None
    device: str | None = None
    epochs: int | None = None
    seed: int | None = None
    nan_policy: str = "error"
    progress_bar: bool = True
    strategy: str = "auto"
    dist_timeout_s: float = 300.0

    def __post_init__(self) -> None:
        _check_int("grad_accum_steps", self.grad_accum_steps, minimum=1)
        _check_int("log_every", self.log_every, minimum=1)
        for name in ("eval_every", "save_every", "max_steps", "epochs"):
            _check_int(name, getattr(self, name), minimum=1, optional=True)
        _check_int("seed", self.seed, minimum=0, optional=True)
        if self.max_grad_norm is not None:
            ok = isinstance(self.max_grad_norm, (int, float)) and not isinstance(
                self.max_grad_norm, bool
            )
            if not ok or not self.max_grad_norm > 0:
                raise TrainingConfigError(
                    f"training.max_grad_norm must be a positive number or null, "
                    f"got {self.max_grad_norm!r}"
                )
        _check_choice("precision", self.precision, _PRECISIONS)
        _check_choice("scheduler_interval", self.scheduler_interval, _INTERVALS)
        _check_choice("nan_policy", self.nan_policy, _NAN_POLICIES)
        _check_choice("strategy", self.strategy, _STRATEGIES)
        if self.device is not None and not isinstance(self.device, str):
            raise TrainingConfigError(
                f"training.device must be a string such as 'cpu' or 'cuda', got {self.device!r}"
            )
        if not isinstance(self.progress_bar, bool):
            raise TrainingConfigError(
                f"training.progress_bar must be true or false, got {self.progress_bar!r}"
            )
        if not isinstance(self.dist_timeout_s, (int, float)) or not self.dist_timeout_s > 0:
            raise TrainingConfigError(
                f"training.dist_timeout_s must be a positive number, got {self.dist_timeout_s!r}"
            )


_FIELDS = {f.name for f in dataclasses.fields(TrainingSettings)}


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


def _section(config: Any, name: str) -> Any:
    if config is None:
        return None
    if isinstance(config, Mapping):
        return config.get(name)
    if hasattr(config, "to_dict"):
        return config.to_dict().get(name)
    return getattr(config, name, None)


def resolve_settings(config: Any = None, **overrides: Any) -> TrainingSettings:
    """Merge ``config.training`` (known keys only) with keyword ``overrides``.

    Unknown keys in ``config.training`` (``lr``, ``batch_size`` ...) belong to the caller
    and are ignored; an unknown keyword is an error.
    """
    unknown = sorted(set(overrides) - _FIELDS)
    if unknown:
        raise TrainingConfigError(
            f"unknown training setting(s) {unknown}; known: {sorted(_FIELDS)}"
        )
    values = {k: v for k, v in as_plain_dict(_section(config, "training")).items() if k in _FIELDS}
    values.update(overrides)
    return TrainingSettings(**values)


def _check_int(name: str, value: Any, *, minimum: int, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        kind = "an integer" + (" or null" if optional else "")
        raise TrainingConfigError(f"training.{name} must be {kind} >= {minimum}, got {value!r}")


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise TrainingConfigError(f"training.{name} must be one of {list(choices)}, got {value!r}")
