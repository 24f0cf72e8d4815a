"""Feed-forward layers: SwiGLU (Shazeer 2020) and the classic GELU MLP."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "GELU_APPROXIMATIONS",
    "GeGLU",
    "GeluMLP",
    "ReluMLP",
    "SwiGLU",
    "build_mlp",
    "swiglu",
    "swiglu_linear",
]


class SwiGLU(nn.Module):
    """``down(silu(gate(x)) * up(x))``; gate and up share one matmul.

    While ``down`` is a plain ``nn.Linear``, training runs ``down(swiglu(.))``
    as one autograd function that saves only the ``gate_up`` activations
    (:func:`swiglu_linear`; the saving is measured in BENCHMARKS.md). Once
    ``down`` is anything else (a LoRA wrapper, an FSDP-sharded or quantised
    layer, any subclass), it is called through its own ``forward``.
    """

    def __init__(self, dim: int, hidden_dim: int, bias: bool = False, dropout: float = 0.0):
        super().__init__()
        self.gate_up = nn.Linear(dim, 2 * hidden_dim, bias=bias)
        self.down = nn.Linear(hidden_dim, dim, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, C) -> (B, T, C)``."""
        gate_up = self.gate_up(x)  # (B, T, 2 * hidden)
        if type(self.down) is nn.Linear:
            out = swiglu_linear(gate_up, self.down.weight, self.down.bias)
        else:
            out = self.down(swiglu(gate_up))
        return self.dropout(out) if self.training else out


def swiglu(gate_up: torch.Tensor) -> torch.Tensor:
    """``silu(gate) * up`` for ``gate_up = cat(gate, up)`` on the last dim."""
    gate, up = gate_up.chunk(2, dim=-1)  # (B, T, hidden) each
    return F.silu(gate) * up


def swiglu_linear(
    gate_up: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """``linear(swiglu(gate_up), weight, bias)``.

    Under autograd only ``gate_up`` is saved: the ``(B, T, hidden)`` product is
    recomputed in the backward pass instead of being kept, and the gradient of
    ``gate_up`` is written in one allocation.
    """
    if torch.is_grad_enabled() and (gate_up.requires_grad or weight.requires_grad):
        return _SwiGLULinear.apply(gate_up, weight, bias)
    return F.linear(swiglu(gate_up), weight, bias)


class _SwiGLULinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, gate_up, weight, bias):  # type: ignore[override]
        ctx.save_for_backward(gate_up, weight)
        ctx.has_bias = bias is not None
        return F.linear(swiglu(gate_up), weight, bias)

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        gate_up, weight = ctx.saved_tensors
        gate, up = gate_up.chunk(2, dim=-1)  # (B, T, hidden) each
        sig = torch.sigmoid(gate)
        silu = gate * sig
        hidden = silu * up  # recomputed, (B, T, hidden)
        grad_2d = grad_out.reshape(-1, grad_out.shape[-1])  # (B*T, C)
        grad_weight = grad_2d.T @ hidden.reshape(-1, hidden.shape[-1])  # (C, hidden)
        grad_bias = grad_2d.sum(0) if ctx.has_bias else None
        grad_hidden = grad_out @ weight  # (B, T, hidden)
        grad_up = grad_hidden * silu
        # d silu / d gate = sig * (1 + gate * (1 - sig)) = sig + silu * (1 - sig)
        grad_gate = grad_hidden.mul_(up).mul_(sig + silu * (1 - sig))
        return torch.cat((grad_gate, grad_up), dim=-1), grad_weight, grad_bias


class GeluMLP(nn.Module):
    """``proj(gelu(fc(x)))`` (GPT-2/BERT); ``approximate`` is ``"tanh"`` (GPT-2) or
    ``"none"`` (the exact GELU, BERT)."""

    def __init__(
        self,
        dim: int,
        hidden_dim: int,
        bias: bool = False,
        dropout: float = 0.0,
        approximate: str = "tanh",
    ):
        super().__init__()
        self.approximate = approximate
        self.fc = nn.Linear(dim, hidden_dim, bias=bias)
        self.down = nn.Linear(hidden_dim, dim, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, C) -> (B, T, C)``."""
        out = self.down(F.gelu(self.fc(x), approximate=self.approximate))
        return self.dropout(out) if self.training else out


def build_mlp(
    kind: str, dim: int, hidden_dim: int, bias: bool = False, dropout: float = 0.0
) -> nn.Module:
    """``"swiglu"``, ``"geglu"``, ``"gelu"`` (tanh), ``"gelu_erf"`` or ``"dense_relu"``; anything
    else is a ``ValueError``."""
    if kind == "swiglu":
        return SwiGLU(dim, hidden_dim, bias, dropout)
    if kind == "geglu":
        return GeGLU(dim, hidden_dim, bias, dropout)
    if kind == "dense_relu":
        return ReluMLP(dim, hidden_dim, bias, dropout)
    if kind in GELU_APPROXIMATIONS:
        return GeluMLP(dim, hidden_dim, bias, dropout, GELU_APPROXIMATIONS[kind])
    raise ValueError(
        f"unknown mlp {kind!r}; expected one of swiglu, geglu, gelu, gelu_erf, dense_relu"
    )


class ReluMLP(GeluMLP):
    """``proj(relu(fc(x)))`` (T5 v1.0)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, C) -> (B, T, C)``."""
        out = self.down(F.relu(self.fc(x)))
        return self.dropout(out) if self.training else out


class GeGLU(SwiGLU):
    """``down(gelu(gate(x)) * up(x))`` with the tanh GELU (T5 v1.1's gated GELU)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, C) -> (B, T, C)``."""
        gate, up = self.gate_up(x).chunk(2, dim=-1)  # (B, T, hidden) each
        out = self.down(gelu_tanh(gate) * up)
        return self.dropout(out) if self.training else out


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    """The tanh GELU written out as T5 and GPT-2 define it (``F.gelu(approximate="tanh")``
    up to rounding)."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3.0))))


# mlp kind -> ``approximate`` of F.gelu.
GELU_APPROXIMATIONS = {"gelu": "tanh", "gelu_erf": "none"}
