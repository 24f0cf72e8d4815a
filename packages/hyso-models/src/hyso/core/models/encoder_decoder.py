"""Encoder-decoder transformer (T5 style), one embedding shared by both sides.

encoder: embedding -> N bidirectional blocks -> norm = memory
decoder: embedding -> M blocks (causal self-attention, cross-attention to memory,
MLP) -> norm -> LM head. RoPE in self-attention; cross-attention has no positions.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .base import HysoModel, make_blocks
from .cache import Cache
from .config import EncoderDecoderConfig
from .generation import GenerationMixin, GenerationStart
from .layers import build_norm, build_position_encoding
from .masks import causal_attention, padding_mask
from .registry import register_family

__all__ = ["EncoderDecoderConfig", "HysoEncoderDecoder"]


@register_family
class HysoEncoderDecoder(GenerationMixin, HysoModel):
    """``forward(src_ids, tgt_ids, *, src_mask=None, tgt_mask=None) -> logits (B, T_tgt, V)``.

    Targets are fed as-is (teacher forcing): logits at position ``t`` predict
    ``tgt_ids[:, t + 1]``, so a caller shifts the labels (or starts targets with
    ``decoder_start_token_id``).
    """

    config_class = EncoderDecoderConfig
    is_encoder_decoder = True
    _compiled_methods = ("_encoder_body", "_decoder_body")
    config: EncoderDecoderConfig

    def __init__(self, config: EncoderDecoderConfig | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        c = self.config
        self.tok_emb = nn.Embedding(c.vocab_size, c.dim)
        self.emb_dropout = nn.Dropout(c.dropout)
        self.pos_encoding = build_position_encoding(c)
        self.encoder_blocks = make_blocks(c, c.num_layers, self.pos_encoding)
        self.encoder_norm = build_norm(c.norm, c.dim, c.norm_eps, c.bias)
        # The decoder's own encoding (a relative bias has a table per stack, looking back only).
        self.decoder_pos_encoding = build_position_encoding(c).causal()
        self.decoder_blocks = make_blocks(
            c, c.num_decoder_layers, self.decoder_pos_encoding, cross_attention=True
        )
        self.decoder_norm = build_norm(c.norm, c.dim, c.norm_eps, c.bias)
        self.lm_head = nn.Linear(c.dim, c.vocab_size, bias=False)
        self._finish_init(c.num_layers + c.num_decoder_layers)

    def encode(
        self, src_ids: torch.Tensor, *, src_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Encoder memory ``(B, S, C)``."""
        self._check_ids(src_ids, "src_ids")
        mask = self._check_mask(src_mask, src_ids, "src_mask")
        attn_mask = None if mask is None else padding_mask(mask, src_ids.shape[1])
        body = self._body_fn("_encoder_body", None)
        return self._guard_ids({"src_ids": src_ids}, body, src_ids, attn_mask)

    def _encoder_body(self, src_ids: torch.Tensor, attn_mask: torch.Tensor | None):
        x = self._run_blocks(src_ids, self.encoder_blocks, attn_mask=attn_mask, is_causal=False)
        return self.encoder_norm(x)

    def decode(
        self,
        tgt_ids: torch.Tensor,
        memory: torch.Tensor,
        *,
        src_mask: torch.Tensor | None = None,
        tgt_mask: torch.Tensor | None = None,
        cache: Cache | None = None,
        last_only: bool = False,
    ) -> torch.Tensor:
        """Decoder logits ``(B, T, V)`` for ``tgt_ids`` attending to ``memory (B, S, C)``.

        ``cache`` and ``last_only`` work as in :meth:`HysoDecoderOnly.forward`; the
        cache also keeps the memory's projected keys and values after the first call.
        """
        self._check_ids(tgt_ids, "tgt_ids")
        self._check_memory(memory, tgt_ids)
        memory_mask = self._memory_mask(src_mask, memory)
        mask = self._check_mask(tgt_mask, tgt_ids, "tgt_mask")
        T, offset = tgt_ids.shape[1], 0
        if cache is not None:
            offset = cache.length
            mask = cache.track_padding(mask, T)
        attn_mask, is_causal = causal_attention(mask, T, offset, device=tgt_ids.device)
        body = self._body_fn("_decoder_body", cache)
        args = (tgt_ids, memory, attn_mask, is_causal, memory_mask, cache, last_only)
        return self._guard_ids({"tgt_ids": tgt_ids}, body, *args)

    def _decoder_body(
        self,
        tgt_ids: torch.Tensor,
        memory: torch.Tensor,
        attn_mask: torch.Tensor | None,
        is_causal: bool,
        memory_mask: torch.Tensor | None,
        cache: Cache | None = None,
        last_only: bool = False,
    ) -> torch.Tensor:
        x = self._run_blocks(
            tgt_ids,
            self.decoder_blocks,
            pos_encoding=self.decoder_pos_encoding,
            attn_mask=attn_mask,
            is_causal=is_causal,
            cache=cache,
            memory=memory,
            memory_mask=memory_mask,
        )
        if last_only:
            x = x[:, -1:]  # (B, 1, C)
        x = self.decoder_norm(x)
        if self.config.logit_scale != 1.0:
            x = x * self.config.logit_scale
        return self.lm_head(x)  # (B, T, V)

    def forward(
        self,
        src_ids: torch.Tensor,
        tgt_ids: torch.Tensor,
        *,
        src_mask: torch.Tensor | None = None,
        tgt_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``decode(tgt_ids, encode(src_ids, src_mask), src_mask, tgt_mask)``."""
        memory = self.encode(src_ids, src_mask=src_mask)
        return self.decode(tgt_ids, memory, src_mask=src_mask, tgt_mask=tgt_mask)

    def _cached_blocks(self) -> nn.ModuleList:
        return self.decoder_blocks

    def _start_generation(
        self,
        input_ids: torch.Tensor,
        max_new_tokens: int,
        *,
        src_mask: torch.Tensor | None = None,
        decoder_start_token_id: int | None = None,
    ) -> GenerationStart:
        """Encode the source ``input_ids (B, S)``; targets start with the start token."""
        start_id = self.config.decoder_start_token_id
        if decoder_start_token_id is not None:
            start_id = decoder_start_token_id
        if not 0 <= start_id < self.config.vocab_size:
            raise ValueError(
                f"decoder_start_token_id {start_id} is out of range for vocab_size "
                f"{self.config.vocab_size}"
            )
        total = 1 + max_new_tokens
        if total > self.config.max_seq_len:
            raise ValueError(
                f"1 start token + max_new_tokens {max_new_tokens} = {total} exceeds "
                f"max_seq_len {self.config.max_seq_len}"
            )
        memory = self.encode(input_ids, src_mask=src_mask)
        B = input_ids.shape[0]
        cache = self.new_cache(B, total)
        out = input_ids.new_empty(B, total)  # (B, 1 + max_new_tokens)
        out[:, 0] = start_id

        def step(token: torch.Tensor) -> torch.Tensor:
            logits = self.decode(token, memory, src_mask=src_mask, cache=cache, last_only=True)
            return logits[:, -1]  # (B, V)

        return out, 1, step(out[:, :1]), step

    def _check_memory(self, memory: torch.Tensor, tgt_ids: torch.Tensor) -> None:
        if not isinstance(memory, torch.Tensor) or memory.ndim != 3:
            raise ValueError("memory must be a (batch, src_len, dim) tensor from encode()")
        if memory.shape[0] != tgt_ids.shape[0] or memory.shape[2] != self.config.dim:
            raise ValueError(
                f"memory has shape {tuple(memory.shape)}; expected "
                f"({tgt_ids.shape[0]}, src_len, {self.config.dim})"
            )

    def _memory_mask(
        self, src_mask: torch.Tensor | None, memory: torch.Tensor
    ) -> torch.Tensor | None:
        if src_mask is None:
            return None
        if tuple(src_mask.shape) != tuple(memory.shape[:2]):
            raise ValueError(
                f"src_mask has shape {tuple(src_mask.shape)}, expected {tuple(memory.shape[:2])}"
            )
        if bool(src_mask.bool().all()):
            return None
        return padding_mask(src_mask)  # (B, 1, 1, S)
