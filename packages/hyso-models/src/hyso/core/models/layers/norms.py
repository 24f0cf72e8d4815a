"""Normalisation layers: RMSNorm and LayerNorm, chosen by name."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LayerNorm", "RMSNorm", "build_norm", "norm_linear"]


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


def norm_linear(norm: nn.Module, linear: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """``linear(norm(x))``; for RMSNorm under autograd, one function that saves only
    ``x`` and its per-row scale (the normalised activations are recomputed in backward)."""
    if isinstance(norm, RMSNorm) and torch.is_grad_enabled():
        return _RMSNormLinear.apply(x, norm.weight, norm.eps, linear.weight, linear.bias)
    return linear(norm(x))


class _RMSNormLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, norm_weight, eps, weight, bias):  # type: ignore[override]
        rstd = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)  # (B, T, 1)
        ctx.save_for_backward(x, rstd, norm_weight, weight)
        ctx.has_bias = bias is not None
        return F.linear(x * rstd * norm_weight, weight, bias)

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        x, rstd, norm_weight, weight = ctx.saved_tensors
        x_hat = x * rstd  # recomputed, (B, T, C)
        normed = x_hat * norm_weight
        grad_2d = grad_out.reshape(-1, grad_out.shape[-1])  # (B*T, out)
        grad_weight = grad_2d.T @ normed.reshape(-1, normed.shape[-1])  # (out, C)
        grad_bias = grad_2d.sum(0) if ctx.has_bias else None
        grad_normed = grad_out @ weight  # (B, T, C)
        grad_norm_weight = (grad_normed * x_hat).reshape(-1, x.shape[-1]).sum(0)
        grad_x_hat = grad_normed.mul_(norm_weight)
        dot = (grad_x_hat * x_hat).mean(-1, keepdim=True)  # (B, T, 1)
        grad_x = (grad_x_hat - x_hat * dot).mul_(rstd)
        return grad_x, grad_norm_weight, None, grad_weight, grad_bias
