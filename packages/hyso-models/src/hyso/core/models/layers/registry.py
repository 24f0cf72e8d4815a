"""Position encodings by the name a config's ``pos_encoding`` field gives."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hyso.core.models.config import ModelConfigError

from .learned import LearnedPositions
from .position import NoPositionEncoding, PositionEncoding
from .rope import RotaryEmbedding

if TYPE_CHECKING:
    from hyso.core.models.config import TransformerConfig

__all__ = ["POSITION_ENCODINGS", "build_position_encoding"]

# One line per encoding: the config name and the class.
POSITION_ENCODINGS: dict[str, type[PositionEncoding]] = {
    "rope": RotaryEmbedding,
    "none": NoPositionEncoding,
    "learned": LearnedPositions,
}


def build_position_encoding(config: TransformerConfig) -> PositionEncoding:
    """The encoding ``config.pos_encoding`` names, built from the config."""
    name = config.pos_encoding
    if name not in POSITION_ENCODINGS:
        raise ModelConfigError(
            f"unknown pos_encoding {name!r}; expected one of {sorted(POSITION_ENCODINGS)}"
        )
    return POSITION_ENCODINGS[name].from_config(config)
