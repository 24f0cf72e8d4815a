"""The pre-norm residual block shared by every family.

``x = x + drop_path(attn(attn_norm(x)))``, optionally
``x = x + drop_path(cross(cross_norm(x), memory))``, then
``x = x + drop_path(mlp(mlp_norm(x)))``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from .attention import CrossAttention, KVCache, SelfAttention
from .drop_path import DropPath
from .mlp import build_mlp
from .norms import build_norm
from .position import PositionEncoding

if TYPE_CHECKING:
    from hyso.core.models.config import TransformerConfig

__all__ = ["TransformerBlock"]


class TransformerBlock(nn.Module):
    """Self-attention (+ cross-attention when ``cross_attention``) and an MLP, pre-norm.

    Built from a model ``config``; ``pos_encoding`` is the model's positional
    encoding, handed to the self-attention layer.
    """

    def __init__(
        self,
        config: TransformerConfig,
        *,
        pos_encoding: PositionEncoding | None = None,
        drop_path: float = 0.0,
        cross_attention: bool = False,
    ) -> None:
        super().__init__()
        c = config
        # __post_init__ has resolved the optional sizes.
        heads: int = c.num_heads  # type: ignore[assignment]
        kv_heads: int = c.num_kv_heads  # type: ignore[assignment]
        hidden: int = c.hidden_dim  # type: ignore[assignment]
        self.attn_norm = build_norm(c.norm, c.dim, c.norm_eps, c.bias)
        self.attn = SelfAttention(
            c.dim,
            heads,
            kv_heads,
            c.bias,
            c.dropout,
            pos_encoding=pos_encoding,
            head_dim=c.head_dim,
            qkv_bias=c.qkv_bias,
            scale=c.attn_scale,
        )
        self.cross_norm = build_norm(c.norm, c.dim, c.norm_eps, c.bias) if cross_attention else None
        self.cross = (
            CrossAttention(
                c.dim, heads, kv_heads, c.bias, c.dropout, head_dim=c.head_dim, scale=c.attn_scale
            )
            if cross_attention
            else None
        )
        self.mlp_norm = build_norm(c.norm, c.dim, c.norm_eps, c.bias)
        self.mlp = build_mlp(c.mlp, c.dim, hidden, c.bias, c.dropout)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(
        self,
        x: torch.Tensor,
        *,
        attn_mask: torch.Tensor | None = None,
        is_causal: bool = False,
        cache: KVCache | None = None,
        memory: torch.Tensor | None = None,
        memory_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``x (B, T, C) -> (B, T, C)``; ``memory (B, S, C)`` is the encoder output."""
        h = self.attn(self.attn_norm(x), attn_mask=attn_mask, is_causal=is_causal, cache=cache)
        x = self._residual(x, h)
        if self.cross is not None:
            if memory is None:
                raise ValueError("a cross-attention block needs the encoder memory")
            h = self.cross(self.cross_norm(x), memory, attn_mask=memory_mask, cache=cache)
            x = self._residual(x, h)
        return self._residual(x, self.mlp(self.mlp_norm(x)))

    def _residual(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """``x + drop_path(h)``; drop-path is the identity in eval mode, so not called."""
        return x + (self.drop_path(h) if self.training else h)
