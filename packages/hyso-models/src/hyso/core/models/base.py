"""What every model family shares: config handling, input checks, init, save/load."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

import torch
from torch import nn

from .config import TransformerConfig
from .layers import RotaryEmbedding, TransformerBlock, build_norm, drop_path_rates
from .pretrained import load_pretrained, save_pretrained

__all__ = ["HysoModel", "make_blocks"]

M = TypeVar("M", bound="HysoModel")
# Output projections of residual branches get a smaller init (GPT-2: std / sqrt(2 * depth)).
RESIDUAL_PROJECTIONS = ("attn.out.weight", "cross.out.weight", "mlp.down.weight")


class HysoModel(nn.Module):
    """Base of the three families. Subclasses set ``config_class`` and build their layers.

    Construct from keywords (``HysoDecoderOnly(dim=256, num_layers=4, vocab_size=8192)``),
    from a config (dataclass or mapping), or both (keywords win). ``compile=True``
    compiles ``forward`` with ``torch.compile`` (opt-in; the first call is slow).
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

    # -- helpers for subclasses -------------------------------------------------------

    def _build_single_stack(self) -> None:
        """Token embedding, RoPE, ``num_layers`` blocks, final norm, LM head, then init.

        The layout the decoder-only and encoder-only models share; they differ only in
        the attention mask their ``forward`` builds.
        """
        c = self.config
        self.tok_emb = nn.Embedding(c.vocab_size, c.dim)
        self.emb_dropout = nn.Dropout(c.dropout)
        self.rope = RotaryEmbedding(c.head_dim, c.max_seq_len, c.rope_base)
        self.blocks = make_blocks(c, c.num_layers)
        self.norm = build_norm(c.norm, c.dim, c.norm_eps, c.bias)
        self.lm_head = nn.Linear(c.dim, c.vocab_size, bias=False)
        self._finish_init(c.num_layers)

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
        if self._compile:
            # Compile the network bodies only: the input checks stay eager (no graph breaks).
            for name in self._compiled_methods:
                setattr(self, name, torch.compile(getattr(self, name)))

    def _check_ids(self, ids: Any, name: str, max_len: int | None = None) -> torch.Tensor:
        """``ids`` must be an integer ``(B, T)`` tensor of valid ids with ``T <= max_len``."""
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
        low, high = torch.aminmax(ids)
        if int(low) < 0 or int(high) >= self.config.vocab_size:
            bad = int(high) if int(high) >= self.config.vocab_size else int(low)
            raise ValueError(
                f"{name}: token id {bad} is out of range for vocab_size {self.config.vocab_size}"
            )
        return ids

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
    config: TransformerConfig, num_layers: int, cross_attention: bool = False
) -> nn.ModuleList:
    """``num_layers`` pre-norm blocks with linearly increasing drop-path rates."""
    return nn.ModuleList(
        TransformerBlock(
            config.dim,
            config.num_heads,  # type: ignore[arg-type]
            config.num_kv_heads,  # type: ignore[arg-type]
            config.hidden_dim,  # type: ignore[arg-type]
            mlp=config.mlp,
            norm=config.norm,
            norm_eps=config.norm_eps,
            bias=config.bias,
            dropout=config.dropout,
            drop_path=rate,
            cross_attention=cross_attention,
        )
        for rate in drop_path_rates(config.drop_path, num_layers)
    )
