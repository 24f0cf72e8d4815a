"""Checkpoints through hyso-storage's ``CheckpointManager``: every ``save_every`` steps and
at each epoch end, with the trainer's resume position in the checkpoint's ``extra``."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hyso.core.train.callbacks import Callback
from hyso.core.train.finetune import checkpoint_extra, checkpoint_module
from hyso.core.train.fsdp import is_sharded

if TYPE_CHECKING:
    from hyso.core.storage import CheckpointManager
    from hyso.core.train.trainer import Trainer

__all__ = ["CheckpointCallback"]


class CheckpointCallback(Callback):
    """Save through ``manager`` (best by ``val_loss`` when the manager is set up so).

    Step saves follow ``trainer.settings.save_every``; ``save_on_epoch_end`` adds one per
    epoch. Only the process of rank 0 writes; every process takes part in gathering the
    state (its loss sums are averaged over processes); under ``strategy: fsdp`` every
    process writes its shard. ``blocking=False`` lets the manager write single-file
    checkpoints in the background; the last save is awaited when training ends.
    """

    def __init__(
        self, manager: CheckpointManager, *, save_on_epoch_end: bool = True, blocking: bool = True
    ):
        self.manager = manager
        self.save_on_epoch_end = save_on_epoch_end
        self.blocking = blocking
        self.last_path: Path | None = None
        self._last_saved_step: int | None = None

    def on_step_end(self, trainer: Trainer, metrics: Mapping[str, Any]) -> None:
        every = trainer.settings.save_every
        if not every or trainer.global_step % every:
            return
        if self.save_on_epoch_end and trainer.batch_index == trainer.batches_in_epoch:
            return  # the epoch-end save follows at this same step
        self.save(trainer, metrics)

    def on_epoch_end(self, trainer: Trainer, metrics: Mapping[str, Any]) -> None:
        if self.save_on_epoch_end:
            self.save(trainer, metrics)

    def on_train_end(self, trainer: Trainer) -> None:
        if trainer.is_rank_zero and hasattr(self.manager, "wait"):
            self.manager.wait()

    def save(self, trainer: Trainer, metrics: Mapping[str, Any]) -> Path | None:
        """Save now (rank 0); returns the checkpoint path (``None`` on other ranks).

        Under ``strategy: fsdp`` every process writes its own shard
        (``CheckpointManager.save_sharded``), and the call is a collective.
        """
        extra = {"trainer": trainer.state_dict(), **checkpoint_extra(trainer.model)}
        numeric = {
            k: float(v)
            for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        }
        common = {"step": trainer.global_step, "metrics": numeric, "extra": extra}
        if trainer.settings.strategy == "fsdp" or is_sharded(trainer.model):
            objects = (trainer.epoch, trainer.model, trainer.optimizer, trainer.scheduler)
            path = self.manager.save_sharded(*objects, **common)
            if not trainer.is_rank_zero:
                return None
        elif not trainer.is_rank_zero:
            return None
        else:
            module = checkpoint_module(trainer.model)  # a LoRA run: the adapters only
            objects = (trainer.epoch, module, trainer.optimizer, trainer.scheduler)
            path = self.manager.save(*objects, **common, blocking=self.blocking)
        self.last_path = Path(path) if path is not None else None
        self._last_saved_step = trainer.global_step
        trainer.logger.info(f"checkpoint saved at step {trainer.global_step}: {path}")
        trainer.callbacks.on_checkpoint(trainer, path)
        return self.last_path
