"""Normalisation layers: RMSNorm and LayerNorm, chosen by name."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["LayerNorm", "RMSNorm", "build_norm"]


class RMSNorm(nn.Module):
    """``x / rms(x) * weight`` over the last dim (Zhang & Sennrich 2019); no mean, no bias.

    Under autograd the forward keeps only ``x`` and its per-row scale for the
    backward pass, which recomputes the normalised activations: a pre-norm
    block's norm output is saved once, by the projection that reads it, instead
    of again inside the norm (see the models section of BENCHMARKS.md).
    """

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad):
            return _RMSNormFunction.apply(x, self.weight, self.eps)
        return torch.rms_norm(x, self.weight.shape, self.weight, self.eps)


class _RMSNormFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, eps):  # type: ignore[override]
        rstd = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)  # (..., 1)
        ctx.save_for_backward(x, rstd, weight)
        return x * rstd * weight

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        x, rstd, weight = ctx.saved_tensors
        x_hat = x * rstd  # recomputed, (..., C)
        grad_weight = (grad_out * x_hat).reshape(-1, x.shape[-1]).sum(0)  # (C,)
        grad_x_hat = grad_out * weight
        dot = (grad_x_hat * x_hat).mean(-1, keepdim=True)  # (..., 1)
        grad_x = (grad_x_hat - x_hat * dot).mul_(rstd)
        return grad_x, grad_weight, None


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
