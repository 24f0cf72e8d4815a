"""A tqdm progress bar over optimizer steps with loss, lr and tokens per second."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hyso.core.train.callbacks import Callback

if TYPE_CHECKING:
    from hyso.core.train.trainer import Trainer

__all__ = ["ProgressBar"]

_TQDM_MININTERVAL = 0.1  # tqdm's own default redraw interval, in seconds


class ProgressBar(Callback):
    """One bar for the whole fit: steps done, rate, ETA, and the last logged metrics.

    Like tqdm itself, the bar is redrawn at most every ``mininterval`` seconds (tqdm's
    keyword, default 0.1); a step between redraws costs one clock read. A redraw moves
    the counter to the current step (through ``tqdm.update``, so the rate and ETA are
    tqdm's smoothed ones) and shows loss, lr and tokens/s of the last logging step; the
    end of training always draws the final step. ``update_every`` > 1 also waits for
    that many steps between redraws. Other keywords go to ``tqdm``.
    """

    def __init__(self, update_every: int = 1, **tqdm_kwargs: Any) -> None:
        if not isinstance(update_every, int) or update_every < 1:
            raise ValueError(
                f"ProgressBar update_every must be an integer >= 1, got {update_every}"
            )
        interval = tqdm_kwargs.pop("mininterval", _TQDM_MININTERVAL)
        if not isinstance(interval, (int, float)) or not interval >= 0:
            raise ValueError(f"ProgressBar mininterval must be a number >= 0, got {interval!r}")
        self.update_every = update_every
        self.mininterval = float(interval)
        self.tqdm_kwargs = tqdm_kwargs
        self.bar: Any = None
        self._shown = 0
        self._due = 0.0  # perf_counter time of the next redraw
        self._logged: Mapping[str, Any] | None = None  # metrics of the last logging step
        self._posted: Mapping[str, Any] | None = None  # the metrics the postfix shows

    def on_train_start(self, trainer: Trainer) -> None:
        from tqdm.auto import tqdm

        total = trainer.planned_steps()
        # The bar redraws on each update this callback makes; the callback keeps the pace.
        kwargs = {
            "desc": "train",
            "unit": "step",
            "dynamic_ncols": True,
            "miniters": 1,
            **self.tqdm_kwargs,
            "mininterval": 0,
        }
        self.bar = tqdm(total=total, initial=trainer.global_step, **kwargs)
        self._shown = trainer.global_step
        self._logged = self._posted = None
        self._due = time.perf_counter() + self.mininterval

    def on_epoch_start(self, trainer: Trainer) -> None:
        if self.bar is not None:
            self.bar.set_description(f"epoch {trainer.epoch}", refresh=False)

    def on_step_end(self, trainer: Trainer, metrics: Mapping[str, Any]) -> None:
        if metrics and "loss" in metrics:
            self._logged = metrics
        now = time.perf_counter()
        if now >= self._due and trainer.global_step - self._shown >= self.update_every:
            self._draw(trainer.global_step)
            self._due = now + self.mininterval

    def on_validation_end(self, trainer: Trainer, metrics: Mapping[str, Any]) -> None:
        if self.bar is not None:
            self.bar.write(
                f"step {trainer.global_step}: val_loss {metrics['val_loss']:.4f} "
                f"val_ppl {metrics['val_ppl']:.2f}"
            )

    def on_train_end(self, trainer: Trainer) -> None:
        if self.bar is not None:
            self._draw(trainer.global_step)
            self.bar.close()
            self.bar = None

    def _draw(self, step: int) -> None:
        """Show the last logged metrics and move the counter to ``step`` (a redraw)."""
        logged = self._logged
        changed = False
        if logged is not None and logged is not self._posted:
            self.bar.set_postfix_str(
                f"loss={logged['loss']:.4f}, lr={logged['lr']:.3g}, "
                f"tok_s={logged['tokens_per_s']:.0f}",
                refresh=False,
            )
            self._posted = logged
            changed = True
        if step > self._shown:
            self.bar.update(step - self._shown)
            self._shown = step
        elif changed:
            self.bar.refresh()
