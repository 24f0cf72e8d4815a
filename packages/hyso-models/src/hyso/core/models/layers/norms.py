"""Normalisation layers: RMSNorm and LayerNorm, chosen by name."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LayerNorm", "RMSNorm", "build_norm"]


class RMSNorm(nn.Module):
    """``x / rms(x) * weight`` over the last dim (Zhang & Sennrich 2019); no mean, no bias."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, self.weight.shape, self.weight, self.eps)


class LayerNorm(nn.LayerNorm):
    """``nn.LayerNorm`` whose bias is optional (off when the model has no biases)."""

    def __init__(self, dim: int, eps: float = 1e-5, bias: bool = True) -> None:
        super().__init__(dim, eps=eps, bias=bias)


def build_norm(kind: str, dim: int, eps: float = 1e-5, bias: bool = True) -> nn.Module:
    """``"rmsnorm"`` or ``"layernorm"``; anything else is a ``ValueError``."""
    if kind == "rmsnorm":
        return RMSNorm(dim, eps)
    if kind == "layernorm":
        return LayerNorm(dim, eps, bias)
    raise ValueError(f"unknown norm {kind!r}; expected 'rmsnorm' or 'layernorm'")
