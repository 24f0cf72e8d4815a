"""Rotary position embeddings (RoPE, Su et al. 2021).

Each head vector is split into two halves ``(x1, x2)``; pair ``i`` is rotated by
the angle ``pos * base ** (-2i / head_dim)``. The dot product of a rotated query
at position ``m`` and a rotated key at ``n`` then depends only on ``m - n``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch

from .position import PositionEncoding

if TYPE_CHECKING:
    from hyso.core.models.config import TransformerConfig

__all__ = ["RotaryEmbedding", "apply_rotary", "llama3_frequencies", "rotate_qkv"]


class RotaryEmbedding(PositionEncoding):
    """Precomputed ``cos``/``sin`` tables for positions ``0 .. max_seq_len - 1``."""

    def __init__(
        self,
        head_dim: int,
        max_seq_len: int,
        base: float = 10000.0,
        scaling: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"RoPE needs an even head_dim, got {head_dim}")
        self.head_dim = head_dim
        self.max_seq_len = max_seq_len
        self.base = base
        inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
        if scaling is not None:
            inv_freq = llama3_frequencies(inv_freq, scaling)
        angles = torch.outer(torch.arange(max_seq_len, dtype=torch.float64), inv_freq)  # (L, hs/2)
        # Not persistent: rebuilt from the config, so checkpoints stay small and exact.
        cos, sin = angles.cos().float(), angles.sin().float()
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        # Whole-width tables for inference: x * cos_full + roll(x, hs/2) * sin_signed
        # rotates both halves in four ops, with the same roundings as apply_rotary.
        # (L, 1, hs): a step's rows are one slice, already shaped to broadcast over heads.
        self.register_buffer("cos_full", torch.cat((cos, cos), -1)[:, None], persistent=False)
        self.register_buffer("sin_signed", torch.cat((-sin, sin), -1)[:, None], persistent=False)

    @classmethod
    def from_config(cls, config: TransformerConfig) -> RotaryEmbedding:
        """Tables for ``config.head_dim``, ``max_seq_len``, ``rope_base`` and ``rope_scaling``."""
        return cls(config.head_dim, config.max_seq_len, config.rope_base, config.rope_scaling)

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """Rotate ``x`` of shape ``(B, T, H, hs)`` as if it sat at positions ``offset ..``."""
        seq_len = x.shape[1]
        if offset + seq_len > self.max_seq_len:
            raise ValueError(
                f"positions up to {offset + seq_len} exceed max_seq_len {self.max_seq_len}"
            )
        cos = self.cos[offset : offset + seq_len, None, :]  # (T, 1, hs/2)
        sin = self.sin[offset : offset + seq_len, None, :]
        return apply_rotary(x, cos, sin)

    def rotate_qkv(
        self, qkv: torch.Tensor, num_rotated: int, offset: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Split fused ``qkv (B, T, heads, hs)``: the first ``num_rotated`` heads rotated,
        the rest copied; see :func:`rotate_qkv`."""
        seq_len = qkv.shape[1]
        if offset + seq_len > self.max_seq_len:
            raise ValueError(
                f"positions up to {offset + seq_len} exceed max_seq_len {self.max_seq_len}"
            )
        if not (torch.is_grad_enabled() and qkv.requires_grad):
            cos = self.cos_full.narrow(0, offset, seq_len)  # (T, 1, hs)
            sin = self.sin_signed.narrow(0, offset, seq_len)
            rotated = qkv.narrow(2, 0, num_rotated)  # (B, T, H+G, hs)
            half = self.head_dim // 2
            out = rotated * cos + rotated.roll(half, dims=-1) * sin  # roll: (x2, x1)
            rest = qkv.narrow(2, num_rotated, qkv.shape[2] - num_rotated)
            return out.to(qkv.dtype), rest
        cos = self.cos[offset : offset + seq_len, None, :]  # (T, 1, hs/2)
        sin = self.sin[offset : offset + seq_len, None, :]
        return rotate_qkv(qkv, num_rotated, cos, sin)


def llama3_frequencies(inv_freq: torch.Tensor, scaling: Mapping[str, Any]) -> torch.Tensor:
    """Llama 3's long-context frequencies: wavelengths longer than
    ``original_max_position_embeddings / low_freq_factor`` are divided by ``factor``,
    those shorter than ``... / high_freq_factor`` kept, and the band between
    interpolated smoothly."""
    factor = float(scaling["factor"])
    low, high = float(scaling["low_freq_factor"]), float(scaling["high_freq_factor"])
    context = float(scaling["original_max_position_embeddings"])
    wavelen = 2 * math.pi / inv_freq
    scaled = torch.where(wavelen > context / low, inv_freq / factor, inv_freq)
    smooth = (context / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = (wavelen >= context / high) & (wavelen <= context / low)
    return torch.where(medium, smoothed, scaled)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate the two halves of the last dim of ``x`` by angles with ``cos``/``sin``."""
    x1, x2 = x.chunk(2, dim=-1)  # (..., hs/2) each
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1).to(x.dtype)


def rotate_qkv(
    qkv: torch.Tensor, num_rotated: int, cos: torch.Tensor, sin: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(rotated, rest)`` of ``qkv (B, T, heads, hs)``: heads ``:num_rotated`` (queries and
    keys) rotated, the others (values) copied out.

    Under autograd this is one function whose backward rotates the gradient back
    (a rotation's inverse is its transpose) and writes the whole ``qkv`` gradient
    in one allocation; nothing but ``cos``/``sin`` is saved, so ``qkv`` is freed
    after the forward pass.
    """
    if torch.is_grad_enabled() and qkv.requires_grad:
        return _RotateQKV.apply(qkv, num_rotated, cos, sin)
    return apply_rotary(qkv[:, :, :num_rotated], cos, sin), qkv[:, :, num_rotated:]


class _RotateQKV(torch.autograd.Function):
    @staticmethod
    def forward(ctx, qkv, num_rotated, cos, sin):  # type: ignore[override]
        ctx.save_for_backward(cos, sin)
        ctx.num_rotated = num_rotated
        rotated = apply_rotary(qkv[:, :, :num_rotated], cos, sin)  # (B, T, H+G, hs)
        rest = qkv[:, :, num_rotated:].contiguous()  # (B, T, G, hs)
        return rotated, rest

    @staticmethod
    def backward(ctx, grad_rotated, grad_rest):  # type: ignore[override]
        cos, sin = ctx.saved_tensors
        if grad_rest is None:
            grad_rest = grad_rotated.new_zeros(())
        g1, g2 = grad_rotated.chunk(2, dim=-1)  # (B, T, H+G, hs/2) each
        grad = torch.cat((g1 * cos + g2 * sin, g2 * cos - g1 * sin), dim=-1)  # rotate back
        rest_shape = (*grad.shape[:2], -1, grad.shape[3])
        return torch.cat((grad, grad_rest.expand(rest_shape)), dim=2), None, None, None
