"""The post-norm residual block (the original Transformer, BERT).

``x = attn_norm(x + attn(x))``, then ``x = mlp_norm(x + mlp(x))``: the same
parts as the pre-norm block, normalising after each residual sum instead of
before each branch. Chosen by ``block: post_norm`` in the config.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from .attention import KVCache
from .block import TransformerBlock

if TYPE_CHECKING:
    from hyso.core.models.config import TransformerConfig

__all__ = ["PostNormBlock"]


class PostNormBlock(TransformerBlock):
    """Self-attention and an MLP, each followed by its residual sum and then its norm."""

    def __init__(self, config: TransformerConfig, **kwargs: Any) -> None:
        if kwargs.get("cross_attention"):
            raise ValueError("block 'post_norm' has no cross-attention form; use 'pre_norm'")
        super().__init__(config, **kwargs)

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
        """``x (B, T, C) -> (B, T, C)``."""
        h = self.attn(x, attn_mask=attn_mask, is_causal=is_causal, cache=cache)
        x = self.attn_norm(self._residual(x, h))
        return self.mlp_norm(self._residual(x, self.mlp(x)))
