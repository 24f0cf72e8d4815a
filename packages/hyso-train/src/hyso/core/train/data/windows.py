"""Torch datasets over a flat token stream: next-token windows for decoders and
masked-token windows for encoders.

The stream may be a tensor or list (held in memory as int64) or an array-like that
slices into numpy arrays, such as a numpy memmap or sharded tokens
(:class:`~hyso.core.train.data.shards.ShardedTokens`): those stay where they are and
each item reads only its window, so a process reads only the windows it is given."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset

__all__ = ["IGNORE_INDEX", "MaskedLMWindows", "NextTokenWindows"]

IGNORE_INDEX = -100


def _as_source(tokens: Any) -> Any:
    """A tensor for in-memory tokens; array-likes that slice into numpy stay as they are."""
    if isinstance(tokens, torch.Tensor):
        return tokens.long()
    if isinstance(tokens, (list, tuple)):
        return torch.tensor(tokens, dtype=torch.long)
    return tokens


def _window(tokens: Any, start: int, stop: int) -> torch.Tensor:
    """``tokens[start:stop]`` as a fresh int64 tensor."""
    if isinstance(tokens, torch.Tensor):
        return tokens[start:stop].clone()
    import numpy as np

    return torch.from_numpy(np.array(tokens[start:stop], dtype=np.int64))


class NextTokenWindows(Dataset):
    """Non-overlapping windows: item ``i`` is ``(x, y)`` with ``x = s[i*T : i*T+T]`` and
    ``y = s[i*T+1 : i*T+T+1]`` (both shape ``(T,)``). Every token but the first is a
    target exactly once; the tail shorter than a window is left out."""

    def __init__(self, tokens: Any, seq_len: int) -> None:
        if seq_len < 1:
            raise ValueError(f"seq_len must be >= 1, got {seq_len}")
        self.tokens = _as_source(tokens)
        self.seq_len = seq_len
        self._n = max(0, (len(self.tokens) - 1) // seq_len)

    def __len__(self) -> int:
        return self._n

    @property
    def num_targets(self) -> int:
        """How many tokens the windows predict in total."""
        return self._n * self.seq_len

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= i < self._n:
            raise IndexError(f"window {i} out of range [0, {self._n})")
        start = i * self.seq_len
        chunk = _window(self.tokens, start, start + self.seq_len + 1)
        return chunk[:-1], chunk[1:]


class MaskedLMWindows(Dataset):
    """Non-overlapping windows of ``T`` tokens for masked-LM training (BERT style).

    Of each window, a ``mask_prob`` share of positions is chosen (at least one); of
    those, 80% become ``mask_id``, 10% a random token, 10% stay. ``y`` holds the
    original token there and ``IGNORE_INDEX`` elsewhere. The choice is a function of
    ``(seed, i)``, so validation is the same task every epoch.
    """

    def __init__(
        self,
        tokens: Any,
        seq_len: int,
        mask_id: int,
        vocab_size: int,
        mask_prob: float = 0.15,
        seed: int = 0,
    ) -> None:
        if not 0 < mask_prob < 1:
            raise ValueError(f"mask_prob must be in (0, 1), got {mask_prob}")
        self.tokens = _as_source(tokens)
        self.seq_len = seq_len
        self.mask_id = mask_id
        self.vocab_size = vocab_size
        self.mask_prob = mask_prob
        self.seed = seed
        self._n = len(self.tokens) // seq_len

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= i < self._n:
            raise IndexError(f"window {i} out of range [0, {self._n})")
        x = _window(self.tokens, i * self.seq_len, (i + 1) * self.seq_len)
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + i)
        chosen = torch.rand(self.seq_len, generator=g) < self.mask_prob
        if not chosen.any():
            chosen[torch.randint(self.seq_len, (1,), generator=g)] = True
        y = torch.full_like(x, IGNORE_INDEX)
        y[chosen] = x[chosen]
        action = torch.rand(self.seq_len, generator=g)
        random_tokens = torch.randint(self.vocab_size, (self.seq_len,), generator=g)
        x[chosen & (action < 0.8)] = self.mask_id
        swap = chosen & (action >= 0.8) & (action < 0.9)
        x[swap] = random_tokens[swap]
        return x, y
