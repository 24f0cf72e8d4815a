"""Tokenizers: byte-level BPE (HysoBPETokenizer) and word level (HysoSimpleTokenizer)."""

__version__ = "0.1.0"

__all__ = ["__version__"]
