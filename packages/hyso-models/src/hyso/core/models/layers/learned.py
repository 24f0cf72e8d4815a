"""Learned absolute positions (GPT-2, BERT): a trained vector per position, added to the
token embeddings."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from .position import PositionEncoding

if TYPE_CHECKING:
    from hyso.core.models.config import TransformerConfig

__all__ = ["LearnedPositions"]


class LearnedPositions(PositionEncoding):
    """``x + weight[offset : offset + T]``; queries and keys are left as they are."""

    def __init__(self, max_seq_len: int, dim: int) -> None:
        super().__init__()
        self.max_seq_len = max_seq_len
        self.emb = nn.Embedding(max_seq_len, dim)

    @classmethod
    def from_config(cls, config: TransformerConfig) -> LearnedPositions:
        """One vector of ``config.dim`` for each of ``config.max_seq_len`` positions."""
        return cls(config.max_seq_len, config.dim)

    def embed(
        self, x: torch.Tensor, offset: int = 0, positions: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Token embeddings ``x (B, T, C)`` plus the vectors of positions ``offset ..``,
        or of ``positions (B, T)`` (left-padded rows count from their first token)."""
        end = offset + x.shape[1]
        if end > self.max_seq_len:
            raise ValueError(f"positions up to {end} exceed max_seq_len {self.max_seq_len}")
        if positions is None:
            positions = torch.arange(offset, end, device=x.device)  # (T,)
        return x + self.emb(positions)  # (B, T, C)
