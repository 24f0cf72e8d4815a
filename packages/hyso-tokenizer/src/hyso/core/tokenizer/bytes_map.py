"""The byte <-> printable-character alphabet of GPT-2 style byte-level BPE.

Every byte maps to one printable Unicode character so that tokens are strings;
bytes that are already printable map to themselves, the others to U+0100 on.
HF ``tokenizers`` orders its initial alphabet by these characters' code points,
which is the id order :data:`HF_BYTE_ORDER` gives.
"""

from __future__ import annotations

__all__ = [
    "BYTE_TO_UNICODE",
    "HF_BYTE_ORDER",
    "UNICODE_TO_BYTE",
    "bytes_to_token",
    "token_to_bytes",
]


def _build_byte_to_unicode() -> dict[int, str]:
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]
    table = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


BYTE_TO_UNICODE: dict[int, str] = _build_byte_to_unicode()
UNICODE_TO_BYTE: dict[str, int] = {c: b for b, c in BYTE_TO_UNICODE.items()}
# Bytes in the order HF's BPE trainer assigns them ids (sorted by mapped code point).
HF_BYTE_ORDER: tuple[int, ...] = tuple(sorted(range(256), key=lambda b: ord(BYTE_TO_UNICODE[b])))


def bytes_to_token(data: bytes) -> str:
    """The byte-level token string (GPT-2 alphabet) of ``data``."""
    return "".join(BYTE_TO_UNICODE[b] for b in data)


def token_to_bytes(token: str) -> bytes:
    """The bytes of a byte-level token string; ``ValueError`` on a foreign character."""
    try:
        return bytes(UNICODE_TO_BYTE[c] for c in token)
    except KeyError as exc:
        raise ValueError(
            f"token {token!r} has character {exc.args[0]!r} outside the byte-level alphabet"
        ) from None
