"""Encoder-decoder transformer (T5 style), one embedding shared by both sides.

encoder: embedding -> N bidirectional blocks -> norm = memory
decoder: embedding -> M blocks (causal self-attention, cross-attention to memory,
MLP) -> norm -> LM head. RoPE in self-attention; cross-attention has no positions.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .base import HysoModel, make_blocks
from .config import EncoderDecoderConfig
from .generation import GenerationArgs, decode_loop
from .layers import KVCache, RotaryEmbedding, build_norm
from .masks import causal_mask, padding_mask

__all__ = ["EncoderDecoderConfig", "HysoEncoderDecoder"]

MemoryKV = list[tuple[torch.Tensor, torch.Tensor]]


class HysoEncoderDecoder(HysoModel):
    """``forward(src_ids, tgt_ids, src_mask=None, tgt_mask=None) -> logits (B, T_tgt, V)``.

    Targets are fed as-is (teacher forcing): logits at position ``t`` predict
    ``tgt_ids[:, t + 1]``, so a caller shifts the labels (or starts targets with
    ``decoder_start_token_id``).
    """

    config_class = EncoderDecoderConfig
    is_encoder_decoder = True
    _compiled_methods = ("_encoder_body", "_decoder_body")
    config: EncoderDecoderConfig

    def __init__(self, config: EncoderDecoderConfig | None = None, **kwargs) -> None:
        super().__init__(config, **kwargs)
        c = self.config
        self.tok_emb = nn.Embedding(c.vocab_size, c.dim)
        self.emb_dropout = nn.Dropout(c.dropout)
        self.rope = RotaryEmbedding(c.head_dim, c.max_seq_len, c.rope_base)
        self.encoder_blocks = make_blocks(c, c.num_layers)
        self.encoder_norm = build_norm(c.norm, c.dim, c.norm_eps, c.bias)
        self.decoder_blocks = make_blocks(c, c.num_decoder_layers, cross_attention=True)
        self.decoder_norm = build_norm(c.norm, c.dim, c.norm_eps, c.bias)
        self.lm_head = nn.Linear(c.dim, c.vocab_size, bias=False)
        self._finish_init(c.num_layers + c.num_decoder_layers)

    def encode(self, src_ids: torch.Tensor, src_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Encoder memory ``(B, S, C)``."""
        self._check_ids(src_ids, "src_ids")
        mask = self._check_mask(src_mask, src_ids, "src_mask")
        attn_mask = None if mask is None else padding_mask(mask, src_ids.shape[1])
        return self._encoder_body(src_ids, attn_mask)

    def _encoder_body(self, src_ids: torch.Tensor, attn_mask: torch.Tensor | None):
        x = self.emb_dropout(self.tok_emb(src_ids))  # (B, S, C)
        for block in self.encoder_blocks:
            x = block(x, self.rope, attn_mask)
        return self.encoder_norm(x)

    def decode(
        self,
        tgt_ids: torch.Tensor,
        memory: torch.Tensor,
        src_mask: torch.Tensor | None = None,
        tgt_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Decoder logits ``(B, T, V)`` for ``tgt_ids`` attending to ``memory (B, S, C)``."""
        self._check_ids(tgt_ids, "tgt_ids")
        self._check_memory(memory, tgt_ids)
        memory_mask = self._memory_mask(src_mask, memory)
        mask = self._check_mask(tgt_mask, tgt_ids, "tgt_mask")
        attn_mask = None if mask is None else causal_mask(mask, tgt_ids.shape[1])
        return self._decoder_body(tgt_ids, memory, attn_mask, memory_mask)

    def _decoder_body(
        self,
        tgt_ids: torch.Tensor,
        memory: torch.Tensor,
        attn_mask: torch.Tensor | None,
        memory_mask: torch.Tensor | None,
    ) -> torch.Tensor:
        x = self.emb_dropout(self.tok_emb(tgt_ids))  # (B, T, C)
        for block in self.decoder_blocks:
            memory_kv = block.cross.project_memory(memory)
            x = block(x, self.rope, attn_mask, attn_mask is None, None, 0, memory_kv, memory_mask)
        return self.lm_head(self.decoder_norm(x))  # (B, T, V)

    def forward(
        self,
        src_ids: torch.Tensor,
        tgt_ids: torch.Tensor,
        src_mask: torch.Tensor | None = None,
        tgt_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``decode(tgt_ids, encode(src_ids, src_mask), src_mask, tgt_mask)``."""
        return self.decode(tgt_ids, self.encode(src_ids, src_mask), src_mask, tgt_mask)

    @torch.inference_mode()
    def generate(
        self,
        src_ids: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        eos_token_id: int | Sequence[int] | None = None,
        do_sample: bool = False,
        generator: torch.Generator | None = None,
        src_mask: torch.Tensor | None = None,
        decoder_start_token_id: int | None = None,
        pad_token_id: int | None = None,
        return_logits: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Decode up to ``max_new_tokens`` targets for ``src_ids (B, S)`` with a KV cache.

        Every target starts with ``decoder_start_token_id`` (default from the
        config); the result ``(B, 1 + n)`` includes it. Sampling and EOS work as
        in :meth:`HysoDecoderOnly.generate`; ``src_mask`` marks source padding.
        """
        args = GenerationArgs(
            max_new_tokens,
            temperature,
            top_k,
            top_p,
            eos_token_id,
            do_sample,
            generator,
            pad_token_id,
        )
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
        was_training = self.training
        self.eval()
        try:
            memory = self.encode(src_ids, src_mask)
            memory_mask = self._memory_mask(src_mask, memory)
            memory_kv = [block.cross.project_memory(memory) for block in self.decoder_blocks]
            B = src_ids.shape[0]
            c, weight = self.config, self.tok_emb.weight
            caches = [
                KVCache(
                    B, c.num_kv_heads, total, c.head_dim, dtype=weight.dtype, device=weight.device
                )
                for _ in self.decoder_blocks
            ]
            out = src_ids.new_empty(B, total)  # (B, 1 + max_new_tokens)
            out[:, 0] = start_id

            def step(token: torch.Tensor, pos: int) -> torch.Tensor:
                return self._decode_cached(token, caches, pos, memory_kv, memory_mask)

            logits = step(out[:, :1], 0)
            tokens, scores = decode_loop(step, logits, out, 1, args, return_logits)
        finally:
            self.train(was_training)
        return (tokens, scores) if return_logits else tokens

    def _decode_cached(
        self,
        token: torch.Tensor,
        caches: list[KVCache],
        pos: int,
        memory_kv: MemoryKV,
        memory_mask: torch.Tensor | None,
    ) -> torch.Tensor:
        """Logits ``(B, V)`` for one target token ``(B, 1)`` at position ``pos``."""
        x = self.tok_emb(token)  # (B, 1, C)
        for block, cache, kv in zip(self.decoder_blocks, caches, memory_kv):
            x = block(x, self.rope, None, False, cache, pos, kv, memory_mask)
        return self.lm_head(self.decoder_norm(x[:, -1]))  # (B, V)

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
