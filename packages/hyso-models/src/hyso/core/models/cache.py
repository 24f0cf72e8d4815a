"""The cache one forward pass hands to the next: per-block keys and values, and padding."""

from __future__ import annotations

import torch

from .layers import KVCache

__all__ = ["Cache"]


class Cache:
    """One :class:`KVCache` per cached block, and which cached positions are padding.

    ``model.forward(ids, cache=cache)`` reads ``ids`` as the positions after the
    cached ones and appends their keys and values; a cross-attention block also
    keeps its projected encoder memory here.
    """

    def __init__(self, layers: list[KVCache]) -> None:
        if not layers:
            raise ValueError("a cache needs at least one layer")
        self.layers = layers
        # (B, max_len) bool, True for real tokens; None while nothing cached is padding.
        self.key_valid: torch.Tensor | None = None

    @property
    def length(self) -> int:
        """Number of positions cached so far."""
        return self.layers[0].length

    @property
    def max_len(self) -> int:
        """Number of positions the cache holds at most."""
        return self.layers[0].max_len

    def track_padding(self, mask: torch.Tensor | None, num_new: int) -> torch.Tensor | None:
        """Record the padding mask ``(B, num_new)`` of the next positions (``None``: no
        padding) and return the validity of every key they see, ``(B, length + num_new)``,
        or ``None`` when no position seen is padding."""
        start, end = self.length, self.length + num_new
        if mask is None and self.key_valid is None:
            return None
        if end > self.max_len:
            raise ValueError(f"cache holds {self.max_len} positions; {end} were requested")
        if self.key_valid is None:
            k = self.layers[0].k
            self.key_valid = torch.ones(k.shape[0], self.max_len, dtype=torch.bool, device=k.device)
        if mask is not None:
            self.key_valid[:, start:end] = mask
        return self.key_valid[:, :end]

    def reset(self) -> None:
        """Forget every cached position (the storage is kept for reuse)."""
        for layer in self.layers:
            layer.reset()
        self.key_valid = None
