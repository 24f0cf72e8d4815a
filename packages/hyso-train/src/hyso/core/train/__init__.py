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
from hyso.core.train.errors import NonFiniteLossError, RunInterrupted, TrainingConfigError
from hyso.core.train.loss import default_loss
from hyso.core.train.loss_tracker import LossTracker
from hyso.core.train.metrics import CSVMetricsLogger, read_metrics
from hyso.core.train.monitors import EarlyStopping, LRMonitor
from hyso.core.train.progress import ProgressBar
from hyso.core.train.run_config import (
    DataSettings,
    FinetuneSettings,
    RunConfig,
    RunSettings,
    load_run_config,
)
from hyso.core.train.run_record import RunRecord
from hyso.core.train.settings import TrainingSettings, resolve_settings
from hyso.core.train.trainer import Trainer

__version__ = "0.1.0"

__all__ = [
    "CSVMetricsLogger",
    "Callback",
    "CallbackList",
    "CheckpointCallback",
    "DataSettings",
    "DistContext",
    "EarlyStopping",
    "FinetuneSettings",
    "LRMonitor",
    "LossTracker",
    "NonFiniteLossError",
    "ProgressBar",
    "RunConfig",
    "RunInterrupted",
    "RunRecord",
    "RunSettings",
    "Trainer",
    "TrainingConfigError",
    "TrainingSettings",
    "__version__",
    "create_run_paths",
    "default_loss",
    "destroy_distributed",
    "distributed_session",
    "init_distributed",
    "load_run_config",
    "read_metrics",
    "resolve_settings",
]
