"""Model configs: plain dataclasses, importable without torch.

Every family shares :class:`TransformerConfig`; the family classes add only what
is theirs. ``from_dict`` rejects unknown keys by name, and ``__post_init__``
resolves defaults (``num_heads = dim // 64``) and validates every value, so a
bad config fails at construction with a :class:`ModelConfigError`, never deep
inside a forward pass.

Named configs live in a small registry: ``get_config("debug")`` is the tiny
model the tests use.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

__all__ = [
    "DecoderOnlyConfig",
    "EncoderDecoderConfig",
    "EncoderOnlyConfig",
    "ModelConfigError",
    "TransformerConfig",
    "config_class_for",
    "get_config",
    "list_configs",
    "register_config",
]

MLP_KINDS = ("swiglu", "geglu", "gelu", "gelu_erf", "dense_relu")
BLOCK_KINDS = ("pre_norm", "post_norm")
NORM_KINDS = ("rmsnorm", "layernorm")
# Keys accepted by ``from_dict`` as spellings of a field (the configs/ files say ``layers``).
ALIASES = {"layers": "num_layers", "n_layers": "num_layers", "n_heads": "num_heads"}
# Keys that name the family; accepted when they agree with the class being built.
FAMILY_KEYS = ("name", "family")

C = TypeVar("C", bound="TransformerConfig")
# Config classes by family, filled as each family's class is defined (__init_subclass__).
_CONFIG_CLASSES: dict[str, type[TransformerConfig]] = {}


class ModelConfigError(ValueError):
    """A model config key has a bad value, is unknown, or is missing."""


@dataclass
class TransformerConfig:
    """Hyper-parameters shared by every family.

    ``num_heads`` defaults to ``dim // 64`` (at least 1), ``num_kv_heads`` to
    ``num_heads`` (fewer gives grouped-query attention), ``hidden_dim`` to
    ``8 * dim / 3`` rounded up to a multiple of 64 for SwiGLU and ``4 * dim``
    for GELU. ``drop_path`` is the stochastic-depth rate of the last block; it
    grows linearly from 0 at the first. ``pos_encoding`` names an entry of
    ``hyso.core.models.layers.POSITION_ENCODINGS`` (``"rope"``, ``"learned"`` or
    ``"none"``). ``head_size`` defaults to ``dim // num_heads`` (a model may use
    another, as some Llama shapes do); ``qkv_bias`` defaults to ``bias`` (Qwen2
    has biases on q/k/v only); ``rope_scaling`` is ``None`` or
    ``{"rope_type": "llama3", "factor", "low_freq_factor", "high_freq_factor",
    "original_max_position_embeddings"}``. ``block`` names an entry of
    ``hyso.core.models.layers.BLOCKS`` (``"pre_norm"``, or BERT's ``"post_norm"``,
    whose model has no final norm); ``embed_norm`` normalises the embeddings before
    the first block (BERT). ``mlp="gelu"`` is the tanh GELU, ``"gelu_erf"`` the exact one,
    ``"geglu"`` the gated tanh GELU and ``"dense_relu"`` the ReLU MLP (T5). ``attn_scale``
    multiplies the attention scores (default ``1 / sqrt(head_size)``; T5 uses 1).
    ``rel_buckets`` and ``rel_max_distance`` shape the ``"relative"`` position bias.
    ``activation_checkpointing`` recomputes each block in the backward pass instead of
    keeping its activations (training with gradients only; the results are unchanged).

    A subclass that sets its own ``family`` is registered under that name (see
    :func:`config_class_for`).
    """

    family: ClassVar[str] = "transformer"

    dim: int
    num_layers: int
    vocab_size: int
    num_heads: int | None = None
    num_kv_heads: int | None = None
    max_seq_len: int = 1024
    mlp: str = "swiglu"
    norm: str = "rmsnorm"
    hidden_dim: int | None = None
    dropout: float = 0.0
    drop_path: float = 0.0
    tie_embeddings: bool = True
    bias: bool = False
    pos_encoding: str = "rope"
    rope_base: float = 10000.0
    norm_eps: float = 1e-5
    init_std: float = 0.02
    head_size: int | None = None
    qkv_bias: bool | None = None
    rope_scaling: dict[str, Any] | None = None
    block: str = "pre_norm"
    embed_norm: bool = False
    attn_scale: float | None = None
    rel_buckets: int = 32
    rel_max_distance: int = 128
    activation_checkpointing: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "family" in cls.__dict__:
            _CONFIG_CLASSES[cls.family] = cls

    def __post_init__(self) -> None:
        for key in ("dim", "num_layers", "vocab_size", "max_seq_len"):
            _check_int(key, getattr(self, key), minimum=1)
        if self.num_heads is None:
            self.num_heads = max(1, self.dim // 64)
        _check_int("num_heads", self.num_heads, minimum=1)
        if self.head_size is None:
            if self.dim % self.num_heads:
                raise ModelConfigError(
                    f"dim {self.dim} is not divisible by num_heads {self.num_heads}"
                )
            self.head_size = self.dim // self.num_heads
        _check_int("head_size", self.head_size, minimum=1)
        if not isinstance(self.pos_encoding, str) or not self.pos_encoding:
            raise ModelConfigError(f"pos_encoding must be a name, got {self.pos_encoding!r}")
        if self.pos_encoding == "rope" and self.head_size % 2:
            raise ModelConfigError(f"head size {self.head_size} must be even for RoPE")
        if self.qkv_bias is None:
            self.qkv_bias = self.bias
        _check_rope_scaling(self.rope_scaling)
        for key in ("rel_buckets", "rel_max_distance"):
            _check_int(key, getattr(self, key), minimum=2)
        scale = self.attn_scale
        if scale is not None and (
            isinstance(scale, bool)
            or not isinstance(scale, (int, float))
            or not 0 < scale < math.inf
        ):
            raise ModelConfigError(f"attn_scale must be a positive number or null, got {scale!r}")
        if self.num_kv_heads is None:
            self.num_kv_heads = self.num_heads
        _check_int("num_kv_heads", self.num_kv_heads, minimum=1)
        if self.num_heads % self.num_kv_heads:
            raise ModelConfigError(
                f"num_heads {self.num_heads} is not divisible by num_kv_heads {self.num_kv_heads}"
            )
        if self.mlp not in MLP_KINDS:
            raise ModelConfigError(f"unknown mlp {self.mlp!r}; expected one of {MLP_KINDS}")
        if self.block not in BLOCK_KINDS:
            raise ModelConfigError(f"unknown block {self.block!r}; expected one of {BLOCK_KINDS}")
        if self.norm not in NORM_KINDS:
            raise ModelConfigError(f"unknown norm {self.norm!r}; expected one of {NORM_KINDS}")
        if self.hidden_dim is None:
            self.hidden_dim = (
                -(-8 * self.dim // (3 * 64)) * 64
                if self.mlp in ("swiglu", "geglu")
                else 4 * self.dim
            )
        _check_int("hidden_dim", self.hidden_dim, minimum=1)
        for key in ("dropout", "drop_path"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ModelConfigError(f"{key} must be a number, got {value!r}")
            if not 0.0 <= value < 1.0:
                raise ModelConfigError(f"{key} must be in [0, 1), got {value}")
        for key in ("rope_base", "norm_eps", "init_std"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ModelConfigError(f"{key} must be a positive number, got {value!r}")
            if not 0 < value < math.inf:  # also refuses NaN
                raise ModelConfigError(f"{key} must be a positive finite number, got {value!r}")
        for key in ("tie_embeddings", "bias", "qkv_bias", "embed_norm", "activation_checkpointing"):
            if not isinstance(getattr(self, key), bool):
                raise ModelConfigError(f"{key} must be true or false, got {getattr(self, key)!r}")

    @property
    def head_dim(self) -> int:
        """Size of one attention head: ``head_size`` (by default ``dim // num_heads``)."""
        return self.head_size  # type: ignore[return-value]

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every field, defaults resolved."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls: type[C], data: Mapping[str, Any] | Any, **overrides: Any) -> C:
        """Build from a mapping, a config dataclass or any object with ``to_dict()``.

        ``overrides`` win over ``data``. Unknown keys raise :class:`ModelConfigError`
        naming them; ``layers`` is read as ``num_layers``; a ``name``/``family`` key
        must name this family.
        """
        values = dict(_as_mapping(data))
        values.update(overrides)
        for key in FAMILY_KEYS:
            if key in values:
                named = values.pop(key)
                if named is not None and str(named).replace("-", "_") != cls.family:
                    raise ModelConfigError(
                        f"config {key} {named!r} does not match {cls.__name__} "
                        f"(family {cls.family!r})"
                    )
        for alias, target in ALIASES.items():
            if alias in values:
                if target in values and values[target] != values[alias]:
                    raise ModelConfigError(
                        f"config gives both {alias}={values[alias]!r} and "
                        f"{target}={values[target]!r}"
                    )
                values[target] = values.pop(alias)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ModelConfigError(
                f"unknown key(s) for {cls.__name__}: {', '.join(unknown)}; "
                f"known keys: {', '.join(sorted(known))}"
            )
        missing = [
            f.name
            for f in dataclasses.fields(cls)
            if f.name not in values
            and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
        ]
        if missing:
            raise ModelConfigError(f"missing key(s) for {cls.__name__}: {', '.join(missing)}")
        return cls(**values)


@dataclass
class DecoderOnlyConfig(TransformerConfig):
    """A causal language model (GPT/Llama style)."""

    family: ClassVar[str] = "decoder_only"


@dataclass
class EncoderOnlyConfig(TransformerConfig):
    """A bidirectional encoder with a per-token (masked-LM) head (BERT style).

    ``type_vocab_size`` > 0 adds token-type (segment) embeddings; ``head_transform``
    puts BERT's dense + GELU + norm before the output head, which then has a bias.
    """

    family: ClassVar[str] = "encoder_only"

    type_vocab_size: int = 0
    head_transform: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_int("type_vocab_size", self.type_vocab_size, minimum=0)
        if not isinstance(self.head_transform, bool):
            raise ModelConfigError(
                f"head_transform must be true or false, got {self.head_transform!r}"
            )


@dataclass
class EncoderDecoderConfig(TransformerConfig):
    """An encoder and a causal decoder with cross-attention (T5 style).

    ``num_layers`` counts encoder blocks; ``num_decoder_layers`` defaults to it.
    Generation starts every target with ``decoder_start_token_id``.
    """

    family: ClassVar[str] = "encoder_decoder"

    num_decoder_layers: int | None = None
    decoder_start_token_id: int = 0
    # Multiplies the decoder's final hidden states before the head (tied T5: dim ** -0.5).
    logit_scale: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_decoder_layers is None:
            self.num_decoder_layers = self.num_layers
        _check_int("num_decoder_layers", self.num_decoder_layers, minimum=1)
        _check_int("decoder_start_token_id", self.decoder_start_token_id, minimum=0)
        scale = self.logit_scale
        if (
            isinstance(scale, bool)
            or not isinstance(scale, (int, float))
            or not 0 < scale < math.inf
        ):
            raise ModelConfigError(f"logit_scale must be a positive number, got {scale!r}")
        if self.decoder_start_token_id >= self.vocab_size:
            raise ModelConfigError(
                f"decoder_start_token_id {self.decoder_start_token_id} is not below "
                f"vocab_size {self.vocab_size}"
            )


def config_class_for(family: str) -> type[TransformerConfig]:
    """The config class of ``family`` (``decoder_only``, ``encoder_only``, ``encoder_decoder``).

    The torch-free half of the family registry (``get_config`` needs it without
    torch); :func:`hyso.core.models.registry.model_class_for` gives the model class.
    """
    key = str(family).replace("-", "_")
    if key not in _CONFIG_CLASSES:
        raise ModelConfigError(
            f"unknown model family {family!r}; expected one of {list(_CONFIG_CLASSES)}"
        )
    return _CONFIG_CLASSES[key]


@dataclass(frozen=True)
class _Entry:
    family: str
    values: dict[str, Any] = field(default_factory=dict)


_REGISTRY: dict[str, _Entry] = {}


def register_config(name: str, family: str, **values: Any) -> None:
    """Register a named config; ``values`` are validated now, by building it once."""
    config_class_for(family).from_dict(values)
    _REGISTRY[name] = _Entry(family=family.replace("-", "_"), values=dict(values))


def get_config(name: str, family: str | None = None, **overrides: Any) -> TransformerConfig:
    """A fresh copy of the named config, as ``family`` if given (else its own family)."""
    if name not in _REGISTRY:
        raise ModelConfigError(f"unknown config name {name!r}; known: {', '.join(list_configs())}")
    entry = _REGISTRY[name]
    return config_class_for(family or entry.family).from_dict(entry.values, **overrides)


def list_configs() -> list[str]:
    """Names of the registered configs, sorted."""
    return sorted(_REGISTRY)


def _check_int(key: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ModelConfigError(f"{key} must be an integer, got {value!r}")
    if value < minimum:
        raise ModelConfigError(f"{key} must be >= {minimum}, got {value}")


ROPE_SCALING_KEYS = (
    "factor",
    "low_freq_factor",
    "high_freq_factor",
    "original_max_position_embeddings",
)


def _check_rope_scaling(value: Any) -> None:
    """``None`` or a llama3 scaling mapping with positive finite numbers."""
    if value is None:
        return
    if not isinstance(value, Mapping):
        raise ModelConfigError(f"rope_scaling must be a mapping or null, got {value!r}")
    kind = value.get("rope_type", value.get("type"))
    if kind != "llama3":
        raise ModelConfigError(f"rope_scaling: unsupported rope_type {kind!r}; supported: llama3")
    for key in ROPE_SCALING_KEYS:
        number = value.get(key)
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise ModelConfigError(f"rope_scaling.{key} must be a number, got {number!r}")
        if not 0 < number < math.inf:
            raise ModelConfigError(f"rope_scaling.{key} must be positive and finite, got {number}")
    if not value["low_freq_factor"] < value["high_freq_factor"]:
        raise ModelConfigError(
            f"rope_scaling: low_freq_factor {value['low_freq_factor']} must be below "
            f"high_freq_factor {value['high_freq_factor']}"
        )


def _as_mapping(data: Any) -> Mapping[str, Any]:
    if isinstance(data, TransformerConfig):
        return data.to_dict()
    if isinstance(data, Mapping):
        return data
    if dataclasses.is_dataclass(data) and not isinstance(data, type):
        return dataclasses.asdict(data)
    to_dict = getattr(data, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    raise ModelConfigError(
        f"expected a mapping, a config dataclass or an object with to_dict(), "
        f"got {type(data).__name__}"
    )


# A tiny model for tests: grouped-query attention (4 heads, 2 kv heads), 2 blocks.
register_config(
    "debug",
    "decoder_only",
    dim=32,
    num_layers=2,
    vocab_size=97,
    num_heads=4,
    num_kv_heads=2,
    max_seq_len=64,
)
# The shape the benchmarks compare against HF transformers.
register_config(
    "bench-256",
    "decoder_only",
    dim=256,
    num_layers=4,
    vocab_size=8192,
    num_heads=4,
    max_seq_len=512,
)
register_config("small", "decoder_only", dim=512, num_layers=8, vocab_size=32000, max_seq_len=1024)
