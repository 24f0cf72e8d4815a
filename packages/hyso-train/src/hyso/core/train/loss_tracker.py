"""The Trainer's loss bookkeeping: pending loss tensors, the logging window and the epoch.

The step loop only appends a detached loss tensor and adds a token count; a ``fold``
(one host sync, summed over processes) turns the pending tensors into float sums of the
current logging window and of the epoch, and checks them for NaN/inf.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import torch

from hyso.core.train.distributed import DistContext
from hyso.core.train.errors import NonFiniteLossError

__all__ = ["LossTracker"]


class LossTracker:
    """Loss sums of the current logging window and epoch, with exact-resume state."""

    def __init__(self) -> None:
        self.pending: list[torch.Tensor] = []
        """Detached losses of the micro-batches since the last fold, shape ``()`` each."""
        self.marks: list[tuple[int, int]] = []
        """``(len(pending), step)`` after each optimizer step: names the step of a bad loss."""
        self.tokens = 0
        """Tokens of the micro-batches since the last fold."""
        self.reset_window()
        self.reset_epoch()

    # -- the sums ---------------------------------------------------------------------
    def reset_window(self, now: float | None = None) -> None:
        """Start a new logging window (drops pending losses)."""
        self.pending.clear()
        self.marks = []
        self.window_sum = 0.0
        self.window_count = 0
        self.window_tokens = 0
        self.tokens = 0
        self.window_val_time = 0.0
        self.window_t0 = time.perf_counter() if now is None else now

    def reset_epoch(self) -> None:
        """Start a new epoch's sums."""
        self.epoch_sum = 0.0
        self.epoch_count = 0
        self.epoch_tokens = 0

    def mark_step(self, step: int) -> None:
        """Remember that the losses pending so far end at optimizer step ``step``."""
        self.marks.append((len(self.pending), step))

    def drop_last(self, n: int) -> None:
        """Forget the last ``n`` pending losses (a skipped step)."""
        del self.pending[-n:]

    def fold(self, dist: DistContext, step: int, epoch: int) -> None:
        """Sync pending losses into the window and epoch sums; raise on NaN/inf.

        ``step`` and ``epoch`` name the position when no pending loss can be blamed.
        """
        pending = self.pending
        tokens, self.tokens = self.tokens, 0
        self.window_tokens += tokens
        self.epoch_tokens += tokens
        if not pending:
            return
        count = len(pending)
        if dist.is_distributed:
            losses = torch.stack(pending)  # (n,)
            total = torch.stack(
                [losses.double().sum(), losses.new_tensor(count, dtype=torch.float64)]
            )
            loss_sum, count_f = (float(x) for x in dist.all_reduce_sum(total).tolist())
            count = int(count_f)
        elif pending[0].device.type == "cpu":
            # Reading a CPU scalar costs no sync, and a few reads cost less than the
            # stack and reduction kernels: the exactly rounded float64 sum of the values.
            loss_sum = _exact_sum([loss.item() for loss in pending])
        else:
            loss_sum = float(torch.stack(pending).sum(dtype=torch.float64))  # one sync
        if not math.isfinite(loss_sum):
            raise self._non_finite(torch.stack(pending), step, epoch)
        self.window_sum += loss_sum
        self.window_count += count
        self.epoch_sum += loss_sum
        self.epoch_count += count
        pending.clear()
        self.marks.clear()

    def window_mean(self) -> float:
        """Mean loss of the folded window (0 when it is empty)."""
        return self.window_sum / max(self.window_count, 1)

    def epoch_mean(self) -> float:
        """Mean loss of the folded epoch (NaN when it is empty)."""
        return self.epoch_sum / self.epoch_count if self.epoch_count else float("nan")

    def _non_finite(self, losses: torch.Tensor, step: int, epoch: int) -> NonFiniteLossError:
        bad = (~torch.isfinite(losses)).nonzero()
        value = float("nan")
        if len(bad):
            idx = int(bad[0])
            value = float(losses[idx])
            step = next((st for end, st in self.marks if end > idx), step)
        return NonFiniteLossError(step, epoch, value)

    # -- exact resume -----------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The folded sums (fold first: pending losses are not saved)."""
        return {
            "epoch_sums": [self.epoch_sum, self.epoch_count, self.epoch_tokens],
            "window": [self.window_sum, self.window_count, self.window_tokens],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the sums of :meth:`state_dict`; pending losses start empty."""
        self.epoch_sum, self.epoch_count, self.epoch_tokens = state["epoch_sums"]
        self.reset_window()
        self.window_sum, self.window_count, self.window_tokens = state["window"]


def _exact_sum(values: list[float]) -> float:
    """``math.fsum`` of ``values``; NaN where it refuses (``inf`` plus ``-inf``)."""
    try:
        return math.fsum(values)
    except (ValueError, OverflowError):
        return math.nan
