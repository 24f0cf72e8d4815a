"""The Trainer: model, data, optimizer, scheduler, storage and config in one loop.

The step loop does only what a hand-written loop does plus a few integer checks: losses
stay tensors until a logging, evaluation or save step, where one sync folds them into
sums (and checks them for NaN/inf); callbacks are called only for the hooks they override.
"""

from __future__ import annotations

import logging
import math
import time
import types
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist
from torch import nn

from hyso.core.train.callbacks import Callback, CallbackList
from hyso.core.train.checkpointing import CheckpointCallback
from hyso.core.train.distributed import (
    DistContext,
    destroy_distributed,
    init_distributed,
    shard_loader,
)
from hyso.core.train.epoch_order import iterate_from, loader_length, prepare_epoch
from hyso.core.train.errors import TrainingConfigError
from hyso.core.train.fsdp import (
    clip_grad_norm,
    gradient_sync_pause,
    is_sharded,
    lockstep_batches,
    wrap_fsdp,
)
from hyso.core.train.loss import (
    LossFn,
    count_tokens,
    default_loss_for,
    loss_sum_and_count,
    move_to_device,
)
from hyso.core.train.loss_tracker import LossTracker
from hyso.core.train.metrics import CSVMetricsLogger
from hyso.core.train.precision import autocast_factory, make_grad_scaler
from hyso.core.train.progress import ProgressBar
from hyso.core.train.resume import RESUME_FORMAT_VERSION, restore_checkpoint
from hyso.core.train.run_record import RunRecord
from hyso.core.train.settings import COMMAND_ONLY_KEYS, TrainingSettings, resolve_settings

if TYPE_CHECKING:
    from hyso.core.storage import CheckpointManager, RunPaths

__all__ = ["Trainer"]

_NO_METRICS: Mapping[str, Any] = types.MappingProxyType({})


class Trainer:
    """Train ``model`` with ``optimizer`` (and ``scheduler``), hooks and exact resume.

    Training settings come from ``config.training`` and keyword overrides (see
    :class:`~hyso.core.train.settings.TrainingSettings`). With ``run_paths`` the run
    folder receives the resolved config, the manifest (through :attr:`run_record`), the
    log, ``metrics.csv``, checkpoints and, when a ``tokenizer`` with ``save(path)`` is
    given, the tokenizer (``artifacts/tokenizer.json``). ``loss_fn(model, batch)``
    replaces the default cross-entropy; it may return the loss or ``(loss, num_tokens)``.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: Any = None,
        tokenizer: Any = None,
        config: Any = None,
        run_paths: RunPaths | None = None,
        checkpoint_manager: CheckpointManager | None = None,
        logger: logging.Logger | None = None,
        callbacks: Sequence[Callback] | None = None,
        loss_fn: LossFn | None = None,
        **training_overrides: Any,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(
                f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}"
            )
        command_only = sorted(COMMAND_ONLY_KEYS & set(training_overrides))
        if command_only:
            raise TrainingConfigError(
                f"Trainer(...) does not read {command_only}: hyso train builds the loader, "
                "optimizer and schedule from them; pass your own instead"
            )
        self.settings: TrainingSettings = resolve_settings(config, **training_overrides)
        s = self.settings
        self._owns_group = not (dist.is_available() and dist.is_initialized())
        self.dist: DistContext = init_distributed(s.device, s.dist_timeout_s)
        self.config = config
        self.tokenizer = tokenizer
        self.run_paths = run_paths
        self.run_record: RunRecord | None = RunRecord(run_paths) if run_paths else None
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.loss_fn = loss_fn
        self.device = self.dist.device(s.device) or _model_device(model)
        self.model = model.to(self.device)
        if s.compile:
            self.model.compile()  # in place: the state dict keeps its keys
        self._train_model: nn.Module = self._wrap(self.model)
        self.logger = logger or self._default_logger()
        if checkpoint_manager is None and run_paths is not None:
            checkpoint_manager = _default_checkpoint_manager(run_paths)
        self.checkpoint_manager = checkpoint_manager
        self.callbacks = CallbackList(self._assemble_callbacks(callbacks or ()))
        self._step_end = self.callbacks.functions("on_step_end")
        self._autocast = autocast_factory(s.precision, self.device)
        self._scaler = make_grad_scaler(s.precision, self.device)
        self._params = [p for p in self.model.parameters() if p.requires_grad]
        self.seed = s.seed if s.seed is not None else torch.initial_seed() & ((1 << 63) - 1)

        self.global_step = 0
        self.epoch = 0
        self.batch_index = 0
        self.batches_in_epoch: int | None = None
        self.history: list[dict[str, Any]] = []
        self.best_val_loss: float | None = None
        self.last_val_metrics: dict[str, Any] | None = None
        self._last_val_step = -1
        self.should_stop = False
        self.status = "created"
        self.skipped_steps = 0
        self._val_loader: Iterable[Any] | None = None
        self._resume_batch = 0
        self._epoch_complete = False
        self._elapsed_before = 0.0
        self._t_start = time.perf_counter()
        self.losses = LossTracker()

    # -- public API -----------------------------------------------------------------
    @property
    def is_rank_zero(self) -> bool:
        return self.dist.is_rank_zero

    def fit(
        self,
        train_loader: Iterable[Any],
        val_loader: Iterable[Any] | None = None,
        epochs: int | None = None,
        resume: str | None = None,
    ) -> list[dict[str, Any]]:
        """Train for ``epochs`` (default: ``training.epochs``, else 1); returns the history.

        ``resume``: ``"latest"`` (start fresh when there is no checkpoint yet),
        ``"best"``, or a checkpoint path.
        """
        epochs = epochs if epochs is not None else (self.settings.epochs or 1)
        if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
            raise TrainingConfigError(f"fit(epochs=...) must be an integer >= 1, got {epochs!r}")
        if self.dist.is_distributed:
            self._ensure_process_group()
        self._epochs = epochs
        self._train_loader = train_loader
        self._val_loader = val_loader
        self.status = "running"
        self.should_stop = False
        self._step_end = self.callbacks.functions("on_step_end")
        self._t_start = time.perf_counter()
        error: BaseException | None = None
        try:
            if resume is not None:
                self._restore(resume)
            if self.dist.is_distributed:  # after a resume: the shuffle seed comes back with it
                train_loader = shard_loader(train_loader, self.dist, self.seed, train=True)
                if val_loader is not None:
                    val_loader = shard_loader(val_loader, self.dist, self.seed, train=False)
                self._train_loader, self._val_loader = train_loader, val_loader
            info = self._trainer_info()
            if self.is_rank_zero and self.run_record is not None:
                written = self.run_record.start(self.config, info, self.tokenizer)
                self.logger.info(
                    f"run folder {self.run_record.run_paths.run_dir}: {written} written"
                )
            self.logger.info(
                f"training {info['parameters']:,} parameters for {epochs} "
                f"epoch(s) from step {self.global_step} on {self.device}"
                + (f", {self.dist.world_size} processes" if self.dist.is_distributed else "")
            )
            self.callbacks.on_train_start(self)
            self._run_epochs(train_loader, val_loader, epochs)
            self.status = "finished"
        except BaseException as exc:
            # Ctrl-C, or SIGTERM under the hyso command: the run was stopped, not broken
            self.status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            error = exc
            self.logger.error(f"training {self.status} at step {self.global_step}: {exc!r}")
            raise
        finally:
            self._finish(error)
        return self.history

    def train_epoch(self, loader: Iterable[Any]) -> dict[str, Any]:
        """Train one epoch (continuing a resumed one); returns its training metrics."""
        s = self.settings
        model = self._train_model
        model.train()
        n_batches = loader_length(loader)
        skip, self._resume_batch = self._resume_batch, 0
        tracker = self.losses
        if skip == 0:
            tracker.reset_epoch()
        self._epoch_complete = False
        self.batches_in_epoch = n_batches
        self.batch_index = skip
        prepare_epoch(loader, self.seed, self.epoch)
        accum = s.grad_accum_steps
        cbs = self.callbacks
        step_start = cbs.on_step_start if cbs.has_hook("on_step_start") else None
        autocast = self._autocast
        loss_fn = self.loss_fn or default_loss_for(model)
        max_steps = s.max_steps
        device = self.device
        move = device.type != "cpu"
        no_sync = gradient_sync_pause(model)
        scaler = self._scaler
        pending = tracker.pending
        group = accum
        stepped = True
        first_step = self.global_step
        t0 = time.perf_counter()
        for batch in iterate_from(loader, skip):
            b = self.batch_index
            micro = b % accum
            if micro == 0:
                if step_start is not None:
                    step_start(self)
                if accum > 1 and n_batches is not None:
                    group = min(accum, n_batches - b)
            if move:
                batch = move_to_device(batch, device, non_blocking=True)
            if autocast is None:
                loss = loss_fn(model, batch)
            else:
                with autocast():
                    loss = loss_fn(model, batch)
            if type(loss) is not torch.Tensor:
                loss = loss[0]
            scaled = loss / group if group > 1 else loss
            if scaler is not None:
                scaled = scaler.scale(scaled)
            if no_sync is not None and micro < group - 1:
                with no_sync():
                    scaled.backward()
            else:
                scaled.backward()
            pending.append(loss.detach())
            tracker.tokens += count_tokens(batch)
            self.batch_index = b + 1
            stepped = micro == group - 1
            if stepped:
                self._optimizer_step(group)
                if self.should_stop or (max_steps is not None and self.global_step >= max_steps):
                    break
        if skip == 0 and self.batch_index == 0:
            raise ValueError(f"the training loader yielded no batches in epoch {self.epoch}")
        if not stepped:  # a loader without len() ended inside an accumulation group
            self._optimizer_step(self.batch_index % accum)
        self._fold()
        elapsed = time.perf_counter() - t0
        return {
            "train_loss": tracker.epoch_mean(),
            "train_tokens": tracker.epoch_tokens,
            "tokens_per_s": tracker.epoch_tokens / elapsed if elapsed > 0 else 0.0,
            "epoch_steps": self.global_step - first_step,
            "time_s": elapsed,
        }

    @torch.no_grad()
    def validate(self, loader: Iterable[Any]) -> dict[str, Any]:
        """Token-weighted loss and perplexity over ``loader`` (summed over processes)."""
        model = self.model  # unwrapped: no collectives per batch under DDP
        was_training = model.training
        model.eval()
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        tokens = torch.zeros((), dtype=torch.float64, device=self.device)
        move = self.device.type != "cpu"
        t0 = time.perf_counter()
        try:
            lockstep = self.dist if is_sharded(model) else None  # a sharded forward is collective
            for batch, counted in lockstep_batches(loader, lockstep, self.device):
                if move:
                    batch = move_to_device(batch, self.device, non_blocking=True)
                if self._autocast is None:
                    loss_sum, n = self._eval_loss(model, batch)
                else:
                    with self._autocast():
                        loss_sum, n = self._eval_loss(model, batch)
                if counted:
                    total += loss_sum.double()
                    tokens += n
        finally:
            if was_training:
                model.train()
        self.dist.all_reduce_sum(total)
        self.dist.all_reduce_sum(tokens)
        n_tokens = int(tokens.item())
        val_loss = float(total.item()) / n_tokens if n_tokens else float("nan")
        elapsed = time.perf_counter() - t0
        self.losses.window_val_time += elapsed
        metrics = {
            "val_loss": val_loss,
            "val_ppl": _safe_exp(val_loss),
            "val_tokens": n_tokens,
            "val_tokens_per_s": n_tokens / elapsed if elapsed > 0 else 0.0,
        }
        if math.isfinite(val_loss) and (
            self.best_val_loss is None or val_loss < self.best_val_loss
        ):
            self.best_val_loss = val_loss
        self.last_val_metrics = metrics
        self._last_val_step = self.global_step
        self.logger.info(
            f"validation at step {self.global_step} (epoch {self.epoch}): "
            f"val_loss {val_loss:.6f} val_ppl {metrics['val_ppl']:.4f} over {n_tokens} tokens"
        )
        self.callbacks.on_validation_end(self, metrics)
        return metrics

    def current_lr(self) -> float:
        """Learning rate of the first parameter group."""
        return float(self.optimizer.param_groups[0]["lr"])

    def elapsed_s(self) -> float:
        """Training seconds so far, including those before a resume."""
        return self._elapsed_before + time.perf_counter() - self._t_start

    def planned_steps(self) -> int | None:
        """Optimizer steps ``fit`` will reach, when the loader length is known."""
        n = loader_length(getattr(self, "_train_loader", None) or ())
        total = None
        if n:
            per_epoch = math.ceil(n / self.settings.grad_accum_steps)
            total = per_epoch * getattr(self, "_epochs", 1)
        if self.settings.max_steps is not None:
            total = (
                self.settings.max_steps if total is None else min(total, self.settings.max_steps)
            )
        return total

    def save_checkpoint(self, metrics: Mapping[str, Any] | None = None) -> Any:
        """Save a checkpoint now through the checkpoint callback."""
        for cb in self.callbacks:
            if isinstance(cb, CheckpointCallback):
                return cb.save(self, metrics or {})
        raise RuntimeError("save_checkpoint needs a checkpoint_manager (or run_paths)")

    def state_dict(self) -> dict[str, Any]:
        """Everything besides model/optimizer/scheduler/RNG that exact resume needs.

        Folds pending losses first: a sync, on every process.
        """
        self._fold()
        return {
            "format_version": RESUME_FORMAT_VERSION,
            "epoch": self.epoch,
            "global_step": self.global_step,
            "batch_index": self.batch_index,
            "epoch_complete": self._epoch_complete,
            "seed": self.seed,
            "world_size": self.dist.world_size,
            "grad_accum_steps": self.settings.grad_accum_steps,
            "history": [dict(h) for h in self.history],
            "best_val_loss": self.best_val_loss,
            "skipped_steps": self.skipped_steps,
            "elapsed_s": self.elapsed_s(),
            **self.losses.state_dict(),
            "callbacks": self.callbacks.state_dict(),
            "grad_scaler": self._scaler.state_dict() if self._scaler is not None else None,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`; the next ``fit`` continues exactly where it was."""
        if state.get("format_version") != RESUME_FORMAT_VERSION:
            raise ValueError(
                f"trainer state format_version {state.get('format_version')!r} is not "
                f"supported (expected {RESUME_FORMAT_VERSION})"
            )
        self.epoch = int(state["epoch"])
        self.global_step = int(state["global_step"])
        self._epoch_complete = bool(state["epoch_complete"])
        self._resume_batch = 0 if self._epoch_complete else int(state["batch_index"])
        self.seed = int(state["seed"])
        self.history = [dict(h) for h in state.get("history", [])]
        self.best_val_loss = state.get("best_val_loss")
        self.skipped_steps = int(state.get("skipped_steps", 0))
        self._elapsed_before = float(state.get("elapsed_s", 0.0))
        self.losses.load_state_dict(state)
        self.callbacks.load_state_dict(state.get("callbacks", {}))
        if self._scaler is not None and state.get("grad_scaler"):
            self._scaler.load_state_dict(state["grad_scaler"])

    def checkpoint_state(self) -> dict[str, Any]:
        """The same as :meth:`state_dict` (kept for callers of the older name)."""
        return self.state_dict()

    # -- the step ---------------------------------------------------------------------
    def _optimizer_step(self, group: int) -> None:
        s = self.settings
        grad_norm = None
        scaler = self._scaler
        if s.max_grad_norm is not None:
            if scaler is not None:
                scaler.unscale_(self.optimizer)
            grad_norm = clip_grad_norm(self._params, s.max_grad_norm)
        if s.nan_policy == "skip" and not self._group_finite(group):
            if scaler is not None and s.max_grad_norm is not None:
                scaler.update()  # closes this step's unscale_ bookkeeping
            return
        if scaler is None:
            self.optimizer.step()
        else:
            scaler.step(self.optimizer)  # skipped by the scaler itself on inf/NaN gradients
            scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        if self.scheduler is not None and s.scheduler_interval == "step":
            self.scheduler.step()
        self.global_step = step = self.global_step + 1
        self.losses.mark_step(step)
        log_due = step % s.log_every == 0
        eval_due = (
            s.eval_every is not None and step % s.eval_every == 0 and self._val_loader is not None
        )
        save_due = s.save_every is not None and step % s.save_every == 0
        metrics: Mapping[str, Any] = _NO_METRICS
        if log_due or eval_due or save_due:
            self._fold()
            if log_due:
                metrics = self._window_metrics(grad_norm)
            if eval_due:
                metrics = {**metrics, **self.validate(self._val_loader)}  # type: ignore[arg-type]
        for fn in self._step_end:  # the callbacks overriding on_step_end, in order
            fn(self, metrics)

    def _group_finite(self, group: int) -> bool:
        losses = self.losses.pending[-group:]
        bad = (~torch.isfinite(torch.stack(losses))).sum().double()
        if not self.dist.all_reduce_sum(bad).item():  # every rank skips, or none does
            return True
        self.losses.drop_last(group)
        self.optimizer.zero_grad(set_to_none=True)
        self.skipped_steps += 1
        self.logger.warning(
            f"skipped a step with a non-finite loss after optimizer step {self.global_step} "
            f"(epoch {self.epoch}); {self.skipped_steps} skipped so far"
        )
        return False

    def _fold(self) -> None:
        """Sync pending losses into the window and epoch sums; raise on NaN/inf."""
        self.losses.fold(self.dist, self.global_step, self.epoch)

    def _window_metrics(self, grad_norm: torch.Tensor | None) -> dict[str, Any]:
        now = time.perf_counter()
        tracker = self.losses
        span = now - tracker.window_t0 - tracker.window_val_time
        tokens = tracker.window_tokens * self.dist.world_size
        metrics = {
            "loss": tracker.window_mean(),
            "lr": self.current_lr(),
            "tokens_per_s": tokens / span if span > 0 else 0.0,
            "grad_norm": float(grad_norm) if grad_norm is not None else None,
            "elapsed_s": self.elapsed_s(),
        }
        if self.logger.isEnabledFor(logging.DEBUG):
            self.logger.debug(f"step {self.global_step}: {metrics}")
        tracker.reset_window(now)
        return metrics

    def _eval_loss(self, model: nn.Module, batch: Any) -> tuple[torch.Tensor, Any]:
        if self.loss_fn is None:
            return loss_sum_and_count(model, batch)
        out = self.loss_fn(model, batch)
        if isinstance(out, torch.Tensor):
            n = count_tokens(batch) or 1
            return out.detach() * n, n
        loss, n = out
        return loss.detach() * n, n

    def _max_steps_reached(self) -> bool:
        m = self.settings.max_steps
        return m is not None and self.global_step >= m

    # -- epochs -----------------------------------------------------------------------
    def _run_epochs(self, train_loader: Any, val_loader: Any, epochs: int) -> None:
        start = self.epoch + 1 if self._epoch_complete else self.epoch
        for epoch in range(start, epochs):
            if self._max_steps_reached() or self.should_stop:
                break
            self.epoch = epoch
            self.callbacks.on_epoch_start(self)
            record: dict[str, Any] = {"epoch": epoch}
            record.update(self.train_epoch(train_loader))
            if val_loader is not None:
                done = self._last_val_step == self.global_step and self.last_val_metrics
                record.update(self.last_val_metrics if done else self.validate(val_loader))
            if self.scheduler is not None and self.settings.scheduler_interval == "epoch":
                if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                    self.scheduler.step(record.get("val_loss", record["train_loss"]))
                else:
                    self.scheduler.step()
            record["lr"] = self.current_lr()
            record["step"] = self.global_step
            self.history.append(record)
            self._epoch_complete = True
            self.logger.info(
                f"epoch {epoch} done at step {self.global_step}: "
                + ", ".join(f"{k} {_short(v)}" for k, v in record.items() if k != "epoch")
            )
            self.callbacks.on_epoch_end(self, record)

    # -- resume -------------------------------------------------------------------------
    def _restore(self, resume: str) -> None:
        restore_checkpoint(self, resume)

    # -- setup and teardown ---------------------------------------------------------------
    def _wrap(self, model: nn.Module) -> nn.Module:
        if not self.dist.is_distributed:
            return model
        if self.settings.strategy == "fsdp":
            return wrap_fsdp(model, self.optimizer, self.settings.mixed_precision)
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def _default_logger(self) -> logging.Logger:
        if self.run_paths is not None and self.is_rank_zero:
            from hyso.core.storage import get_logger

            return get_logger("train", log_dir=self.run_paths.logs_dir)
        return logging.getLogger("hyso.train")

    def _assemble_callbacks(self, user: Sequence[Callback]) -> list[Callback]:
        user = list(user)
        cbs: list[Callback] = []
        rank0 = self.is_rank_zero
        if rank0 and self.run_paths is not None and not _has(user, CSVMetricsLogger):
            cbs.append(CSVMetricsLogger(self.run_paths.metrics_path))
        if rank0 and self.settings.progress_bar and not _has(user, ProgressBar):
            cbs.append(ProgressBar())
        cbs.extend(user)
        if rank0 and len(self.settings.loggers) > 1:  # beside csv: TensorBoard, MLflow, W&B
            from hyso.core.train.loggers import build_loggers

            cbs.extend(build_loggers(self.settings.loggers, user))
        if self.checkpoint_manager is not None and not _has(user, CheckpointCallback):
            cbs.append(CheckpointCallback(self.checkpoint_manager))
        return cbs

    def _trainer_info(self) -> dict[str, Any]:
        return {
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "device": str(self.device),
            "world_size": self.dist.world_size,
            "settings": self.settings.to_dict(),
        }

    def _ensure_process_group(self) -> None:
        """Re-create a process group this trainer destroyed at the end of an earlier fit."""
        if not dist.is_initialized():
            self._owns_group = True
            self.dist = init_distributed(self.settings.device, self.settings.dist_timeout_s)
            self._train_model = self._wrap(self.model)

    def _finish(self, error: BaseException | None) -> None:
        try:
            self._finish_callbacks_and_manifest(error)
        finally:
            if self.dist.is_distributed and self._owns_group:
                destroy_distributed(sync=error is None and self.status != "failed")

    def _finish_callbacks_and_manifest(self, error: BaseException | None) -> None:
        try:
            self.callbacks.on_train_end(self)
        except Exception as exc:
            if error is None:
                self.status = "failed"
                error = exc
                raise
            self.logger.error(f"a callback failed while ending a failed run: {exc!r}")
        finally:
            if self.is_rank_zero and self.run_record is not None:
                results = self._results()
                if error is not None:
                    results["error"] = f"{type(error).__name__}: {error}"
                self.run_record.finish(self.status, results)

    def _results(self) -> dict[str, Any]:
        results: dict[str, Any] = {
            "global_step": self.global_step,
            "epochs_completed": len(self.history),
            "best_val_loss": self.best_val_loss,
            "elapsed_s": self.elapsed_s(),
            "skipped_steps": self.skipped_steps,
        }
        if self.history:
            results.update({k: v for k, v in self.history[-1].items() if k != "epoch"})
        return results


def _model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def _has(callbacks: Sequence[Callback], kind: type) -> bool:
    return any(isinstance(cb, kind) for cb in callbacks)


def _safe_exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def _short(v: Any) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def _default_checkpoint_manager(run_paths: RunPaths) -> CheckpointManager:
    from hyso.core.storage import CheckpointConfig, CheckpointManager

    cfg = CheckpointConfig.from_dir(
        directory=run_paths.checkpoints_dir, best_metric_name="val_loss", best_mode="min"
    )
    return CheckpointManager(cfg)
