"""Tokenizers: byte-level BPE (HysoBPETokenizer) and word level (HysoSimpleTokenizer)."""

from .batch import BatchEncoding
from .bpe import DEFAULT_SPECIAL_TOKENS, HysoBPETokenizer
from .pretokenize import GPT2_PATTERN
from .simple import HysoSimpleTokenizer
from .stream import StreamDecoder
from .tensors import TorchMissingError

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_SPECIAL_TOKENS",
    "GPT2_PATTERN",
    "BatchEncoding",
    "HysoBPETokenizer",
    "HysoSimpleTokenizer",
    "StreamDecoder",
    "TorchMissingError",
    "__version__",
]
