"""Encoder-only model with a per-token (masked-LM) head (BERT style).

token embedding -> N pre-norm blocks (bidirectional self-attention with RoPE,
MLP) -> final norm -> LM head over every position.
"""

from __future__ import annotations

import torch

from .base import HysoModel
from .config import EncoderOnlyConfig
from .masks import padding_mask

__all__ = ["EncoderOnlyConfig", "HysoEncoderOnly"]


class HysoEncoderOnly(HysoModel):
    """A bidirectional encoder: ``forward(input_ids, attention_mask=None) -> logits (B, T, V)``."""

    config_class = EncoderOnlyConfig
    is_encoder_decoder = False
    config: EncoderOnlyConfig

    def __init__(self, config: EncoderOnlyConfig | None = None, **kwargs) -> None:
        super().__init__(config, **kwargs)
        self._build_single_stack()

    def encode(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Final hidden states ``(B, T, C)`` (normalised); padding keys are ignored."""
        self._check_ids(input_ids, "input_ids")
        mask = self._check_mask(attention_mask, input_ids, "attention_mask")
        attn_mask = None if mask is None else padding_mask(mask, input_ids.shape[1])
        return self._body(input_ids, attn_mask)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Per-token logits ``(B, T, V)``."""
        return self.lm_head(self.encode(input_ids, attention_mask))

    def _body(self, input_ids: torch.Tensor, attn_mask: torch.Tensor | None) -> torch.Tensor:
        """The encoder itself, on checked inputs (what ``compile=True`` compiles)."""
        x = self.emb_dropout(self.tok_emb(input_ids))  # (B, T, C)
        for block in self.blocks:
            x = block(x, self.rope, attn_mask)
        return self.norm(x)
