"""Components by the name a config gives: position encodings (``pos_encoding``) and
blocks (``block``). A new one is a file with its class plus one line here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hyso.core.models.config import ModelConfigError

from .block import TransformerBlock
from .learned import LearnedPositions
from .position import NoPositionEncoding, PositionEncoding
from .post_norm import PostNormBlock
from .relative import RelativePositionBias
from .rope import RotaryEmbedding

if TYPE_CHECKING:
    from hyso.core.models.config import TransformerConfig

__all__ = ["BLOCKS", "POSITION_ENCODINGS", "block_class", "build_position_encoding"]

# One line per encoding: the config name and the class.
POSITION_ENCODINGS: dict[str, type[PositionEncoding]] = {
    "rope": RotaryEmbedding,
    "none": NoPositionEncoding,
    "learned": LearnedPositions,
    "relative": RelativePositionBias,
}


# One line per block kind: the config name and the class.
BLOCKS: dict[str, type[TransformerBlock]] = {
    "pre_norm": TransformerBlock,
    "post_norm": PostNormBlock,
}


def block_class(config: TransformerConfig) -> type[TransformerBlock]:
    """The block class ``config.block`` names."""
    if config.block not in BLOCKS:
        raise ModelConfigError(f"unknown block {config.block!r}; expected one of {sorted(BLOCKS)}")
    return BLOCKS[config.block]


def build_position_encoding(config: TransformerConfig) -> PositionEncoding:
    """The encoding ``config.pos_encoding`` names, built from the config."""
    name = config.pos_encoding
    if name not in POSITION_ENCODINGS:
        raise ModelConfigError(
            f"unknown pos_encoding {name!r}; expected one of {sorted(POSITION_ENCODINGS)}"
        )
    return POSITION_ENCODINGS[name].from_config(config)
