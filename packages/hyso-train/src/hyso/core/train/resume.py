"""Exact resume: find a checkpoint, check it fits this trainer, restore it.

Model, optimizer, scheduler and RNG states travel through hyso-storage's
``CheckpointManager``; what only the trainer knows (epoch, step, batches consumed in the
epoch, the shuffle seed, loss sums, history, callback states) is the trainer's own
``state_dict()``, kept in the checkpoint's ``extra["trainer"]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hyso.core.train.errors import TrainingConfigError
from hyso.core.train.finetune import check_checkpoint_fits, checkpoint_module

if TYPE_CHECKING:
    from hyso.core.storage import CheckpointManager
    from hyso.core.train.trainer import Trainer

__all__ = ["RESUME_FORMAT_VERSION", "restore_checkpoint"]

RESUME_FORMAT_VERSION = 1


def restore_checkpoint(trainer: Trainer, resume: str) -> None:
    """Load ``resume`` ("latest", "best" or a path) into the trainer and its objects."""
    mgr = trainer.checkpoint_manager
    if mgr is None:
        raise TrainingConfigError(
            f"fit(resume={resume!r}) needs a checkpoint_manager (or run_paths)"
        )
    if resume == "latest":
        ckpt = mgr.load_latest(map_location="cpu")
        if ckpt is None:
            trainer.logger.info("resume='latest': no checkpoint yet, starting from scratch")
            return
    elif resume == "best":
        ckpt = mgr.load_best(map_location="cpu")
        if ckpt is None:
            raise FileNotFoundError(f"resume='best': no best checkpoint in {_mgr_dir(mgr)}")
    else:
        ckpt = mgr.load(resume, map_location="cpu")
    state = (ckpt.extra or {}).get("trainer")
    if not isinstance(state, Mapping):
        raise ValueError(
            f"checkpoint {ckpt.path} has no trainer state in its extra; it was not written "
            "by hyso.core.train.Trainer and cannot resume training"
        )
    version = state.get("format_version")
    if version != RESUME_FORMAT_VERSION:
        raise ValueError(
            f"checkpoint {ckpt.path}: trainer state format_version {version!r} is not "
            f"supported (expected {RESUME_FORMAT_VERSION})"
        )
    for key, now in (
        ("grad_accum_steps", trainer.settings.grad_accum_steps),
        ("world_size", trainer.dist.world_size),
    ):
        if state.get(key, now) != now and not state.get("epoch_complete"):
            raise ValueError(
                f"checkpoint {ckpt.path} was saved mid-epoch with {key}={state.get(key)}; "
                f"resuming it with {key}={now} cannot continue the epoch exactly"
            )
    check_checkpoint_fits(ckpt.path, ckpt.extra, trainer.model)
    # a LoRA run: the adapters only (a sharded checkpoint: the whole model)
    target = checkpoint_module(trainer.model, sharded=ckpt.sharded)
    mgr.restore_objects(ckpt, target, trainer.optimizer, trainer.scheduler, restore_rng=True)
    trainer.load_state_dict(state)
    trainer.logger.info(
        f"resumed from {ckpt.path}: epoch {trainer.epoch}, step {trainer.global_step}, "
        f"batch {0 if state['epoch_complete'] else state['batch_index']} of the epoch"
    )


def _mgr_dir(mgr: CheckpointManager) -> Any:
    return mgr.config.directory
