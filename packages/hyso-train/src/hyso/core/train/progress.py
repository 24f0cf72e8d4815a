"""A tqdm progress bar over optimizer steps with loss, lr and tokens per second."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hyso.core.train.callbacks import Callback

if TYPE_CHECKING:
    from hyso.core.train.trainer import Trainer

__all__ = ["ProgressBar"]


class ProgressBar(Callback):
    """One bar for the whole fit; the counter moves every step, the postfix on log steps.

    ``update_every`` > 1 advances the counter in chunks to cost even less per step.
    """

    def __init__(self, update_every: int = 1, **tqdm_kwargs: Any) -> None:
        if not isinstance(update_every, int) or update_every < 1:
            raise ValueError(
                f"ProgressBar update_every must be an integer >= 1, got {update_every}"
            )
        self.update_every = update_every
        self.tqdm_kwargs = tqdm_kwargs
        self.bar: Any = None
        self._shown = 0

    def on_train_start(self, trainer: Trainer) -> None:
        from tqdm.auto import tqdm

        total = trainer.planned_steps()
        kwargs = {"desc": "train", "unit": "step", "dynamic_ncols": True, **self.tqdm_kwargs}
        self.bar = tqdm(total=total, initial=trainer.global_step, **kwargs)
        self._shown = trainer.global_step

    def on_epoch_start(self, trainer: Trainer) -> None:
        if self.bar is not None:
            self.bar.set_description(f"epoch {trainer.epoch}", refresh=False)

    def on_step_end(self, trainer: Trainer, metrics: Mapping[str, Any]) -> None:
        step = trainer.global_step
        if step - self._shown >= self.update_every:
            self.bar.update(step - self._shown)
            self._shown = step
        if metrics and "loss" in metrics:
            self.bar.set_postfix_str(
                f"loss={metrics['loss']:.4f}, lr={metrics['lr']:.3g}, "
                f"tok_s={metrics['tokens_per_s']:.0f}",
                refresh=False,
            )

    def on_validation_end(self, trainer: Trainer, metrics: Mapping[str, Any]) -> None:
        if self.bar is not None:
            self.bar.write(
                f"step {trainer.global_step}: val_loss {metrics['val_loss']:.4f} "
                f"val_ppl {metrics['val_ppl']:.2f}"
            )

    def on_train_end(self, trainer: Trainer) -> None:
        if self.bar is not None:
            if trainer.global_step > self._shown:
                self.bar.update(trainer.global_step - self._shown)
            self.bar.close()
            self.bar = None
