"""The pre-norm residual block shared by every family.

``x = x + drop_path(attn(norm(x)))``, optionally ``x = x + drop_path(cross(norm(x), memory))``,
then ``x = x + drop_path(mlp(norm(x)))``.
"""

from __future__ import annotations

import torch
from torch import nn

from .attention import CrossAttention, KVCache, SelfAttention
from .drop_path import DropPath
from .mlp import build_mlp
from .norms import build_norm
from .rope import RotaryEmbedding

__all__ = ["TransformerBlock"]


class TransformerBlock(nn.Module):
    """Self-attention (+ cross-attention when ``cross_attention``) and an MLP, pre-norm."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        num_kv_heads: int,
        hidden_dim: int,
        *,
        mlp: str = "swiglu",
        norm: str = "rmsnorm",
        norm_eps: float = 1e-5,
        bias: bool = False,
        dropout: float = 0.0,
        drop_path: float = 0.0,
        cross_attention: bool = False,
    ) -> None:
        super().__init__()
        self.attn_norm = build_norm(norm, dim, norm_eps, bias)
        self.attn = SelfAttention(dim, num_heads, num_kv_heads, bias, dropout)
        self.cross_norm = build_norm(norm, dim, norm_eps, bias) if cross_attention else None
        self.cross = (
            CrossAttention(dim, num_heads, num_kv_heads, bias, dropout) if cross_attention else None
        )
        self.mlp_norm = build_norm(norm, dim, norm_eps, bias)
        self.mlp = build_mlp(mlp, dim, hidden_dim, bias, dropout)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(
        self,
        x: torch.Tensor,
        rope: RotaryEmbedding | None,
        attn_mask: torch.Tensor | None = None,
        is_causal: bool = False,
        cache: KVCache | None = None,
        offset: int = 0,
        memory_kv: tuple[torch.Tensor, torch.Tensor] | None = None,
        memory_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``x (B, T, C) -> (B, T, C)``; ``memory_kv`` comes from ``cross.project_memory``."""
        # The norms are handed to the layers, which fuse them with their input projections.
        x = x + self.drop_path(
            self.attn(x, rope, attn_mask, is_causal, cache, offset, norm=self.attn_norm)
        )
        if self.cross is not None:
            if memory_kv is None:
                raise ValueError("a cross-attention block needs the encoder memory")
            x = x + self.drop_path(self.cross(self.cross_norm(x), memory_kv, memory_mask))
        return x + self.drop_path(self.mlp(x, norm=self.mlp_norm))
