"""Rotary position embeddings (RoPE, Su et al. 2021).

Each head vector is split into two halves ``(x1, x2)``; pair ``i`` is rotated by
the angle ``pos * base ** (-2i / head_dim)``. The dot product of a rotated query
at position ``m`` and a rotated key at ``n`` then depends only on ``m - n``.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["RotaryEmbedding", "apply_rotary"]


class RotaryEmbedding(nn.Module):
    """Precomputed ``cos``/``sin`` tables for positions ``0 .. max_seq_len - 1``."""

    def __init__(self, head_dim: int, max_seq_len: int, base: float = 10000.0) -> None:
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"RoPE needs an even head_dim, got {head_dim}")
        self.head_dim = head_dim
        self.max_seq_len = max_seq_len
        self.base = base
        inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
        angles = torch.outer(torch.arange(max_seq_len, dtype=torch.float64), inv_freq)  # (L, hs/2)
        # Not persistent: rebuilt from the config, so checkpoints stay small and exact.
        self.register_buffer("cos", angles.cos().float(), persistent=False)
        self.register_buffer("sin", angles.sin().float(), persistent=False)

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


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate the two halves of the last dim of ``x`` by angles with ``cos``/``sin``."""
    x1, x2 = x.chunk(2, dim=-1)  # (..., hs/2) each
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1).to(x.dtype)
