"""Training: Trainer, callbacks, metrics and the ``hyso`` command line."""

from hyso.core.train.callbacks import Callback, CallbackList
from hyso.core.train.checkpointing import CheckpointCallback
from hyso.core.train.distributed import (
    DistContext,
    create_run_paths,
    destroy_distributed,
    distributed_session,
    init_distributed,
)
from hyso.core.train.errors import NonFiniteLossError, TrainingConfigError
from hyso.core.train.loss import default_loss
from hyso.core.train.metrics import CSVMetricsLogger, read_metrics
from hyso.core.train.monitors import EarlyStopping, LRMonitor
from hyso.core.train.progress import ProgressBar
from hyso.core.train.settings import TrainingSettings, resolve_settings
from hyso.core.train.trainer import Trainer

__version__ = "0.1.0"

__all__ = [
    "CSVMetricsLogger",
    "Callback",
    "CallbackList",
    "CheckpointCallback",
    "DistContext",
    "EarlyStopping",
    "LRMonitor",
    "NonFiniteLossError",
    "ProgressBar",
    "Trainer",
    "TrainingConfigError",
    "TrainingSettings",
    "__version__",
    "create_run_paths",
    "default_loss",
    "destroy_distributed",
    "distributed_session",
    "init_distributed",
    "read_metrics",
    "resolve_settings",
]
