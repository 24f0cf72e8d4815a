"""Batching: truncation, padding (right or left) and attention masks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["BatchEncoding", "pad_batch", "resolve_padding"]

PADDING_CHOICES = (False, True, "longest", "max_length", "do_not_pad")


class BatchEncoding(dict[str, Any]):
    """A dict of batch fields (``input_ids``, ``attention_mask``, ...) with attribute access."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def resolve_padding(padding: bool | str, max_length: int | None) -> str | None:
    """Normalise ``padding`` to None, "longest" or "max_length"; check ``max_length``."""
    if padding not in PADDING_CHOICES:
        raise ValueError(f"padding must be one of {PADDING_CHOICES}, got {padding!r}")
    if max_length is not None and (
        not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 1
    ):
        raise ValueError(f"max_length must be a positive int or None, got {max_length!r}")
    if padding in (False, "do_not_pad"):
        return None
    if padding == "max_length":
        if max_length is None:
            raise ValueError('padding="max_length" needs max_length')
        return "max_length"
    return "longest"


def pad_batch(
    seqs: Sequence[list[int]],
    pad_id: int,
    *,
    padding: bool | str = False,
    truncation: bool = False,
    max_length: int | None = None,
    padding_side: str = "right",
    label_pad_id: int | None = None,
) -> tuple[list[list[int]], list[list[int]]]:
    """Truncate/pad ``seqs``; return (padded ids, attention masks).

    Without truncation a sequence longer than ``max_length`` is an error, never
    silently cut. ``label_pad_id`` overrides the padding value (labels use -100).
    """
    mode = resolve_padding(padding, max_length)
    if padding_side not in ("right", "left"):
        raise ValueError(f'padding_side must be "right" or "left", got {padding_side!r}')
    if truncation and max_length is None:
        raise ValueError("truncation=True needs max_length")
    out = [list(s) for s in seqs]
    if max_length is not None:
        for i, s in enumerate(out):
            if len(s) > max_length:
                if not truncation:
                    raise ValueError(
                        f"sequence {i} has length {len(s)}, which exceeds max_length "
                        f"{max_length}; pass truncation=True to cut it"
                    )
                del s[max_length:]
    masks = [[1] * len(s) for s in out]
    if mode is None:
        return out, masks
    target = max_length if mode == "max_length" else max((len(s) for s in out), default=0)
    fill = pad_id if label_pad_id is None else label_pad_id
    for s, m in zip(out, masks):
        gap = target - len(s)
        if gap > 0:
            if padding_side == "right":
                s.extend([fill] * gap)
                m.extend([0] * gap)
            else:
                s[:0] = [fill] * gap
                m[:0] = [0] * gap
    return out, masks
