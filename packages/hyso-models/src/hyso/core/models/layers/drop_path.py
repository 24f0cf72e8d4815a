"""DropPath (stochastic depth, Huang et al. 2016): drop a whole residual branch per sample."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["DropPath", "drop_path_rates"]


class DropPath(nn.Module):
    """Zero the branch for a random ``p`` fraction of samples, scale the rest by ``1/(1-p)``.

    Identity in ``eval()`` and when ``p == 0``.
    """

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"drop_path rate must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)  # (B, 1, 1): one draw per sample
        mask = x.new_empty(shape).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


def drop_path_rates(rate: float, num_layers: int) -> list[float]:
    """Rates growing linearly from 0 at the first block to ``rate`` at the last."""
    if num_layers == 1:
        return [rate]
    return [rate * i / (num_layers - 1) for i in range(num_layers)]
