"""Tokenizers: byte-level BPE (HysoBPETokenizer) and word level (HysoSimpleTokenizer), and
chat templates with assistant-masked ids (``chat``)."""

from .batch import BatchEncoding
from .bpe import DEFAULT_SPECIAL_TOKENS, HysoBPETokenizer
from .bpe_model import BPEModel, SpecialToken
from .chat import (
    ChatDataError,
    ChatEncoding,
    ChatRecord,
    ChatTemplate,
    ChatTemplateError,
    encode_chat,
    load_chat_template,
    read_chat_file,
    read_chat_records,
)
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
    "ChatDataError",
    "ChatEncoding",
    "ChatRecord",
    "ChatTemplate",
    "ChatTemplateError",
    "HysoBPETokenizer",
    "HysoSimpleTokenizer",
    "SpecialToken",
    "StreamDecoder",
    "TorchMissingError",
    "__version__",
    "encode_chat",
    "load_chat_template",
    "read_chat_file",
    "read_chat_records",
]
