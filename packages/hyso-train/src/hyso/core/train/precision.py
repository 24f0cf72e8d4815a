"""Mixed precision: fp32 (no autocast) or bf16 autocast on the training device."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

__all__ = ["autocast_factory"]


def autocast_factory(precision: str, device: torch.device) -> Callable[[], Any] | None:
    """A zero-argument callable returning the context manager for one forward pass;
    ``None`` for fp32, where the forward pass runs without any context."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        dtype = torch.bfloat16
        return lambda: torch.autocast(device_type=device.type, dtype=dtype)
    raise ValueError(f"training.precision must be 'fp32' or 'bf16', got {precision!r}")
