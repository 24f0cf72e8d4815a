"""Multi-head attention on ``F.scaled_dot_product_attention``, with a preallocated KV cache.

Shapes: ``B`` batch, ``T`` query length, ``S`` key length, ``H`` query heads,
``G`` key/value heads (``G < H`` is grouped-query attention: each key/value head
serves ``H // G`` query heads), ``hs`` head size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .position import PositionEncoding

__all__ = ["CrossAttention", "KVCache", "SelfAttention", "attend", "with_bias"]


class KVCache:
    """Keys and values of one attention layer, preallocated for ``max_len`` positions.

    ``update`` writes the new keys in place and returns views of everything
    cached so far: no per-step allocation of the cache, no copies of old entries.
    A cross-attention layer keeps the keys and values of the encoder memory in
    ``memory`` (computed once, on the first step).
    """

    def __init__(
        self,
        batch_size: int,
        num_kv_heads: int,
        max_len: int,
        head_dim: int,
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> None:
        shape = (batch_size, num_kv_heads, max_len, head_dim)  # (B, G, L, hs)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        self.max_len = max_len
        self.length = 0
        self.memory: tuple[torch.Tensor, torch.Tensor] | None = None

    def update(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append ``k``/``v`` of shape ``(B, G, T, hs)``; return all cached ``(B, G, S, hs)``."""
        start, end = self.length, self.length + k.shape[2]
        if end > self.max_len:
            raise ValueError(f"KV cache holds {self.max_len} positions; {end} were requested")
        self.k.narrow(2, start, end - start).copy_(k)
        self.v.narrow(2, start, end - start).copy_(v)
        self.length = end
        return self.k.narrow(2, 0, end), self.v.narrow(2, 0, end)

    def reset(self) -> None:
        """Forget every cached position and the memory (the storage is kept for reuse)."""
        self.length = 0
        self.memory = None


def attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    is_causal: bool = False,
    dropout_p: float = 0.0,
    scale: float | None = None,
) -> torch.Tensor:
    """Scaled dot-product attention of ``q (B, H, T, hs)`` over ``k, v (B, G, S, hs)``.

    ``attn_mask`` is boolean, ``True`` where a query may attend, or a float bias
    added to the scores; either broadcastable to ``(B, H, T, S)``. ``scale``
    defaults to ``1 / sqrt(hs)``.
    """
    gqa = k.shape[1] != q.shape[1]
    return F.scaled_dot_product_attention(
        q,
        k,
        v,
        attn_mask=attn_mask,
        dropout_p=dropout_p,
        is_causal=is_causal,
        enable_gqa=gqa,
        scale=scale,
    )


def with_bias(
    bias: torch.Tensor, attn_mask: torch.Tensor | None, is_causal: bool, offset: int
) -> torch.Tensor:
    """One float mask: ``bias (1|B, H, T, S)`` with ``-inf`` wherever the boolean
    ``attn_mask`` (or the causal order, with ``is_causal``) forbids attending."""
    T, S = bias.shape[-2:]
    if is_causal:
        q_pos = torch.arange(offset, offset + T, device=bias.device)[:, None]  # (T, 1)
        causal = torch.arange(S, device=bias.device)[None, :] <= q_pos  # (T, S)
        attn_mask = causal if attn_mask is None else attn_mask & causal
    if attn_mask is None:
        return bias
    return bias.masked_fill(~attn_mask, float("-inf"))


class SelfAttention(nn.Module):
    """Self-attention with one fused q/k/v projection.

    ``pos_encoding`` encodes the positions of queries and keys; the same module
    is shared by every layer of a model. ``head_dim`` defaults to
    ``dim // num_heads``; ``qkv_bias`` (default ``bias``) sets the q/k/v biases
    apart from the output projection's.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        num_kv_heads: int | None = None,
        bias: bool = False,
        dropout: float = 0.0,
        *,
        pos_encoding: PositionEncoding | None = None,
        head_dim: int | None = None,
        qkv_bias: bool | None = None,
        scale: float | None = None,
    ) -> None:
        super().__init__()
        num_kv_heads = num_kv_heads or num_heads
        if head_dim is None and dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        if num_heads % num_kv_heads:
            raise ValueError(
                f"num_heads {num_heads} is not divisible by num_kv_heads {num_kv_heads}"
            )
        self.num_heads = num_heads
        self.num_kv_heads = num_kv_heads
        self.head_dim = head_dim or dim // num_heads
        self.dropout = dropout
        self.scale = scale
        qkv_bias = bias if qkv_bias is None else qkv_bias
        self.qkv = nn.Linear(dim, (num_heads + 2 * num_kv_heads) * self.head_dim, bias=qkv_bias)
        self.out = nn.Linear(num_heads * self.head_dim, dim, bias=bias)
        self.resid_dropout = nn.Dropout(dropout)
        self.pos_encoding = pos_encoding

    def forward(
        self,
        x: torch.Tensor,
        *,
        attn_mask: torch.Tensor | None = None,
        is_causal: bool = False,
        cache: KVCache | None = None,
    ) -> torch.Tensor:
        """Attend ``x (B, T, C)`` to itself and to what ``cache`` holds.

        With a cache, ``x`` sits at the positions after the cached ones and its
        keys and values are appended to the cache.
        """
        B, T, _ = x.shape
        H, G, hs = self.num_heads, self.num_kv_heads, self.head_dim
        offset = 0 if cache is None else cache.length
        qkv = self.qkv(x).view(B, T, H + 2 * G, hs)  # (B, T, H+2G, hs)
        if self.pos_encoding is not None:
            qk, v = self.pos_encoding.rotate_qkv(qkv, H + G, offset)  # queries, keys together
            q, k = qk.split((H, G), dim=2)
        else:
            q, k, v = qkv.split((H, G, G), dim=2)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # (B, H|G, T, hs)
        if cache is not None:
            k, v = cache.update(k, v)  # (B, G, S, hs)
        if self.pos_encoding is not None:
            bias = self.pos_encoding.attn_bias(T, k.shape[2], offset)  # (1|B, H, T, S)
            if bias is not None:
                attn_mask, is_causal = (
                    with_bias(bias.to(q.dtype), attn_mask, is_causal, offset),
                    False,
                )
        dropout_p = self.dropout if self.training else 0.0
        y = attend(q, k, v, attn_mask, is_causal, dropout_p, self.scale)  # (B, H, T, hs)
        y = y.transpose(1, 2).reshape(B, T, H * hs)  # (B, T, H * hs)
        out = self.out(y)
        return self.resid_dropout(out) if self.training else out


class CrossAttention(nn.Module):
    """Queries from ``x``, keys and values from an encoder's ``memory`` (no RoPE)."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        num_kv_heads: int | None = None,
        bias: bool = False,
        dropout: float = 0.0,
        *,
        head_dim: int | None = None,
        scale: float | None = None,
    ) -> None:
        super().__init__()
        num_kv_heads = num_kv_heads or num_heads
        self.num_heads = num_heads
        self.num_kv_heads = num_kv_heads
        self.head_dim = head_dim or dim // num_heads
        self.dropout = dropout
        self.scale = scale
        inner = num_heads * self.head_dim
        self.q = nn.Linear(dim, inner, bias=bias)
        self.kv = nn.Linear(dim, 2 * num_kv_heads * self.head_dim, bias=bias)
        self.out = nn.Linear(inner, dim, bias=bias)
        self.resid_dropout = nn.Dropout(dropout)

    def project_memory(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values ``(B, G, S, hs)`` of ``memory (B, S, C)``; reusable across steps."""
        B, S, _ = memory.shape
        kv = self.kv(memory).view(B, S, 2 * self.num_kv_heads, self.head_dim)  # (B, S, 2G, hs)
        k, v = kv.transpose(1, 2).chunk(2, dim=1)  # (B, G, S, hs) each
        return k, v

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor,
        *,
        attn_mask: torch.Tensor | None = None,
        cache: KVCache | None = None,
    ) -> torch.Tensor:
        """Attend ``x (B, T, C)`` to ``memory (B, S, C)``; ``attn_mask`` masks memory padding.

        With a cache, the memory is projected on the first call and reused after.
        """
        B, T, _ = x.shape
        q = self.q(x).view(B, T, self.num_heads, self.head_dim).transpose(1, 2)  # (B, H, T, hs)
        if cache is None:
            k, v = self.project_memory(memory)
        else:
            if cache.memory is None:
                cache.memory = self.project_memory(memory)
            k, v = cache.memory
        dropout_p = self.dropout if self.training else 0.0
        y = attend(q, k, v, attn_mask, False, dropout_p, self.scale)  # (B, H, T, hs)
        y = y.transpose(1, 2).reshape(B, T, -1)  # (B, T, H * hs)
        out = self.out(y)
        return self.resid_dropout(out) if self.training else out
