"""The one registry of model families: family name -> model class.

Each family's module registers its class with ``@register_family``; the class
carries its config class (``config_class``, whose ``family`` is the key).
Everything that picks a class by family name (``build_model``,
``load_pretrained``, the ``hyso`` command) asks :func:`model_class_for`.

This module imports no model module (they import it), so the arrows run one way:
``config <- registry <- pretrained <- base <- families``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from .config import FAMILY_KEYS, ModelConfigError, TransformerConfig

if TYPE_CHECKING:
    from .base import HysoModel

__all__ = [
    "build_model",
    "family_names",
    "hf_exporter",
    "model_class_for",
    "register_family",
    "register_hf_exporter",
]

M = TypeVar("M", bound="type[HysoModel]")
_MODEL_CLASSES: dict[str, type[HysoModel]] = {}
# ``hyso.core.models.hf.to_hf``, registered by that module (it imports the model modules).
_HF_EXPORTER: list[Callable[..., Any]] = []


def register_hf_exporter(function: Callable[..., Any]) -> None:
    """Record the function ``HysoModel.to_hf`` calls."""
    _HF_EXPORTER[:] = [function]


def hf_exporter() -> Callable[..., Any]:
    """The registered Hugging Face exporter (``hyso.core.models.hf.to_hf``)."""
    if not _HF_EXPORTER:
        raise RuntimeError("hyso.core.models.hf is not imported")
    return _HF_EXPORTER[0]


def register_family(cls: M) -> M:
    """Class decorator: register ``cls`` under ``cls.config_class.family``."""
    _MODEL_CLASSES[cls.config_class.family] = cls
    return cls


def family_names() -> list[str]:
    """The registered family names, in registration order."""
    return list(_MODEL_CLASSES)


def model_class_for(family: str) -> type[HysoModel]:
    """``HysoDecoderOnly``, ``HysoEncoderOnly`` or ``HysoEncoderDecoder`` by family name."""
    key = str(family).replace("-", "_")
    if key not in _MODEL_CLASSES:
        raise ModelConfigError(f"unknown model family {family!r}; expected one of {family_names()}")
    return _MODEL_CLASSES[key]


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
