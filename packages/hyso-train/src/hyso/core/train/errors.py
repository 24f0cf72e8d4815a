"""Errors raised by the trainer."""

from __future__ import annotations

__all__ = ["NonFiniteLossError", "RunInterrupted", "TrainingConfigError"]


class TrainingConfigError(ValueError):
    """A training setting (keyword or ``config.training`` key) has a bad value."""


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; ``step`` names the optimizer step."""

    def __init__(self, step: int, epoch: int, loss: float) -> None:
        super().__init__(
            f"non-finite training loss {loss} at optimizer step {step} (epoch {epoch}); "
            "training stopped, the last checkpoint saved before it is kept "
            "(set nan_policy='skip' to skip such steps instead)"
        )
        self.step = step
        self.epoch = epoch
        self.loss = loss


class RunInterrupted(KeyboardInterrupt):
    """The run was stopped by a signal (SIGINT or SIGTERM); the argument names it."""
