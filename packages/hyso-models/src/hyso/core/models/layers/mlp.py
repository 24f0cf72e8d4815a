"""Feed-forward layers: SwiGLU (Shazeer 2020) and the classic GELU MLP."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["GeluMLP", "SwiGLU", "build_mlp"]


class SwiGLU(nn.Module):
    """``down(silu(gate(x)) * up(x))``; gate and up share one matmul."""

    def __init__(self, dim: int, hidden_dim: int, bias: bool = False, dropout: float = 0.0):
        super().__init__()
        self.gate_up = nn.Linear(dim, 2 * hidden_dim, bias=bias)
        self.down = nn.Linear(hidden_dim, dim, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up(x).chunk(2, dim=-1)  # (B, T, hidden) each
        return self.dropout(self.down(F.silu(gate) * up))


class GeluMLP(nn.Module):
    """``proj(gelu(fc(x)))`` (GPT-2/BERT)."""

    def __init__(self, dim: int, hidden_dim: int, bias: bool = False, dropout: float = 0.0):
        super().__init__()
        self.fc = nn.Linear(dim, hidden_dim, bias=bias)
        self.down = nn.Linear(hidden_dim, dim, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.down(F.gelu(self.fc(x), approximate="tanh")))


def build_mlp(
    kind: str, dim: int, hidden_dim: int, bias: bool = False, dropout: float = 0.0
) -> nn.Module:
    """``"swiglu"`` or ``"gelu"``; anything else is a ``ValueError``."""
    if kind == "swiglu":
        return SwiGLU(dim, hidden_dim, bias, dropout)
    if kind == "gelu":
        return GeluMLP(dim, hidden_dim, bias, dropout)
    raise ValueError(f"unknown mlp {kind!r}; expected 'swiglu' or 'gelu'")
