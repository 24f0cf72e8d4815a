"""Transformer models built from one set of reusable layers.

``HysoDecoderOnly`` (GPT/Llama style), ``HysoEncoderOnly`` (BERT style) and
``HysoEncoderDecoder`` (T5 style); configs in :mod:`hyso.core.models.config`,
layers in :mod:`hyso.core.models.layers`, the family registry in
:mod:`hyso.core.models.registry`.
"""

from .cache import Cache
from .config import (
    DecoderOnlyConfig,
    EncoderDecoderConfig,
    EncoderOnlyConfig,
    ModelConfigError,
    TransformerConfig,
    get_config,
    list_configs,
    register_config,
)
from .decoder_only import HysoDecoderOnly
from .encoder_decoder import HysoEncoderDecoder
from .encoder_only import HysoEncoderOnly
from .hf import HFExportError, HFFormatError, load_hf, to_hf
from .pretrained import PretrainedFormatError, load_pretrained
from .registry import build_model, family_names, model_class_for, register_family

__version__ = "0.1.0"

__all__ = [
    "Cache",
    "DecoderOnlyConfig",
    "EncoderDecoderConfig",
    "EncoderOnlyConfig",
    "HFExportError",
    "HFFormatError",
    "HysoDecoderOnly",
    "HysoEncoderDecoder",
    "HysoEncoderOnly",
    "ModelConfigError",
    "PretrainedFormatError",
    "TransformerConfig",
    "__version__",
    "build_model",
    "family_names",
    "get_config",
    "list_configs",
    "load_hf",
    "load_pretrained",
    "model_class_for",
    "register_config",
    "register_family",
    "to_hf",
]
