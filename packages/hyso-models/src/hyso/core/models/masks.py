"""Boolean attention masks (``True`` = may attend) built from 1/0 padding masks."""

from __future__ import annotations

import torch

__all__ = ["causal_attention", "causal_mask", "padding_mask"]


def padding_mask(key_valid: torch.Tensor, num_queries: int | None = None) -> torch.Tensor:
    """Mask ``(B, 1, T, S)`` letting every query see the real keys of its row.

    ``key_valid (B, S)`` is 1 for tokens, 0 for padding. With ``num_queries`` equal
    to ``S`` (self-attention) each position may also see itself, so a padding
    query never has an empty row (which would give NaN); real queries are unaffected.
    """
    valid = key_valid.bool()[:, None, None, :]  # (B, 1, 1, S)
    if num_queries is None:
        return valid
    S = key_valid.shape[1]
    eye = torch.eye(num_queries, S, dtype=torch.bool, device=key_valid.device)  # (T, S)
    return valid | eye


def causal_mask(
    key_valid: torch.Tensor | None, num_queries: int, offset: int = 0, device=None
) -> torch.Tensor:
    """Causal mask ``(B|1, 1, T, offset + T)`` for queries at positions ``offset ..``.

    Padding keys (``key_valid == 0``) are masked too, except a query's own
    position, so no row is empty.
    """
    S = offset + num_queries
    if key_valid is not None:
        device = key_valid.device
    q_pos = torch.arange(offset, S, device=device)[:, None]  # (T, 1)
    k_pos = torch.arange(S, device=device)[None, :]  # (1, S)
    mask = (k_pos <= q_pos)[None, None]  # (1, 1, T, S)
    if key_valid is None:
        return mask
    own = (k_pos == q_pos)[None, None]
    return (mask & key_valid.bool()[:, None, None, :S]) | own  # (B, 1, T, S)


def causal_attention(
    key_valid: torch.Tensor | None, num_queries: int, offset: int = 0, device=None
) -> tuple[torch.Tensor | None, bool]:
    """``(attn_mask, is_causal)`` for causal self-attention of ``num_queries`` queries at
    positions ``offset ..`` over keys ``0 .. offset + num_queries - 1``.

    Without padding no mask is built: one query sees every key before it, and a
    block of queries starting at 0 uses the kernel's own causal mode.
    """
    if key_valid is not None:
        return causal_mask(key_valid, num_queries, offset), False
    if num_queries == 1:
        return None, False
    if offset == 0:
        return None, True
    return causal_mask(None, num_queries, offset, device=device), False
