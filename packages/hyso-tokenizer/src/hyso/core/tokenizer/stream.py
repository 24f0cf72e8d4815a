"""Streaming decode for generation: text comes out only as whole UTF-8 characters."""

from __future__ import annotations

import codecs
from collections.abc import Callable

__all__ = ["StreamDecoder"]


class StreamDecoder:
    """Feed token ids one at a time; get the text they complete.

    Bytes of a character split across tokens are held back until the character
    is complete; invalid byte sequences come out as U+FFFD, as in ``decode``.
    """

    def __init__(
        self,
        token_bytes: Callable[[int], bytes | None],
        special_text: Callable[[int], str | None],
        skip_special_tokens: bool = False,
    ) -> None:
        self._token_bytes = token_bytes
        self._special_text = special_text
        self._skip_special = skip_special_tokens
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, token_id: int) -> str:
        """Add one token; return the newly completed text (maybe empty)."""
        special = self._special_text(token_id)
        if special is not None:
            pending = self._decoder.decode(b"", final=True)
            self._decoder.reset()
            return pending if self._skip_special else pending + special
        return self._decoder.decode(self._token_bytes(token_id), final=False)

    def flush(self) -> str:
        """Return what is held back (an incomplete character becomes U+FFFD) and reset."""
        text = self._decoder.decode(b"", final=True)
        self._decoder.reset()
        return text
