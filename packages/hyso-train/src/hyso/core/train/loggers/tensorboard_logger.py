"""TensorBoard: event files in the run folder's ``tensorboard/`` (or a folder given).

Values are written as double-precision scalars, so TensorBoard holds the exact values
of metrics.csv; the config goes to the HParams dashboard and the run id to both the
hparams and a text summary. A resumed run writes to the same folder.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hyso.core.train.errors import TrainingConfigError
from hyso.core.train.loggers.base import TrackingLogger, flatten_config, require_module

if TYPE_CHECKING:
    from hyso.core.train.trainer import Trainer

__all__ = ["TensorBoardLogger"]

#: The metrics the HParams dashboard shows beside each run's hyperparameters.
HPARAM_METRICS = ("train/loss", "val/loss")


class TensorBoardLogger(TrackingLogger):
    """Mirror metrics.csv into TensorBoard event files.

    ``log_dir``: where the event files go (default: ``<run folder>/tensorboard``).
    Needs the ``tensorboard`` package (``pip install "hyso-train[tensorboard]"``).
    """

    name = "tensorboard"

    def __init__(self, log_dir: str | os.PathLike[str] | None = None) -> None:
        super().__init__()
        require_module("torch.utils.tensorboard", self.name, "tensorboard")
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self._writer: Any = None

    def _open(
        self, trainer: Trainer, run_id: str | None, resume: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        from torch.utils.tensorboard import SummaryWriter

        log_dir = self.log_dir
        if log_dir is None and resume and resume.get("log_dir"):
            log_dir = Path(resume["log_dir"])
        if log_dir is None:
            if trainer.run_paths is None:
                raise TrainingConfigError(
                    "the tensorboard logger needs a run folder or TensorBoardLogger(log_dir=...)"
                )
            log_dir = trainer.run_paths.run_dir / "tensorboard"
        log_dir.mkdir(parents=True, exist_ok=True)
        self._writer = SummaryWriter(log_dir=os.fspath(log_dir))
        return {"log_dir": str(log_dir)}

    def _log_config(self, config: Mapping[str, Any], run_id: str | None, resumed: bool) -> None:
        from torch.utils.tensorboard.summary import hparams

        flat = flatten_config(config)
        if run_id is not None:
            flat = {"run_id": run_id, **flat}
            self._writer.add_text("hyso/run_id", run_id, 0)
        writer = self._writer._get_file_writer()
        for summary in hparams(flat, dict.fromkeys(HPARAM_METRICS, 0.0)):
            writer.add_summary(summary)
        self._writer.flush()

    def _log_row(self, step: int, values: Mapping[str, float]) -> None:
        for tag, value in values.items():
            self._writer.add_scalar(tag, value, step, new_style=True, double_precision=True)

    def _close(self, status: str) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
