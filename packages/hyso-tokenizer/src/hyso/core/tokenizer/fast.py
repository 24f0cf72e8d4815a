"""The optional native encoder: tiktoken, used only where it gives identical ids.

tiktoken merges the adjacent pair whose joined bytes have the lowest rank, and
a token's id is its rank; this package merges the pair that comes first in
merge order. The two agree on a vocabulary when (checked per vocabulary by
:func:`tiktoken_blocker`):

- the split pattern is one tiktoken runs as this package does, and that matches
  every character (GPT-2's, cl100k_base's, o200k_base's, Llama 3's, Qwen2's), so
  nothing is dropped;
- the ids of merged tokens grow in merge order (rank order is merge order);
- every merge is the split tiktoken's ranks imply: BPE with the ranks below a
  token's own leaves exactly the merge's two parts (the rule by which
  ``serialization.tiktoken_model`` reads tiktoken files, whose ids equal
  tiktoken's);
- a piece that is a token is that token (tiktoken always looks a whole piece up
  first): the model has ``ignore_merges``, or the merges build every token from
  its own bytes.

Normalisation, lowercasing and special tokens stay in Python around it.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .bpe_model import LONG_PIECE, NO_MERGE, BPEModel, BPETables, merge_heap
from .pretokenize import GPT2_PATTERN

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "BACKENDS",
    "BACKEND_ENV",
    "CL100K_PATTERN",
    "LLAMA3_PATTERN",
    "O200K_PATTERN",
    "QWEN2_PATTERN",
    "TIKTOKEN_PATTERNS",
    "choose_backend",
    "tiktoken_blocker",
    "tiktoken_encoder",
    "tiktoken_installed",
]

BACKENDS = ("auto", "python", "tiktoken")
# Longest token the tiktoken check accepts (published vocabularies stay far below it;
# a vocabulary trained on one-character runs can hold megabyte-long tokens).
MAX_CHECKED_TOKEN_BYTES = 1024
# Set to "python" to keep every tokenizer on pure Python, whatever it asks for.
BACKEND_ENV = "HYSO_TOKENIZER_BACKEND"

# cl100k_base's published split pattern (Llama 3 uses it too).
CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
# o200k_base's published split pattern.
O200K_PATTERN = "|".join(
    [
        r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
        r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*"
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
        r"\p{N}{1,3}",
        r" ?[^\s\p{L}\p{N}]+[\r\n/]*",
        r"\s*[\r\n]+",
        r"\s+(?!\S)",
        r"\s+",
    ]
)
# Llama 3's and Qwen2's published split patterns (from their tokenizer.json files).
LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
QWEN2_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# Patterns tiktoken runs with the same pieces as the ``regex`` module, covering all text.
TIKTOKEN_PATTERNS = frozenset(
    {GPT2_PATTERN, CL100K_PATTERN, O200K_PATTERN, LLAMA3_PATTERN, QWEN2_PATTERN}
)


def choose_backend(backend: str) -> str:
    """``backend`` as asked, or ``"python"`` when :data:`BACKEND_ENV` says so."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    forced = os.environ.get(BACKEND_ENV, "")
    if forced not in ("", "python"):
        raise ValueError(f"{BACKEND_ENV} may only be 'python' (or unset), got {forced!r}")
    return "python" if forced == "python" else backend


def tiktoken_blocker(model: BPEModel, pattern: str, tables: BPETables | None = None) -> str | None:
    """Why tiktoken would not give this model's ids, or None when it would."""
    if pattern not in TIKTOKEN_PATTERNS:
        return "its split pattern is not one of fast.TIKTOKEN_PATTERNS (GPT-2's, cl100k_base's ...)"
    merges = model.merges
    if any(merges[k][2] >= merges[k + 1][2] for k in range(len(merges) - 1)):
        return "the ids of merged tokens do not grow in merge order"
    token_bytes = model.token_bytes
    longest = max((len(data) for data in token_bytes.values()), default=0)
    if longest > MAX_CHECKED_TOKEN_BYTES:
        # The check re-merges every token, so its cost grows with the tokens' lengths.
        return (
            f"a token is {longest} bytes long; the check that tiktoken gives the same ids "
            f"covers tokens of up to {MAX_CHECKED_TOKEN_BYTES} bytes"
        )
    ranks = {data: i for i, data in token_bytes.items()}
    for a, b, new in merges:
        left, right = _rank_split(token_bytes[new], new, ranks)
        if (left, right) != (token_bytes[a], token_bytes[b]):
            return (
                f"token {new} ({token_bytes[new]!r}) is merged from {token_bytes[a]!r} + "
                f"{token_bytes[b]!r}, but its ranks imply {left!r} + {right!r}"
            )
    if not model.ignore_merges:
        tables = tables if tables is not None else BPETables(model)
        for _, _, new in merges:
            got = tables.merge_bytes(token_bytes[new])
            if got != (new,):
                return f"token {new} ({token_bytes[new]!r}) is not what BPE makes of its bytes"
    return None


def _rank_split(token: bytes, rank: int, ranks: Mapping[bytes, int]) -> tuple[bytes, bytes]:
    """What tiktoken's BPE with the ranks below ``rank`` leaves of ``token`` (two parts
    when the ranks are consistent)."""

    if len(token) > LONG_PIECE:
        return _rank_split_long(token, rank, ranks)
    parts = [token[i : i + 1] for i in range(len(token))]
    get = ranks.get
    while len(parts) > 2:  # the plain loop: quadratic, fastest for short tokens
        pairs = [get(parts[i] + parts[i + 1], NO_MERGE) for i in range(len(parts) - 1)]
        best = min(pairs)
        if best >= rank:
            break
        i = pairs.index(best)
        parts[i : i + 2] = [parts[i] + parts[i + 1]]
    return (parts[0], parts[1]) if len(parts) == 2 else (token, b"")


def _rank_split_long(token: bytes, rank: int, ranks: Mapping[bytes, int]) -> tuple[bytes, bytes]:
    def lower_rank(left: bytes, right: bytes) -> int:
        found = ranks.get(left + right, NO_MERGE)
        return found if found < rank else NO_MERGE

    parts = merge_heap([token[i : i + 1] for i in range(len(token))], lower_rank, _join)
    if len(parts) != 2:
        return token, b""
    return parts[0], parts[1]


def _join(left: bytes, right: bytes, rank: int) -> bytes:
    return left + right


def tiktoken_installed() -> bool:
    """Whether tiktoken can be imported (the ``[fast]`` extra)."""
    return importlib.util.find_spec("tiktoken") is not None


def tiktoken_encoder(model: BPEModel, pattern: str) -> Callable[[str], list[int]]:
    """tiktoken's ``encode_ordinary`` for ``model`` (tiktoken must be installed); a lone
    surrogate raises ``UnicodeEncodeError`` (tiktoken's wrapper would replace it).

    The caller checks :func:`tiktoken_blocker` first; special tokens are left to it.
    """
    import tiktoken

    ranks: dict[bytes, int] = {data: i for i, data in model.token_bytes.items()}
    encoding: Any = tiktoken.Encoding(
        "hyso", pat_str=pattern, mergeable_ranks=ranks, special_tokens={}
    )
    core = getattr(encoding, "_core_bpe", None)
    if callable(getattr(core, "encode_ordinary", None)):
        return core.encode_ordinary  # type: ignore[no-any-return, union-attr]
    public: Callable[[str], list[int]] = encoding.encode_ordinary

    def checked(text: str) -> list[int]:
        if not text.isascii():
            text.encode("utf-8")  # raises on a lone surrogate
        return public(text)

    return checked
