"""Bits per byte: the tokenizer-independent measure of a language model, and the
same figure for ``gzip -9``, ``xz -9e`` and ``bzip2 -9`` as reference points."""

from __future__ import annotations

import bz2
import gzip
import lzma
import math
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "CompressorBitsPerByte",
    "bits_per_byte",
    "compressors_stream_bits_per_byte",
    "gzip_bits_per_byte",
    "gzip_stream_bits_per_byte",
]

XZ_PRESET = 9 | lzma.PRESET_EXTREME  # xz -9e


class _Compressor(Protocol):
    def compress(self, data: bytes, /) -> bytes: ...

    def flush(self) -> bytes: ...


@dataclass(frozen=True)
class CompressorBitsPerByte:
    """Compressed size in bits per input byte of the three reference compressors,
    all measured on the same ``num_bytes`` of text."""

    gzip: float  # gzip -9: DEFLATE level 9, gzip framing, 32 KiB window
    xz: float  # xz -9e: LZMA2 preset 9 | PRESET_EXTREME, .xz framing, CRC64 check
    bzip2: float  # bzip2 -9: 900 kB blocks
    num_bytes: int


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


def _gzip_compressor() -> _Compressor:
    # The one-shot gzip stream: same DEFLATE level, window and memory level, a 10-byte
    # header (mtime 0) and an 8-byte trailer. 31: gzip framing, 32 KiB window.
    return zlib.compressobj(9, zlib.DEFLATED, 31)


def _stream_sizes(
    chunks: Iterable[bytes | str], compressors: Sequence[_Compressor], caller: str
) -> tuple[list[int], int]:
    """Feed every chunk to every compressor as it comes; the compressed sizes and the
    number of input bytes. An empty text is an error naming ``caller``."""
    sizes = [0] * len(compressors)
    read = 0
    for chunk in chunks:
        data = chunk.encode("utf-8") if isinstance(chunk, str) else chunk
        if not data:
            continue
        read += len(data)
        for i, compressor in enumerate(compressors):
            sizes[i] += len(compressor.compress(data))
    for i, compressor in enumerate(compressors):
        sizes[i] += len(compressor.flush())
    if read == 0:
        raise ValueError(f"{caller}: the text is empty")
    return sizes, read


def gzip_stream_bits_per_byte(chunks: Iterable[bytes | str]) -> tuple[float, int]:
    """:func:`gzip_bits_per_byte` of the concatenated ``chunks``, compressed as they come
    (memory flat whatever the text's size); returns ``(bits per byte, input bytes)``.

    The gzip stream is the one-shot one, so the figure is the same to the bit.
    """
    sizes, read = _stream_sizes(chunks, [_gzip_compressor()], "gzip_stream_bits_per_byte")
    return 8 * sizes[0] / read, read


def compressors_stream_bits_per_byte(chunks: Iterable[bytes | str]) -> CompressorBitsPerByte:
    """``gzip -9``, ``xz -9e`` and ``bzip2 -9`` bits per byte of the concatenated
    ``chunks`` in one pass, each chunk fed to the three compressors as it comes.

    Each stream is byte for byte the one-shot one (``gzip.compress(..., 9, mtime=0)``,
    ``lzma.compress(..., preset=9 | lzma.PRESET_EXTREME)``, ``bz2.compress(..., 9)``).
    The text is never held whole, though xz's and bzip2's own buffers (a 64 MiB
    dictionary, 900 kB blocks) grow with it up to their limits.
    """
    compressors = [
        _gzip_compressor(),
        lzma.LZMACompressor(format=lzma.FORMAT_XZ, preset=XZ_PRESET),
        bz2.BZ2Compressor(9),
    ]
    sizes, read = _stream_sizes(chunks, compressors, "compressors_stream_bits_per_byte")
    gz, xz, bz = (8 * size / read for size in sizes)
    return CompressorBitsPerByte(gzip=gz, xz=xz, bzip2=bz, num_bytes=read)
