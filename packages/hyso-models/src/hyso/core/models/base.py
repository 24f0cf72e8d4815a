"""What every model family shares: config handling, input checks, init, save/load,
and the loop over a stack of blocks."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from .config import TransformerConfig
from .layers import (
    PositionEncoding,
    block_class,
    build_norm,
    build_position_encoding,
    drop_path_rates,
)
from .pretrained import load_pretrained, save_pretrained
from .registry import hf_exporter

if TYPE_CHECKING:
    from .cache import Cache

__all__ = ["HysoModel", "make_blocks"]

M = TypeVar("M", bound="HysoModel")
# Output projections of residual branches get a smaller init (GPT-2: std / sqrt(2 * depth)).
RESIDUAL_PROJECTIONS = ("attn.out.weight", "cross.out.weight", "mlp.down.weight")


class HysoModel(nn.Module):
    """Base of the three families. Subclasses set ``config_class`` and build their layers.

    Construct from keywords (``HysoDecoderOnly(dim=256, num_layers=4, vocab_size=8192)``),
    from a config (dataclass or mapping), or both (keywords win). ``compile=True`` (or
    :meth:`compile` later) compiles the network with ``torch.compile`` (opt-in; the first
    call is slow).
    """

    config_class: ClassVar[type[TransformerConfig]] = TransformerConfig
    is_encoder_decoder: ClassVar[bool] = False
    _compiled_methods: ClassVar[tuple[str, ...]] = ("_body",)

    def __init__(
        self,
        config: TransformerConfig | Mapping[str, Any] | None = None,
        *,
        compile: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        if config is None:
            config = self.config_class.from_dict(kwargs)
        elif kwargs or not isinstance(config, self.config_class):
            config = self.config_class.from_dict(config, **kwargs)
        self.config = config
        self._compile = compile

    @property
    def family(self) -> str:
        """``decoder_only``, ``encoder_only`` or ``encoder_decoder``."""
        return self.config_class.family

    @property
    def max_seq_len(self) -> int:
        """Longest sequence (prompt plus generated tokens) the model accepts."""
        return self.config.max_seq_len

    @property
    def vocab_size(self) -> int:
        """Number of token ids; valid ids are ``0 .. vocab_size - 1``."""
        return self.config.vocab_size

    @classmethod
    def from_config(cls: type[M], config: Any, **overrides: Any) -> M:
        """Build from a config dataclass, a mapping (``layers`` means ``num_layers``) or
        any object with ``to_dict()``; ``overrides`` win. Unknown keys are an error."""
        return cls(cls.config_class.from_dict(config, **overrides))

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Number of parameters, tied weights counted once."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def save_pretrained(self, directory: str | os.PathLike[str]) -> os.PathLike[str]:
        """Write ``config.json`` and ``model.safetensors`` to ``directory``."""
        return save_pretrained(self, directory)

    @classmethod
    def from_pretrained(
        cls: type[M], directory: str | os.PathLike[str], map_location: str | torch.device = "cpu"
    ) -> M:
        """Load a folder written by ``save_pretrained``; the weights come back bit-identical."""
        return load_pretrained(directory, cls, map_location)  # type: ignore[return-value]

    def to_hf(self, directory: str | os.PathLike[str], **kwargs: Any) -> os.PathLike[str]:
        """Write a Hugging Face folder transformers loads (see ``hyso.core.models.hf.to_hf``)."""
        return hf_exporter()(self, directory, **kwargs)

    # -- helpers for subclasses -------------------------------------------------------

    def _build_single_stack(self) -> None:
        """Token embedding (+ token types, + norm when configured), positional encoding,
        ``num_layers`` blocks, final norm (none after post-norm blocks), head, then init.

        The layout the decoder-only and encoder-only models share; they differ only in
        the attention mask their ``forward`` builds.
        """
        c = self.config
        self.tok_emb = nn.Embedding(c.vocab_size, c.dim)
        types = getattr(c, "type_vocab_size", 0)
        self.type_emb = nn.Embedding(types, c.dim) if types else None
        self.emb_dropout = nn.Dropout(c.dropout)
        self.pos_encoding = build_position_encoding(c)
        self.embed_norm = build_norm(c.norm, c.dim, c.norm_eps, c.bias) if c.embed_norm else None
        self.blocks = make_blocks(c, c.num_layers, self.pos_encoding)
        post_norm = c.block == "post_norm"
        self.norm = nn.Identity() if post_norm else build_norm(c.norm, c.dim, c.norm_eps, c.bias)
        self._build_head()
        self._finish_init(c.num_layers)

    def _build_head(self) -> None:
        """The output head: a bias-free projection to the vocabulary."""
        self.lm_head = nn.Linear(self.config.dim, self.config.vocab_size, bias=False)

    def _run_blocks(
        self,
        ids: torch.Tensor,
        blocks: nn.ModuleList,
        *,
        attn_mask: torch.Tensor | None,
        is_causal: bool,
        cache: Cache | None = None,
        memory: torch.Tensor | None = None,
        memory_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        pos_encoding: PositionEncoding | None = None,
        positions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Embed ``ids (B, T)`` (positions after the cached ones, or ``positions (B, T)``
        for left-padded rows) and run ``blocks`` (whose encoding is ``pos_encoding``, by
        default the model's)."""
        offset = 0 if cache is None else cache.length
        x = self.tok_emb(ids)  # (B, T, C)
        type_emb = getattr(self, "type_emb", None)
        if type_emb is not None:  # no ids: every token is of type 0
            x = x + (type_emb.weight[0] if token_type_ids is None else type_emb(token_type_ids))
        encoding = pos_encoding or self.pos_encoding
        if positions is None:
            x = encoding.embed(x, offset)
        else:
            x = encoding.embed(x, offset, positions=positions)
        embed_norm = getattr(self, "embed_norm", None)
        if embed_norm is not None:
            x = embed_norm(x)
        if self.training:  # dropout and drop-path are the identity in eval mode
            x = self.emb_dropout(x)
        if self._checkpointing(cache):
            for block in blocks:
                # Non-reentrant: keeps only the block's input, recomputes the rest in
                # backward with the same RNG state (dropout draws the same masks).
                x = checkpoint(
                    block,
                    x,
                    use_reentrant=False,
                    attn_mask=attn_mask,
                    is_causal=is_causal,
                    memory=memory,
                    memory_mask=memory_mask,
                )
            return x
        for i, block in enumerate(blocks):
            x = block(
                x,
                attn_mask=attn_mask,
                is_causal=is_causal,
                cache=None if cache is None else cache.layers[i],
                memory=memory,
                memory_mask=memory_mask,
            )
        return x

    def _checkpointing(self, cache: Cache | None) -> bool:
        """Whether blocks recompute in backward: asked for, training, grad on, no cache."""
        return (
            self.config.activation_checkpointing
            and self.training
            and cache is None
            and torch.is_grad_enabled()
        )

    def _body_fn(self, name: str, cache: Cache | None) -> Callable[..., torch.Tensor]:
        """The method ``name``, or its compiled version (``compile=True``).

        Calls with a cache use a version compiled with dynamic shapes: the cache length
        and the positions change every decoding step.
        """
        compiled = (self._compiled if cache is None else self._compiled_cached).get(name)
        return compiled or getattr(self, name)

    def _finish_init(self, num_layers: int) -> None:
        """Initialise weights, tie the output head, compile if asked. Call last in __init__."""
        std = self.config.init_std
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, mean=0.0, std=std)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, mean=0.0, std=std)
        for name, param in self.named_parameters():
            if name.endswith(RESIDUAL_PROJECTIONS):
                nn.init.normal_(param, mean=0.0, std=std / math.sqrt(2 * num_layers))
        if self.config.tie_embeddings:
            self.lm_head.weight = self.tok_emb.weight
        self._compiled: dict[str, Callable[..., torch.Tensor]] = {}
        self._compiled_cached: dict[str, Callable[..., torch.Tensor]] = {}
        if self._compile:
            self.compile()

    def compile(self, *args: Any, **kwargs: Any) -> None:
        """Compile the model in place with ``torch.compile(..., *args, **kwargs)``.

        Like ``nn.Module.compile`` (the state dict keeps its keys), but only the network
        bodies are compiled: the input checks stay eager (no graph breaks). Cached
        decoding gets its own version with ``dynamic=True``, so the growing cache does not
        recompile every step. Compiling happens at the first call of each.
        """
        self._compile = True
        self._compiled = {
            name: torch.compile(getattr(self, name), *args, **kwargs)
            for name in self._compiled_methods
        }
        cached = {**kwargs, "dynamic": True}
        self._compiled_cached = {
            name: torch.compile(getattr(self, name), *args, **cached)
            for name in self._compiled_methods
        }

    def _check_ids(self, ids: Any, name: str, max_len: int | None = None) -> torch.Tensor:
        """``ids`` must be an integer ``(B, T)`` tensor with ``0 < T <= max_len``.

        Only the shape and dtype are checked here: reading the values would make the
        host wait for the device on every call. Out-of-range ids are caught by
        :meth:`_guard_ids` instead.
        """
        if not isinstance(ids, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(ids).__name__}")
        if ids.dtype.is_floating_point or ids.dtype.is_complex or ids.dtype == torch.bool:
            raise ValueError(f"{name} must hold integer token ids, got dtype {ids.dtype}")
        if ids.ndim != 2:
            raise ValueError(f"{name} must have shape (batch, seq_len), got {tuple(ids.shape)}")
        limit = self.config.max_seq_len if max_len is None else max_len
        if ids.shape[1] > limit:
            raise ValueError(f"{name}: sequence length {ids.shape[1]} exceeds max_seq_len {limit}")
        if ids.shape[1] == 0 or ids.shape[0] == 0:
            raise ValueError(f"{name} is empty: shape {tuple(ids.shape)}")
        return ids

    def _guard_ids(
        self, ids: Mapping[str, torch.Tensor], body: Callable[..., torch.Tensor], *args: Any
    ) -> torch.Tensor:
        """``body(*args)``, with an out-of-range id among ``ids`` (by argument name)
        reported as a ``ValueError`` naming the argument, the id and the vocab size.

        Nothing is checked up front on the CPU: the embedding lookup itself raises
        an ``IndexError`` on a bad id, and only then are the ids searched. On other
        devices a bad id would stop the lookup kernel with a bare device assert, so
        an asynchronous device-side assert with the same message runs first; it
        does not make the host wait, and it fails at the next synchronisation.
        """
        vocab = self.config.vocab_size
        for name, t in ids.items():
            if t.device.type != "cpu":
                low, high = torch.aminmax(t)
                torch._assert_async(
                    (low >= 0) & (high < vocab), f"{name}: a token id is out of range [0, {vocab})"
                )
        try:
            return body(*args)
        except (IndexError, RuntimeError) as exc:
            for name, t in ids.items():
                low, high = (int(v) for v in torch.aminmax(t))
                if low < 0 or high >= vocab:
                    bad = high if high >= vocab else low
                    raise ValueError(
                        f"{name}: token id {bad} is out of range for vocab_size {vocab}"
                    ) from exc
            raise

    def _check_mask(self, mask: Any, ids: torch.Tensor, name: str) -> torch.Tensor | None:
        """A 1/0 padding mask shaped like ``ids``; ``None`` when it masks nothing."""
        if mask is None:
            return None
        if not isinstance(mask, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(mask).__name__}")
        if tuple(mask.shape) != tuple(ids.shape):
            raise ValueError(
                f"{name} has shape {tuple(mask.shape)}, expected {tuple(ids.shape)} like the ids"
            )
        mask = mask.bool()
        return None if bool(mask.all()) else mask


def make_blocks(
    config: TransformerConfig,
    num_layers: int,
    pos_encoding: PositionEncoding | None,
    *,
    cross_attention: bool = False,
) -> nn.ModuleList:
    """``num_layers`` blocks of the kind ``config.block`` names, sharing ``pos_encoding``,
    with linearly increasing drop-path rates."""
    block = block_class(config)
    return nn.ModuleList(
        block(config, pos_encoding=pos_encoding, drop_path=rate, cross_attention=cross_attention)
        for rate in drop_path_rates(config.drop_path, num_layers)
    )
