"""Exact resume: the trainer's position and sums in a checkpoint's ``extra``, and back.

Model, optimizer, scheduler and RNG states travel through hyso-storage's
``CheckpointManager``; this module adds what only the trainer knows: epoch, step,
batches consumed in the epoch, the shuffle seed, loss sums, history and callback states.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hyso.core.train.errors import TrainingConfigError

if TYPE_CHECKING:
    from hyso.core.train.trainer import Trainer

__all__ = ["RESUME_FORMAT_VERSION", "capture_state", "restore_state"]

RESUME_FORMAT_VERSION = 1


def capture_state(trainer: Trainer) -> dict[str, Any]:
    """The trainer's resume state (folds pending losses first: a sync, on every rank)."""
    trainer._fold()
    return {
        "format_version": RESUME_FORMAT_VERSION,
        "epoch": trainer.epoch,
        "global_step": trainer.global_step,
        "batch_index": trainer.batch_index,
        "epoch_complete": trainer._epoch_complete,
        "seed": trainer.seed,
        "world_size": trainer.dist.world_size,
        "grad_accum_steps": trainer.settings.grad_accum_steps,
        "history": [dict(h) for h in trainer.history],
        "best_val_loss": trainer.best_val_loss,
        "skipped_steps": trainer.skipped_steps,
        "elapsed_s": trainer.elapsed_s(),
        "epoch_sums": [trainer._epoch_sum, trainer._epoch_count, trainer._epoch_tokens],
        "window": [trainer._window_sum, trainer._window_count, trainer._window_tokens],
        "callbacks": trainer.callbacks.state_dict(),
        "grad_scaler": trainer._scaler.state_dict() if trainer._scaler is not None else None,
    }


def restore_state(trainer: Trainer, resume: str) -> None:
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
        ckpt = _load_checkpoint_path(mgr, resume)
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
    mgr.restore_objects(ckpt, trainer.model, trainer.optimizer, trainer.scheduler, restore_rng=True)
    trainer.epoch = int(state["epoch"])
    trainer.global_step = int(state["global_step"])
    trainer._epoch_complete = bool(state["epoch_complete"])
    trainer._resume_batch = 0 if trainer._epoch_complete else int(state["batch_index"])
    trainer.seed = int(state["seed"])
    trainer.history = [dict(h) for h in state.get("history", [])]
    trainer.best_val_loss = state.get("best_val_loss")
    trainer.skipped_steps = int(state.get("skipped_steps", 0))
    trainer._elapsed_before = float(state.get("elapsed_s", 0.0))
    trainer._epoch_sum, trainer._epoch_count, trainer._epoch_tokens = state["epoch_sums"]
    trainer._reset_window()
    trainer._window_sum, trainer._window_count, trainer._window_tokens = state["window"]
    trainer.callbacks.load_state_dict(state.get("callbacks", {}))
    if trainer._scaler is not None and state.get("grad_scaler"):
        trainer._scaler.load_state_dict(state["grad_scaler"])
    trainer.logger.info(
        f"resumed from {ckpt.path}: epoch {trainer.epoch}, step {trainer.global_step}, "
        f"batch {trainer._resume_batch} of the epoch"
    )


def _mgr_dir(mgr: Any) -> Any:
    return getattr(getattr(mgr, "config", None), "directory", "the checkpoint folder")


def _load_checkpoint_path(mgr: Any, path: Any) -> Any:
    for name in ("load", "load_path", "load_checkpoint"):
        fn = getattr(mgr, name, None)
        if fn is not None:
            return fn(path, map_location="cpu")
    raise TrainingConfigError(
        f"fit(resume={path!r}): resume takes 'latest', 'best' or a path the checkpoint "
        "manager can load"
    )
