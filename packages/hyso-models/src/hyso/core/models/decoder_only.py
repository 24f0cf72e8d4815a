"""Decoder-only causal language model (GPT/Llama style).

token embedding -> N pre-norm blocks (causal self-attention with RoPE, MLP) ->
final norm -> LM head (tied to the embedding by default).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .base import HysoModel
from .cache import Cache
from .config import DecoderOnlyConfig
from .generation import GenerationMixin, GenerationStart, check_left_padded
from .layers.linear_cross_entropy import IGNORE_INDEX, linear_cross_entropy
from .masks import causal_attention
from .registry import register_family

__all__ = ["DecoderOnlyConfig", "HysoDecoderOnly"]


@register_family
class HysoDecoderOnly(GenerationMixin, HysoModel):
    """A causal LM: ``forward(input_ids, *, attention_mask=None, cache=None) -> logits``."""

    config_class = DecoderOnlyConfig
    is_encoder_decoder = False
    accepts_targets = True
    """``forward(input_ids, targets=...)`` returns the training loss itself."""
    config: DecoderOnlyConfig

    def __init__(self, config: DecoderOnlyConfig | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self._build_single_stack()

    def forward(
        self,
        input_ids: torch.Tensor,
        *,
        attention_mask: torch.Tensor | None = None,
        cache: Cache | None = None,
        last_only: bool = False,
        targets: torch.Tensor | None = None,
        reduction: str = "mean",
    ) -> torch.Tensor:
        """Logits ``(B, T, V)``; position ``t`` sees tokens ``0 .. t`` that are not padding.

        With ``cache`` (from :meth:`new_cache`), ``input_ids`` continue the cached
        positions and see them too; ``last_only`` gives the last position's logits
        only, ``(B, 1, V)``.

        With ``targets (B, T)`` (the next token of each position, ``-100`` where none is
        counted) it returns their cross-entropy instead of the logits (``reduction``:
        ``"mean"`` over the counted targets, or ``"sum"``), computed
        from the final hidden states chunk by chunk
        (:func:`~hyso.core.models.layers.linear_cross_entropy`): the whole ``(B, T, V)``
        logits are never held, in forward or backward.
        """
        self._check_ids(input_ids, "input_ids")
        if targets is not None:
            self._check_targets(targets, reduction, input_ids, cache, last_only)
        mask = self._check_mask(attention_mask, input_ids, "attention_mask")
        T, offset = input_ids.shape[1], 0
        if cache is not None:
            offset = cache.length
            mask = cache.track_padding(mask, T)
        attn_mask, is_causal = causal_attention(mask, T, offset, device=input_ids.device)
        # With padding, each row's positions count from its first real token (so a
        # left-padded row reads as it would unpadded); only absolute encodings use them.
        positions = None if mask is None else (mask.long().cumsum(-1) - 1).clamp(min=0)[:, -T:]
        body = self._body_fn("_body", cache)
        args = (input_ids, attn_mask, is_causal, cache, last_only, positions, targets is not None)
        out = self._guard_ids({"input_ids": input_ids}, body, *args)
        return out if targets is None else self._head_loss(out, targets, reduction)

    def _body(
        self,
        input_ids: torch.Tensor,
        attn_mask: torch.Tensor | None,
        is_causal: bool,
        cache: Cache | None = None,
        last_only: bool = False,
        positions: torch.Tensor | None = None,
        hidden_only: bool = False,
    ) -> torch.Tensor:
        """The network itself, on checked inputs (what ``compile=True`` compiles);
        ``hidden_only``: the final hidden states ``(B, T, C)``, before the head."""
        x = self._run_blocks(
            input_ids,
            self.blocks,
            attn_mask=attn_mask,
            is_causal=is_causal,
            cache=cache,
            positions=positions,
        )
        if last_only:
            x = x[:, -1:]  # (B, 1, C)
        x = self.norm(x)
        return x if hidden_only else self.lm_head(x)  # (B, T, V)

    def _check_targets(
        self,
        targets: Any,
        reduction: str,
        input_ids: torch.Tensor,
        cache: Cache | None,
        last_only: bool,
    ) -> None:
        """Before the network runs: a loss call with a bad ``targets`` or ``reduction``."""
        if cache is not None or last_only:
            raise ValueError("targets= computes a training loss: pass no cache and no last_only")
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
        if not isinstance(targets, torch.Tensor) or targets.shape != input_ids.shape:
            got = tuple(targets.shape) if isinstance(targets, torch.Tensor) else type(targets)
            raise ValueError(
                f"targets must be a tensor of the shape of input_ids {tuple(input_ids.shape)}, "
                f"got {got}"
            )

    def _head_loss(
        self, hidden: torch.Tensor, targets: torch.Tensor, reduction: str
    ) -> torch.Tensor:
        """Cross-entropy of the head's logits on ``hidden (B, T, C)``; a head other than
        a plain bias-free linear layer (an adapter on it, say) goes the plain way."""
        head = self.lm_head
        if type(head) is nn.Linear and head.bias is None:
            return linear_cross_entropy(hidden, head.weight, targets, reduction=reduction)
        logits = head(hidden)  # (B, T, V)
        flat = logits.reshape(-1, logits.shape[-1]).float()  # (B*T, V)
        return F.cross_entropy(
            flat, targets.reshape(-1), ignore_index=IGNORE_INDEX, reduction=reduction
        )

    def _cached_blocks(self) -> nn.ModuleList:
        return self.blocks

    def _start_generation(
        self,
        input_ids: torch.Tensor,
        max_new_tokens: int,
        *,
        attention_mask: torch.Tensor | None = None,
    ) -> GenerationStart:
        """Run the (left-padded) prompt through a new cache; return the first step."""
        self._check_ids(input_ids, "input_ids")
        B, T = input_ids.shape
        total = T + max_new_tokens
        if total > self.config.max_seq_len:
            raise ValueError(
                f"prompt length {T} + max_new_tokens {max_new_tokens} = {total} exceeds "
                f"max_seq_len {self.config.max_seq_len}"
            )
        mask = self._check_mask(attention_mask, input_ids, "attention_mask")
        if mask is not None:
            check_left_padded(mask, "attention_mask")
        cache = self.new_cache(B, total)
        out = input_ids.new_empty(B, total)  # (B, T + max_new_tokens)
        out[:, :T] = input_ids

        def step(token: torch.Tensor) -> torch.Tensor:
            return self(token, cache=cache, last_only=True)[:, -1]  # (B, V)

        logits = self(input_ids, attention_mask=mask, cache=cache, last_only=True)[:, -1]
        return out, T, logits, step
