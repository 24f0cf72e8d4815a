"""Feed-forward layers: SwiGLU (Shazeer 2020) and the classic GELU MLP."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["GeluMLP", "SwiGLU", "build_mlp", "swiglu"]


class SwiGLU(nn.Module):
    """``down(silu(gate(x)) * up(x))``; gate and up share one matmul."""

    def __init__(self, dim: int, hidden_dim: int, bias: bool = False, dropout: float = 0.0):
        super().__init__()
        self.gate_up = nn.Linear(dim, 2 * hidden_dim, bias=bias)
        self.down = nn.Linear(hidden_dim, dim, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.down(swiglu(self.gate_up(x))))


def swiglu(gate_up: torch.Tensor) -> torch.Tensor:
    """``silu(gate) * up`` for ``gate_up = cat(gate, up)`` on the last dim.

    Under autograd only ``gate_up`` is saved (``silu(gate)`` is recomputed in the
    backward pass) and its gradient is written in one allocation.
    """
    if torch.is_grad_enabled() and gate_up.requires_grad:
        return _SwiGLU.apply(gate_up)
    gate, up = gate_up.chunk(2, dim=-1)  # (B, T, hidden) each
    return F.silu(gate) * up


class _SwiGLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, gate_up):  # type: ignore[override]
        ctx.save_for_backward(gate_up)
        gate, up = gate_up.chunk(2, dim=-1)
        return F.silu(gate) * up

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        (gate_up,) = ctx.saved_tensors
        gate, up = gate_up.chunk(2, dim=-1)
        sig = torch.sigmoid(gate)
        silu = gate * sig
        grad_up = grad_out * silu
        # d silu / d gate = sig * (1 + gate * (1 - sig)) = sig + silu * (1 - sig)
        grad_gate = grad_out * up * (sig + silu * (1 - sig))
        return torch.cat((grad_gate, grad_up), dim=-1)


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
