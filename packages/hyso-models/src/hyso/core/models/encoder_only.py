"""Encoder-only model with a per-token (masked-LM) head (BERT style).

token embedding -> N blocks (bidirectional self-attention, MLP) -> final norm
-> LM head over every position. BERT's layout is chosen by config: token types,
learned positions, an embedding norm, post-norm blocks, and a head transform
(dense, GELU, norm) before an output head with a bias.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .base import HysoModel
from .config import EncoderOnlyConfig
from .layers import GELU_APPROXIMATIONS, build_norm
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

    def _build_head(self) -> None:
        """The output head; with ``head_transform``, BERT's dense + GELU + norm before it."""
        c = self.config
        self.head_transform: nn.Module = nn.Identity()
        if c.head_transform:
            approximate = GELU_APPROXIMATIONS.get(c.mlp, "none")
            self.head_transform = nn.Sequential(
                nn.Linear(c.dim, c.dim),
                nn.GELU(approximate=approximate),
                build_norm(c.norm, c.dim, c.norm_eps, c.bias),
            )
        self.lm_head = nn.Linear(c.dim, c.vocab_size, bias=c.head_transform)

    def encode(
        self,
        input_ids: torch.Tensor,
        *,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Final hidden states ``(B, T, C)`` (normalised); padding keys are ignored.

        ``token_type_ids`` (like ``input_ids``; default all 0) need ``type_vocab_size``.
        """
        self._check_ids(input_ids, "input_ids")
        mask = self._check_mask(attention_mask, input_ids, "attention_mask")
        attn_mask = None if mask is None else padding_mask(mask, input_ids.shape[1])
        if token_type_ids is not None:
            self._check_types(token_type_ids, input_ids)
        body = self._body_fn("_body", None)
        return self._guard_ids({"input_ids": input_ids}, body, input_ids, attn_mask, token_type_ids)

    def forward(
        self,
        input_ids: torch.Tensor,
        *,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Per-token logits ``(B, T, V)``."""
        x = self.encode(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        return self.lm_head(self.head_transform(x))

    def _check_types(self, types: torch.Tensor, ids: torch.Tensor) -> None:
        count = self.config.type_vocab_size
        if not count:
            raise ValueError("token_type_ids given, but the model has type_vocab_size 0")
        if not isinstance(types, torch.Tensor) or tuple(types.shape) != tuple(ids.shape):
            raise ValueError(
                f"token_type_ids must be a tensor shaped like input_ids {tuple(ids.shape)}"
            )
        low, high = (int(v) for v in torch.aminmax(types))
        if low < 0 or high >= count:
            raise ValueError(f"token_type_ids: a type id is out of range [0, {count})")

    def _body(
        self,
        input_ids: torch.Tensor,
        attn_mask: torch.Tensor | None,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The encoder itself, on checked inputs (what ``compile=True`` compiles)."""
        x = self._run_blocks(
            input_ids,
            self.blocks,
            attn_mask=attn_mask,
            is_causal=False,
            token_type_ids=token_type_ids,
        )
        return self.norm(x)
