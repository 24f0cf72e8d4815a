"""Bits per byte: the tokenizer-independent measure of a language model, and the
same figure for ``gzip -9`` as a reference point."""

from __future__ import annotations

import gzip
import math
import zlib
from collections.abc import Iterable

__all__ = ["bits_per_byte", "gzip_bits_per_byte", "gzip_stream_bits_per_byte"]


def bits_per_byte(mean_loss_nats: float, num_tokens: int, num_bytes: int) -> float:
    """Total code length of ``num_tokens`` predictions at ``mean_loss_nats`` each,
    in bits, divided by the ``num_bytes`` of text those tokens spell."""
    if num_bytes <= 0:
        raise ValueError(f"bits_per_byte: num_bytes must be positive, got {num_bytes}")
    if num_tokens < 0:
        raise ValueError(f"bits_per_byte: num_tokens must be >= 0, got {num_tokens}")
    return mean_loss_nats * num_tokens / (math.log(2) * num_bytes)


def gzip_bits_per_byte(text: str | bytes) -> float:
    """Compressed size in bits per input byte of ``gzip -9`` (DEFLATE level 9, gzip
    framing with a fixed mtime so the figure is reproducible)."""
    data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    if not data:
        raise ValueError("gzip_bits_per_byte: the text is empty")
    return 8 * len(gzip.compress(data, compresslevel=9, mtime=0)) / len(data)


def gzip_stream_bits_per_byte(chunks: Iterable[bytes | str]) -> tuple[float, int]:
    """:func:`gzip_bits_per_byte` of the concatenated ``chunks``, compressed as they come
    (memory flat whatever the text's size); returns ``(bits per byte, input bytes)``.

    The gzip stream is the one-shot one (same DEFLATE level, window and memory level, a
    10-byte header and 8-byte trailer), so the figure is the same to the bit.
    """
    deflate = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip framing, 32 KiB window
    size = read = 0
    for chunk in chunks:
        data = chunk.encode("utf-8") if isinstance(chunk, str) else chunk
        read += len(data)
        size += len(deflate.compress(data))
    size += len(deflate.flush())
    if read == 0:
        raise ValueError("gzip_stream_bits_per_byte: the text is empty")
    return 8 * size / read, read
