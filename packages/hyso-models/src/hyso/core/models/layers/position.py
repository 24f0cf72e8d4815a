"""The interface every positional encoding implements, and the registry of them by name.

A model builds one encoding from its config (``pos_encoding``, default
``"rope"``) and hands the same module to the model (which calls :meth:`embed`
on the token embeddings) and to every self-attention layer (which calls
:meth:`rotate_qkv` on its fused projection). Each hook is the identity here,
so an encoding overrides only the hooks it needs: RoPE rotates queries and
keys; a learned absolute encoding would add to the embeddings.

Adding an encoding: one new file with a subclass that has a
``from_config(config)`` classmethod, plus one line registering it in
:data:`POSITION_ENCODINGS` (in :mod:`hyso.core.models.layers.registry`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

import torch
from torch import nn

if TYPE_CHECKING:
    from hyso.core.models.config import TransformerConfig

__all__ = ["NoPositionEncoding", "PositionEncoding"]

P = TypeVar("P", bound="PositionEncoding")


class PositionEncoding(nn.Module):
    """Base class: every hook leaves its input unchanged."""

    @classmethod
    def from_config(cls: type[P], config: TransformerConfig) -> P:
        """Build from a model config (override to read the fields the encoding needs)."""
        return cls()

    def embed(
        self, x: torch.Tensor, offset: int = 0, positions: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Token embeddings ``x (B, T, C)`` at positions ``offset ..``, with positions added.

        ``positions (B, T)``, given only for left-padded rows, numbers each row's
        tokens from its first real one (what an absolute encoding should use).
        """
        return x

    def rotate_qkv(
        self, qkv: torch.Tensor, num_rotated: int, offset: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Split a fused projection ``qkv (B, T, heads, hs)`` into its first ``num_rotated``
        heads (queries and keys, position-encoded) and the rest (values)."""
        return qkv[:, :, :num_rotated], qkv[:, :, num_rotated:]

    def attn_bias(self, num_queries: int, num_keys: int, offset: int = 0) -> torch.Tensor | None:
        """A bias ``(1|B, H, T, S)`` added to the attention scores of queries at positions
        ``offset ..`` over keys ``0 .. S - 1``; ``None`` (no bias) by default."""
        return None

    def causal(self) -> PositionEncoding:
        """This encoding as a causal (decoder) stack uses it; the same by default."""
        return self


class NoPositionEncoding(PositionEncoding):
    """No positions at all (a bag-of-tokens encoder; also a minimal example)."""
