"""Tokenizers: byte-level BPE (HysoBPETokenizer) and word level (HysoSimpleTokenizer)."""

from .batch import BatchEncoding
from .bpe import DEFAULT_SPECIAL_TOKENS, HysoBPETokenizer
from .bpe_model import BPEModel, SpecialToken
from .pretokenize import GPT2_PATTERN
from .simple import HysoSimpleTokenizer
from .stream import StreamDecoder
from .tensors import TorchMissingError

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_SPECIAL_TOKENS",
    "GPT2_PATTERN",
    "BPEModel",
    "BatchEncoding",
    "HysoBPETokenizer",
    "HysoSimpleTokenizer",
    "SpecialToken",
    "StreamDecoder",
    "TorchMissingError",
    "__version__",
]
