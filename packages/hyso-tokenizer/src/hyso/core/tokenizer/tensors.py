"""Optional tensor output; torch is imported lazily, only when asked for."""

from __future__ import annotations

from typing import Any

__all__ = ["TorchMissingError", "as_tensors"]

RETURN_TENSORS = (None, "pt")


class TorchMissingError(ImportError):
    """torch was asked for but is not installed."""


def as_tensors(fields: dict[str, Any], return_tensors: str | None) -> dict[str, Any]:
    """Convert each (rectangular) list-of-lists field to a ``torch.long`` tensor if asked."""
    if return_tensors not in RETURN_TENSORS:
        raise ValueError(f"return_tensors must be None or 'pt', got {return_tensors!r}")
    if return_tensors is None:
        return fields
    try:
        import torch
    except ImportError:
        raise TorchMissingError(
            'return_tensors="pt" needs torch; install it with: pip install "hyso-tokenizer[torch]"'
        ) from None
    out: dict[str, Any] = {}
    for name, rows in fields.items():
        lengths = {len(r) for r in rows}
        if len(lengths) > 1:
            raise ValueError(
                f'return_tensors="pt" needs equal lengths, but {name} has lengths '
                f"{min(lengths)}..{max(lengths)}; pass padding=True"
            )
        out[name] = torch.tensor(rows, dtype=torch.long)  # (B, T)
    return out
