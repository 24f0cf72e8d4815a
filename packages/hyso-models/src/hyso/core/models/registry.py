"""Model classes by family name, and ``build_model`` for configs that name their family."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import HysoModel
from .config import FAMILY_KEYS, ModelConfigError, TransformerConfig

__all__ = ["build_model", "model_class_for"]


def model_class_for(family: str) -> type[HysoModel]:
    """``HysoDecoderOnly``, ``HysoEncoderOnly`` or ``HysoEncoderDecoder`` by family name."""
    from .decoder_only import HysoDecoderOnly
    from .encoder_decoder import HysoEncoderDecoder
    from .encoder_only import HysoEncoderOnly

    classes = {
        cls.config_class.family: cls
        for cls in (HysoDecoderOnly, HysoEncoderOnly, HysoEncoderDecoder)
    }
    key = str(family).replace("-", "_")
    if key not in classes:
        raise ModelConfigError(f"unknown model family {family!r}; expected one of {list(classes)}")
    return classes[key]


def build_model(config: Any, **overrides: Any) -> HysoModel:
    """Build the model a config names: a config dataclass, or a mapping whose ``name``
    (or ``family``) key is ``decoder_only``, ``encoder_only`` or ``encoder_decoder``.

    ``overrides`` win over the config (``build_model(cfg.model, vocab_size=tok.vocab_size)``).
    """
    if isinstance(config, TransformerConfig):
        return model_class_for(config.family).from_config(config, **overrides)
    values = config if isinstance(config, Mapping) else getattr(config, "to_dict", dict)()
    if not isinstance(values, Mapping):
        raise ModelConfigError(f"cannot build a model from {type(config).__name__}")
    family = next((values[k] for k in FAMILY_KEYS if values.get(k) is not None), None)
    if family is None:
        raise ModelConfigError("model config needs a 'name' key naming the family")
    return model_class_for(family).from_config(values, **overrides)
