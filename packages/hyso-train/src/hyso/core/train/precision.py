"""Mixed precision: fp32 (no autocast), bf16 autocast, or fp16 autocast with loss scaling."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

__all__ = ["autocast_factory", "make_grad_scaler"]


def autocast_factory(precision: str, device: torch.device) -> Callable[[], Any] | None:
    """A zero-argument callable returning the context manager for one forward pass;
    ``None`` for fp32, where the forward pass runs without any context."""
    if precision == "fp32":
        return None
    if precision in ("bf16", "fp16"):
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16
        return lambda: torch.autocast(device_type=device.type, dtype=dtype)
    raise ValueError(f"training.precision must be 'fp32', 'bf16' or 'fp16', got {precision!r}")


def make_grad_scaler(precision: str, device: torch.device) -> Any:
    """A ``torch.amp.GradScaler`` for fp16 (gradients of small losses would underflow
    without it); ``None`` otherwise."""
    if precision != "fp16":
        return None
    return torch.amp.GradScaler(device.type)
