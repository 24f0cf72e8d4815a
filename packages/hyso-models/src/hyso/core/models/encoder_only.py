"""Encoder-only model with a per-token (masked-LM) head (BERT style).

token embedding -> N pre-norm blocks (bidirectional self-attention with RoPE,
MLP) -> final norm -> LM head over every position.
"""

from __future__ import annotations

from typing import Any

import torch

from .base import HysoModel
from .config import EncoderOnlyConfig
from .masks import padding_mask
from .registry import register_family

__all__ = ["EncoderOnlyConfig", "HysoEncoderOnly"]


@register_family
class HysoEncoderOnly(HysoModel):
    """A bidirectional encoder: ``forward(input_ids, *, attention_mask=None) -> logits``."""

    config_class = EncoderOnlyConfig
    is_encoder_decoder = False
    config: EncoderOnlyConfig

    def __init__(self, config: EncoderOnlyConfig | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self._build_single_stack()

    def encode(
        self, input_ids: torch.Tensor, *, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Final hidden states ``(B, T, C)`` (normalised); padding keys are ignored."""
        self._check_ids(input_ids, "input_ids")
        mask = self._check_mask(attention_mask, input_ids, "attention_mask")
        attn_mask = None if mask is None else padding_mask(mask, input_ids.shape[1])
        body = self._body_fn("_body", None)
        return self._guard_ids({"input_ids": input_ids}, body, input_ids, attn_mask)

    def forward(
        self, input_ids: torch.Tensor, *, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Per-token logits ``(B, T, V)``."""
        return self.lm_head(self.encode(input_ids, attention_mask=attention_mask))

    def _body(self, input_ids: torch.Tensor, attn_mask: torch.Tensor | None) -> torch.Tensor:
        """The encoder itself, on checked inputs (what ``compile=True`` compiles)."""
        x = self._run_blocks(input_ids, self.blocks, attn_mask=attn_mask, is_causal=False)
        return self.norm(x)
