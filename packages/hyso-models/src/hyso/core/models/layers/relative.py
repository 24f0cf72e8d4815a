"""T5's relative position bias: a learned bias per head for each bucket of the
distance between a query and a key, added to the attention scores.

Distances below ``num_buckets // 2`` (half that when bidirectional, where the
sign takes the other half) get a bucket each; longer ones share
logarithmically wider buckets up to ``max_distance``. One table serves every
layer of a stack; the encoder's looks both ways, the decoder's only back.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from .position import PositionEncoding

if TYPE_CHECKING:
    from hyso.core.models.config import TransformerConfig

__all__ = ["RelativePositionBias", "relative_buckets"]


class RelativePositionBias(PositionEncoding):
    """``attn_bias`` gives ``(1, H, T, S)``; embeddings, queries and keys are left as they are."""

    def __init__(self, num_heads: int, num_buckets: int = 32, max_distance: int = 128) -> None:
        super().__init__()
        self.num_buckets = num_buckets
        self.max_distance = max_distance
        self.bidirectional = True
        self.emb = nn.Embedding(num_buckets, num_heads)

    @classmethod
    def from_config(cls, config: TransformerConfig) -> RelativePositionBias:
        """``config.num_heads`` biases for each of ``rel_buckets`` buckets."""
        return cls(config.num_heads, config.rel_buckets, config.rel_max_distance)  # type: ignore[arg-type]

    def causal(self) -> RelativePositionBias:
        """This table as a decoder uses it: keys after the query get no buckets of their own."""
        self.bidirectional = False
        return self

    def attn_bias(self, num_queries: int, num_keys: int, offset: int = 0) -> torch.Tensor:
        """Bias ``(1, H, T, S)`` for queries at ``offset ..`` over keys ``0 .. S - 1``."""
        device = self.emb.weight.device
        query = torch.arange(offset, offset + num_queries, device=device)[:, None]  # (T, 1)
        key = torch.arange(num_keys, device=device)[None, :]  # (1, S)
        buckets = relative_buckets(
            key - query, self.bidirectional, self.num_buckets, self.max_distance
        )  # (T, S)
        return self.emb(buckets).permute(2, 0, 1)[None]  # (1, H, T, S)


def relative_buckets(
    distance: torch.Tensor, bidirectional: bool, num_buckets: int, max_distance: int
) -> torch.Tensor:
    """T5's bucket of each ``key - query`` distance."""
    buckets = torch.zeros_like(distance)
    if bidirectional:
        num_buckets //= 2
        buckets += (distance > 0).long() * num_buckets
        distance = distance.abs()
    else:
        distance = -torch.clamp(distance, max=0)
    exact = num_buckets // 2
    # Buckets grow logarithmically from `exact` to `max_distance`.
    scaled = torch.log(distance.float().clamp(min=1) / exact) / math.log(max_distance / exact)
    large = exact + (scaled * (num_buckets - exact)).long()
    large = torch.clamp(large, max=num_buckets - 1)
    return buckets + torch.where(distance < exact, distance, large)
