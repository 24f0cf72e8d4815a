"""What every tracking logger shares: mirroring metrics.csv, resuming, failing softly.

A :class:`TrackingLogger` is a callback that receives each row the run's
:class:`~hyso.core.train.metrics.CSVMetricsLogger` writes (the same dict, so the same
values and steps) and hands it to a backend as ``<split>/<column>`` values at the
row's step. At the start it opens the backend run, records where it went in the
manifest (:meth:`~hyso.core.train.run_record.RunRecord.record_logger`) and sends the
run id and the resolved config. A resumed run reopens the backend run recorded in the
manifest and skips the rows the killed run had already sent (every row whose step is
at or before the last one of its split in metrics.csv when the run was reopened).

Every backend call goes through :meth:`TrackingLogger._call`: the first exception
gives one :class:`LoggerFailedWarning` naming the logger, disables it, and training
(and metrics.csv) goes on. Only rank 0 logs.
"""

from __future__ import annotations

import importlib
import json
import warnings
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from hyso.core.train.callbacks import Callback
from hyso.core.train.errors import TrainingConfigError
from hyso.core.train.metrics import COLUMNS, CSVMetricsLogger

if TYPE_CHECKING:
    from types import ModuleType

    from hyso.core.train.trainer import Trainer

__all__ = [
    "LoggerFailedWarning",
    "TrackingLogger",
    "flatten_config",
    "require_module",
    "row_values",
    "run_config_tree",
]

#: Columns sent as values; ``step`` is the step of the call and ``split`` the prefix.
VALUE_COLUMNS = tuple(c for c in COLUMNS if c not in ("step", "split"))


class LoggerFailedWarning(RuntimeWarning):
    """A tracking logger failed and is off for the rest of the run; metrics.csv goes on."""


def require_module(module: str, logger: str, extra: str) -> ModuleType:
    """Import ``module`` for ``logger``, or raise a TrainingConfigError naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise TrainingConfigError(
            f"training.loggers: {logger!r} needs the {module} package ({exc}); install it "
            f'with pip install "hyso-train[{extra}]"'
        ) from exc


def row_values(row: Mapping[str, Any]) -> dict[str, float]:
    """``{"<split>/<column>": value}`` for each non-empty value column of a metrics row."""
    split = row["split"]
    return {f"{split}/{c}": float(row[c]) for c in VALUE_COLUMNS if row.get(c) is not None}


def run_config_tree(trainer: Trainer) -> dict[str, Any]:
    """The run's config as plain data with the resolved training settings; values read
    from the environment stay unresolved (they may be secrets)."""
    from hyso.core.train.redact import redact_env
    from hyso.core.train.settings import COMMAND_ONLY_KEYS, as_plain_dict

    config = trainer.config
    tree = redact_env(as_plain_dict(config), config) if config is not None else {}
    given = tree.get("training") if isinstance(tree.get("training"), Mapping) else {}
    training = redact_env({"training": trainer.settings.to_dict()}, config)["training"]
    # The Trainer uses its optimizer as given: lr, betas ... count only when configured.
    training = {k: v for k, v in training.items() if k not in COMMAND_ONLY_KEYS or k in given}
    tree = {k: v for k, v in tree.items() if k != "sweep"}
    tree["training"] = training
    return tree


def flatten_config(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted keys for nested mappings; numbers, strings and bools kept, anything else
    (lists, null) written as JSON text, e.g. ``{"training.betas": "[0.9, 0.95]"}``."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten_config(value, name + "."))
        elif isinstance(value, (bool, int, float, str)):
            flat[name] = value
        else:
            flat[name] = json.dumps(value, default=str)
    return flat


class TrackingLogger(Callback):
    """Base of the TensorBoard, MLflow and W&B loggers; see the module docstring.

    Subclasses set :attr:`name` and implement :meth:`_open` (returning where the rows
    go, recorded in the manifest), :meth:`_log_config`, :meth:`_log_row` and
    :meth:`_close`.
    """

    name = "tracking"

    def __init__(self) -> None:
        self.enabled = True
        self.failure: str | None = None
        self.destination: dict[str, Any] = {}
        self._skip_through: dict[str, int] = {}
        self._trainer: Trainer | None = None

    # -- hooks ------------------------------------------------------------------------
    def on_train_start(self, trainer: Trainer) -> None:
        self._trainer = trainer
        if not trainer.is_rank_zero:
            self.enabled = False  # under DDP / FSDP only rank 0 logs
            return
        csv = next((cb for cb in trainer.callbacks if isinstance(cb, CSVMetricsLogger)), None)
        if csv is None:
            self._fail(RuntimeError("there is no metrics.csv logger (no run folder) to mirror"))
            return
        csv.open()  # a no-op when open; otherwise reads what was logged before a resume
        record = trainer.run_record
        previous = record.logger_destination(self.name) if record is not None else None
        resume = previous if previous and csv.logged_steps else None
        self._skip_through = dict(csv.logged_steps) if resume else {}
        run_id = record.run_paths.run_id if record is not None else None
        destination = self._call(self._open, trainer, run_id, resume)
        if not self.enabled:
            return
        self.destination = dict(destination or {})
        if record is not None:
            record.record_logger(self.name, self.destination)
        config = run_config_tree(trainer)
        self._call(self._log_config, config, run_id, resume is not None)
        csv.add_listener(self.log_row)

    def on_train_end(self, trainer: Trainer) -> None:
        if self.enabled and self.destination:
            self._call(self._close, trainer.status)

    def log_row(self, row: Mapping[str, Any]) -> None:
        """Send one metrics.csv row (skipped when a killed run had already sent it)."""
        if not self.enabled:
            return
        split, step = row["split"], int(row["step"])
        if step <= self._skip_through.get(split, -1):
            return
        self._call(self._log_row, step, row_values(row))

    # -- failure handling ---------------------------------------------------------------
    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)``; on any exception warn once, turn this logger off, return None."""
        if not self.enabled:
            return None
        try:
            return fn(*args)
        except Exception as exc:
            self._fail(exc)
            return None

    def _fail(self, exc: BaseException) -> None:
        self.enabled = False
        self.failure = f"{type(exc).__name__}: {exc}"
        message = (
            f"the {self.name} logger failed and is off for the rest of this run "
            f"(metrics.csv goes on): {self.failure}"
        )
        warnings.warn(message, LoggerFailedWarning, stacklevel=3)
        if self._trainer is not None:
            self._trainer.logger.warning(message)
        try:  # let the backend release what it holds; its own failure changes nothing
            self._close("failed")
        except Exception:
            pass

    # -- backend ------------------------------------------------------------------------
    def _open(
        self, trainer: Trainer, run_id: str | None, resume: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        """Open (``resume``: reopen) the backend run; return where it is."""
        raise NotImplementedError

    def _log_config(self, config: Mapping[str, Any], run_id: str | None, resumed: bool) -> None:
        """Send the run id and the resolved config."""
        raise NotImplementedError

    def _log_row(self, step: int, values: Mapping[str, float]) -> None:
        """Send ``values`` at ``step``."""
        raise NotImplementedError

    def _close(self, status: str) -> None:
        """Flush and close the backend run (``status``: the trainer's)."""
        raise NotImplementedError
