"""Loggers beside metrics.csv: TensorBoard, MLflow and Weights & Biases.

Each mirrors the rows of metrics.csv (which stays the run's record) into its backend;
its library is imported only when the logger is built, so ``import hyso.core.train``
loads none of them. ``training.loggers: [csv, tensorboard, mlflow, wandb]`` builds them
for a Trainer (rank 0 only); or pass :class:`TensorBoardLogger`, :class:`MLflowLogger`
or :class:`WandbLogger` in ``Trainer(callbacks=[...])`` to choose their arguments.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from hyso.core.train.callbacks import Callback
from hyso.core.train.loggers.base import LoggerFailedWarning, TrackingLogger
from hyso.core.train.loggers.mlflow_logger import MLflowLogger
from hyso.core.train.loggers.tensorboard_logger import TensorBoardLogger
from hyso.core.train.loggers.wandb_logger import WandbLogger

__all__ = [
    "LOGGERS",
    "LoggerFailedWarning",
    "MLflowLogger",
    "TensorBoardLogger",
    "TrackingLogger",
    "WandbLogger",
    "build_loggers",
]

#: The tracking loggers ``training.loggers`` names (besides ``csv``).
LOGGERS: dict[str, type[TrackingLogger]] = {
    "tensorboard": TensorBoardLogger,
    "mlflow": MLflowLogger,
    "wandb": WandbLogger,
}


def build_loggers(names: Iterable[str], given: Sequence[Callback] = ()) -> list[TrackingLogger]:
    """A logger for each tracking name in ``names`` not already among ``given``."""
    out: list[TrackingLogger] = []
    for name in names:
        kind = LOGGERS.get(name)
        if kind is not None and not any(isinstance(cb, kind) for cb in given):
            out.append(kind())
    return out
