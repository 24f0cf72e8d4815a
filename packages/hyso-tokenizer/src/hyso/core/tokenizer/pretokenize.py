"""Pre-tokenization: normalisation, lowercasing and the GPT-2 split pattern.

:data:`GPT2_PATTERN` is the published GPT-2 pattern (written into exported
files). :data:`FAST_PATTERN` splits identically but tries the common
alternatives first. :data:`LINE_PATTERN` splits a multi-line chunk exactly as
splitting each ``\\n``-terminated line on its own would, which is how HF
``tokenizers`` reads training files.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator
from itertools import chain

import regex

__all__ = [
    "ASCII_LINE_PATTERN",
    "ASCII_PATTERN",
    "FAST_PATTERN",
    "GPT2_PATTERN",
    "LINE_PATTERN",
    "NORMALIZATIONS",
    "GPT2Splitter",
    "Normalizer",
    "PatternSplitter",
    "check_text",
    "make_block_splitter",
    "make_normalizer",
    "make_splitter",
    "split_pattern",
    "surrogate_error",
]

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
# Same matches: a contraction can only start at "'", where the letter and number
# alternatives cannot match, so moving them first changes nothing but speed.
FAST_PATTERN = r"""'(?:[stmd]|re|ve|ll)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
# Per-line semantics over a chunk: a whitespace run never crosses a newline, and
# a run that reaches its line's newline ends with it.
LINE_PATTERN = (
    r"""'(?:[stmd]|re|ve|ll)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+"""
    r"""|[^\S\n]*\n|[^\S\n]+(?![^\s])|[^\S\n]+"""
)
# GPT-2's pattern restricted to ASCII text, for the stdlib ``re`` engine (faster
# there). Whitespace is spelt out: ``re`` would also count \x1c-\x1f as space.
_WS = r"\t\n\x0b\x0c\r "
_WS_NO_NL = r"\t\x0b\x0c\r "
_ASCII_WORDS = rf""" ?[A-Za-z]+| ?[0-9]+|'(?:[stmd]|re|ve|ll)| ?[^{_WS}A-Za-z0-9]+"""
ASCII_PATTERN = rf"""{_ASCII_WORDS}|[{_WS}]+(?![^{_WS}])|[{_WS}]+"""
ASCII_LINE_PATTERN = (
    rf"""{_ASCII_WORDS}|[{_WS_NO_NL}]*\n|[{_WS_NO_NL}]+(?![^{_WS}])|[{_WS_NO_NL}]+"""
)
NORMALIZATIONS = ("NFC", "NFD", "NFKC", "NFKD")
_ASCII_SEGMENT_MIN = 256
_MERGE_GAP = 256
_BLOCK = 16_384
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")

_COMPILED: dict[str, regex.Pattern[str]] = {}
# The time a user pattern may take on one text: a base plus a per-character share,
# far above what a sane pattern needs and far below catastrophic backtracking.
PATTERN_BASE_SECONDS = 2.0
PATTERN_SECONDS_PER_CHAR = 5e-6


class GPT2Splitter:
    """``findall`` for the GPT-2 pattern that sends ASCII stretches to a faster engine.

    ``lines=True`` gives :data:`LINE_PATTERN`'s pieces instead (line by line).

    Text is cut only before a space that follows a non-space character: no
    match spans such a point and no lookahead sees past it, so the pieces are
    unchanged. A long text is cut into blocks of about :data:`_BLOCK` characters at
    such points; an ASCII block goes whole to ``re``, and in the others the stretches
    around non-ASCII characters go to the ``regex`` engine.
    """

    def __init__(self, lines: bool = False) -> None:
        self._uni = split_pattern(LINE_PATTERN if lines else FAST_PATTERN).findall
        self._ascii = re.compile(ASCII_LINE_PATTERN if lines else ASCII_PATTERN).findall

    def findall(self, text: str) -> list[str]:
        """The pieces of ``text``, as ``regex.findall`` with the pattern gives them."""
        if len(text) <= _BLOCK:
            return self._short(text)
        return list(chain.from_iterable(self.blocks(text)))

    def blocks(self, text: str) -> Iterator[list[str]]:
        """The pieces of ``text`` block by block, each block about :data:`_BLOCK`
        characters cut at a safe point (a consumer can drop a block's pieces early)."""
        size = len(text)
        if size <= _BLOCK:
            yield self._short(text)
            return
        ascii_text = text.isascii()
        pos = 0
        while pos < size:
            end = _cut_after(text, pos + _BLOCK) if pos + _BLOCK < size else size
            if ascii_text:  # matched in place: no copy of the text
                yield self._ascii(text, pos, end)
            else:  # an ASCII block's slice is narrowed to one byte a character
                block = text[pos:end]
                yield self._ascii(block) if block.isascii() else self._mixed(block)
            pos = end

    def _short(self, text: str) -> list[str]:
        if text.isascii():
            return self._ascii(text)
        if len(text) < _ASCII_SEGMENT_MIN:
            return self._uni(text)
        return self._mixed(text)

    def _mixed(self, text: str) -> list[str]:
        """The pieces of a text with non-ASCII characters: ASCII stretches go to ``re``."""
        # ASCII stretches are matched in place (pos, endpos: no copy of the text) and
        # the piece lists joined once at the end.
        parts: list[list[str]] = []
        pos = 0  # text[:pos] is done, or waits in the open window
        window = -1  # start of the open non-ASCII window, or -1
        for m in _NON_ASCII.finditer(text):
            a, b = m.span()
            if b <= pos:
                continue
            left = _cut_before(text, a, pos)
            if window >= 0 and left - pos < _MERGE_GAP:
                pos = _cut_after(text, b)
                continue
            if window >= 0:
                parts.append(self._uni(text[window:pos]))
            if left > pos:
                parts.append(self._ascii(text, pos, left))
            window, pos = left, _cut_after(text, b)
        if window >= 0:
            parts.append(self._uni(text[window:pos]))
        if pos < len(text):
            parts.append(self._ascii(text, pos))
        return list(chain.from_iterable(parts))


def _cut_before(text: str, at: int, lower: int) -> int:
    """The last safe cut in [lower, at]; ``lower`` is itself one."""
    p = at
    while p > lower:
        p = text.rfind(" ", lower, p)
        if p <= lower:
            return lower
        if not text[p - 1].isspace():
            return p
    return lower


def _cut_after(text: str, at: int) -> int:
    """The first safe cut at or after ``at`` (``len(text)`` if none)."""
    p = at
    while True:
        p = text.find(" ", p)
        if p < 0:
            return len(text)
        if not text[p - 1].isspace():
            return p
        p += 1


def make_splitter(pattern: str, lines: bool = False) -> Callable[[str], list[str]]:
    """The function splitting text into pieces by ``pattern`` (per line if ``lines``).

    GPT-2's pattern covers every character; any other pattern is run by
    :class:`PatternSplitter`, which keeps the text it does not match.
    """
    if pattern == GPT2_PATTERN:
        return GPT2Splitter(lines).findall
    return PatternSplitter(pattern, lines)


def make_block_splitter(pattern: str) -> Callable[[str], Iterator[list[str]]]:
    """Like :func:`make_splitter`, but the pieces come block by block (GPT-2's pattern)
    or all in one block (any other pattern)."""
    if pattern == GPT2_PATTERN:
        return GPT2Splitter().blocks
    return PatternSplitter(pattern).blocks


class PatternSplitter:
    """Pieces of a user pattern: its matches and, as pieces of their own, the text
    between them (HF ``Split`` with behavior ``Isolated``), so no text is lost.

    A pattern that takes longer than its time budget on one text (catastrophic
    backtracking) is a ValueError instead of a hang. ``lines=True`` splits each
    ``\\n``-terminated line on its own, as HF reads training files. Picklable.
    """

    def __init__(self, pattern: str, lines: bool = False) -> None:
        self.pattern = pattern
        self.lines = lines
        split_pattern(pattern)  # a bad pattern fails here, not on first use

    def __call__(self, text: str) -> list[str]:
        if not self.lines:
            return self._split(text)
        out: list[str] = []
        for line in _LINE.findall(text):
            out.extend(self._split(line))
        return out

    def blocks(self, text: str) -> Iterator[list[str]]:
        """The pieces of ``text`` as one block (the interface of :meth:`GPT2Splitter.blocks`)."""
        yield self(text)

    def _split(self, text: str) -> list[str]:
        budget = PATTERN_BASE_SECONDS + PATTERN_SECONDS_PER_CHAR * len(text)
        pieces: list[str] = []
        pos = 0
        try:
            for match in split_pattern(self.pattern).finditer(text, timeout=budget):
                start, end = match.span()
                if start > pos:  # an empty match, too, ends the text before it
                    pieces.append(text[pos:start])
                    pos = start
                if end > start:
                    pieces.append(text[start:end])
                    pos = end
        except TimeoutError:
            raise ValueError(
                f"pattern {self.pattern!r} took over {budget:.1f} s on a text of {len(text)} "
                "characters (catastrophic backtracking); use a simpler pattern"
            ) from None
        if pos < len(text):
            pieces.append(text[pos:])
        return pieces


_LINE = re.compile(r"[^\n]*\n|[^\n]+")


def split_pattern(pattern: str) -> regex.Pattern[str]:
    """The compiled split regex for ``pattern`` (GPT-2's is swapped for its fast twin)."""
    key = FAST_PATTERN if pattern == GPT2_PATTERN else pattern
    compiled = _COMPILED.get(key)
    if compiled is None:
        try:
            compiled = regex.compile(key)
        except regex.error as exc:
            raise ValueError(f"pattern {pattern!r} is not a valid regex: {exc}") from None
        _COMPILED[key] = compiled
    return compiled


class Normalizer:
    """Unicode normalisation then lowercasing; picklable, so worker processes can use it."""

    def __init__(self, form: str | None, lowercase: bool) -> None:
        self.form = form
        self.lowercase = lowercase

    def __call__(self, text: str) -> str:
        if self.form is not None:
            text = unicodedata.normalize(self.form, text)
        return text.lower() if self.lowercase else text


def make_normalizer(normalize: str | None, lowercase: bool) -> Callable[[str], str] | None:
    """A function applying Unicode ``normalize`` then lowercasing, or None for identity."""
    if normalize is not None and normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {NORMALIZATIONS} or None, got {normalize!r}")
    if normalize is None and not lowercase:
        return None
    return Normalizer(normalize, lowercase)


def check_text(text: object, name: str = "text") -> str:
    """Return ``text`` if it is a str of valid Unicode; else a clear error."""
    if not isinstance(text, str):
        raise TypeError(f"{name} must be str, got {type(text).__name__}")
    return text


def surrogate_error(text: str, name: str = "text") -> ValueError:
    """The error for a string holding a lone surrogate (not encodable as UTF-8)."""
    for i, ch in enumerate(text):
        if 0xD800 <= ord(ch) <= 0xDFFF:
            return ValueError(
                f"{name} holds a lone surrogate U+{ord(ch):04X} at index {i}; "
                "only valid Unicode can be encoded"
            )
    return ValueError(f"{name} cannot be encoded as UTF-8")
