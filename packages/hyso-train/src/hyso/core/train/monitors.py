"""Early stopping on a validation metric, and a learning-rate monitor."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hyso.core.train.callbacks import Callback

if TYPE_CHECKING:
    from hyso.core.train.trainer import Trainer

__all__ = ["EarlyStopping", "LRMonitor"]


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` validations."""

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 3,
        min_delta: float = 0.0,
        mode: str = "min",
    ) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping mode must be 'min' or 'max', got {mode!r}")
        if not isinstance(patience, int) or patience < 1:
            raise ValueError(f"EarlyStopping patience must be an integer >= 1, got {patience!r}")
        if min_delta < 0:
            raise ValueError(f"EarlyStopping min_delta must be >= 0, got {min_delta}")
        self.monitor, self.patience, self.min_delta, self.mode = monitor, patience, min_delta, mode
        self.best: float | None = None
        self.bad_validations = 0
        self.stopped_at_step: int | None = None

    def on_validation_end(self, trainer: Trainer, metrics: Mapping[str, Any]) -> None:
        if self.monitor not in metrics:
            raise ValueError(
                f"EarlyStopping monitors {self.monitor!r}, which validation does not report "
                f"(it reports {sorted(metrics)})"
            )
        value = float(metrics[self.monitor])
        if self._improved(value):
            self.best, self.bad_validations = value, 0
            return
        self.bad_validations += 1
        if self.bad_validations >= self.patience:
            trainer.should_stop = True
            self.stopped_at_step = trainer.global_step
            trainer.logger.info(
                f"early stopping at step {trainer.global_step}: {self.monitor} has not improved "
                f"on {self.best} for {self.bad_validations} validations"
            )

    def _improved(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "bad_validations": self.bad_validations}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.best = state.get("best")
        self.bad_validations = int(state.get("bad_validations", 0))


class LRMonitor(Callback):
    """Record every parameter group's learning rate on logging steps and epoch ends.

    ``history`` holds ``(step, [lr per group])``; a change is also written to the log.
    """

    def __init__(self) -> None:
        self.history: list[tuple[int, list[float]]] = []

    def on_step_end(self, trainer: Trainer, metrics: Mapping[str, Any]) -> None:
        if "loss" in metrics:
            self._record(trainer)

    def on_epoch_end(self, trainer: Trainer, metrics: Mapping[str, Any]) -> None:
        self._record(trainer)

    def _record(self, trainer: Trainer) -> None:
        lrs = [float(g["lr"]) for g in trainer.optimizer.param_groups]
        if self.history and self.history[-1][1] != lrs:
            trainer.logger.info(f"step {trainer.global_step}: learning rate(s) now {lrs}")
        if not self.history or self.history[-1][0] != trainer.global_step:
            self.history.append((trainer.global_step, lrs))
