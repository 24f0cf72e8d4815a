"""Decoder-only causal language model (GPT/Llama style).

token embedding -> N pre-norm blocks (causal self-attention with RoPE, MLP) ->
final norm -> LM head (tied to the embedding by default).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .base import HysoModel
from .config import DecoderOnlyConfig
from .generation import GenerationArgs, check_left_padded, decode_loop
from .layers import KVCache
from .masks import causal_mask

__all__ = ["DecoderOnlyConfig", "HysoDecoderOnly"]


class HysoDecoderOnly(HysoModel):
    """A causal LM: ``forward(input_ids, attention_mask=None) -> logits (B, T, V)``."""

    config_class = DecoderOnlyConfig
    is_encoder_decoder = False
    config: DecoderOnlyConfig

    def __init__(self, config: DecoderOnlyConfig | None = None, **kwargs) -> None:
        super().__init__(config, **kwargs)
        self._build_single_stack()

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Logits ``(B, T, V)``; position ``t`` sees tokens ``0 .. t`` that are not padding."""
        self._check_ids(input_ids, "input_ids")
        mask = self._check_mask(attention_mask, input_ids, "attention_mask")
        attn_mask = None if mask is None else causal_mask(mask, input_ids.shape[1])
        return self._body(input_ids, attn_mask)

    def _body(self, input_ids: torch.Tensor, attn_mask: torch.Tensor | None) -> torch.Tensor:
        """The network itself, on checked inputs (what ``compile=True`` compiles)."""
        x = self.emb_dropout(self.tok_emb(input_ids))  # (B, T, C)
        for block in self.blocks:
            x = block(x, self.rope, attn_mask, is_causal=attn_mask is None)
        return self.lm_head(self.norm(x))  # (B, T, V)

    def new_kv_caches(self, batch_size: int, max_len: int) -> list[KVCache]:
        """One preallocated cache per block, for ``max_len`` positions."""
        c, weight = self.config, self.tok_emb.weight
        return [
            KVCache(
                batch_size,
                c.num_kv_heads,
                max_len,
                c.head_dim,
                dtype=weight.dtype,
                device=weight.device,
            )
            for _ in self.blocks
        ]

    def forward_cached(
        self,
        ids: torch.Tensor,
        caches: list[KVCache],
        offset: int,
        attn_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits ``(B, V)`` of the last of ``ids (B, T)``, which sit at positions ``offset ..``.

        Keys and values are appended to ``caches``. Without ``attn_mask`` the
        queries see every cached position before them (causal).
        """
        T = ids.shape[1]
        is_causal = attn_mask is None and T > 1 and offset == 0
        if attn_mask is None and T > 1 and offset > 0:
            attn_mask = causal_mask(None, T, offset, device=ids.device)
        x = self.tok_emb(ids)  # (B, T, C)
        for block, cache in zip(self.blocks, caches):
            x = block(x, self.rope, attn_mask, is_causal, cache, offset)
        return self.lm_head(self.norm(x[:, -1]))  # (B, V)

    @torch.inference_mode()
    def generate(
        self,
        input_ids: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        eos_token_id: int | Sequence[int] | None = None,
        do_sample: bool = False,
        generator: torch.Generator | None = None,
        attention_mask: torch.Tensor | None = None,
        pad_token_id: int | None = None,
        return_logits: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Continue ``input_ids (B, T)`` by up to ``max_new_tokens`` tokens with a KV cache.

        Greedy unless ``do_sample`` (then ``temperature``, ``top_k``, ``top_p`` apply).
        Batched prompts are left-padded, with ``attention_mask`` 0 on the padding.
        A row that emits ``eos_token_id`` stops; its later slots hold ``pad_token_id``
        (default: the EOS id). Returns ``(B, T + n)`` ids, prompt included, and with
        ``return_logits`` also the logits ``(B, n, V)`` each new token came from.
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
        self._check_ids(input_ids, "input_ids")
        B, T = input_ids.shape
        total = T + max_new_tokens
        if total > self.config.max_seq_len:
            raise ValueError(
                f"prompt length {T} + max_new_tokens {max_new_tokens} = {total} exceeds "
                f"max_seq_len {self.config.max_seq_len}"
            )
        mask = self._check_mask(attention_mask, input_ids, "attention_mask")
        was_training = self.training
        self.eval()
        try:
            caches = self.new_kv_caches(B, total)
            out = input_ids.new_empty(B, total)  # (B, T + max_new_tokens)
            out[:, :T] = input_ids
            if mask is None:
                step = self._plain_step(caches)
                logits = self.forward_cached(input_ids, caches, 0)
            else:
                check_left_padded(mask, "attention_mask")
                key_valid = torch.ones(B, total, dtype=torch.bool, device=input_ids.device)
                key_valid[:, :T] = mask
                step = self._padded_step(caches, key_valid)
                logits = self.forward_cached(input_ids, caches, 0, causal_mask(mask, T))
            tokens, scores = decode_loop(step, logits, out, T, args, return_logits)
        finally:
            self.train(was_training)
        return (tokens, scores) if return_logits else tokens

    def _plain_step(self, caches: list[KVCache]):
        def step(token: torch.Tensor, pos: int) -> torch.Tensor:
            return self.forward_cached(token, caches, pos)

        return step

    def _padded_step(self, caches: list[KVCache], key_valid: torch.Tensor):
        def step(token: torch.Tensor, pos: int) -> torch.Tensor:
            mask = key_valid[:, None, None, : pos + 1]  # (B, 1, 1, S)
            return self.forward_cached(token, caches, pos, mask)

        return step
