"""Reusable transformer layers: attention, positional encodings, norms, MLPs, DropPath,
the block."""

from .attention import CrossAttention, KVCache, SelfAttention, attend
from .block import TransformerBlock
from .drop_path import DropPath, drop_path_rates
from .learned import LearnedPositions
from .linear_cross_entropy import linear_cross_entropy
from .mlp import GELU_APPROXIMATIONS, GeluMLP, SwiGLU, build_mlp
from .norms import LayerNorm, RMSNorm, build_norm
from .position import NoPositionEncoding, PositionEncoding
from .post_norm import PostNormBlock
from .registry import BLOCKS, POSITION_ENCODINGS, block_class, build_position_encoding
from .relative import RelativePositionBias
from .rope import RotaryEmbedding, apply_rotary

__all__ = [
    "BLOCKS",
    "GELU_APPROXIMATIONS",
    "POSITION_ENCODINGS",
    "CrossAttention",
    "DropPath",
    "GeluMLP",
    "KVCache",
    "LayerNorm",
    "LearnedPositions",
    "NoPositionEncoding",
    "PositionEncoding",
    "PostNormBlock",
    "RMSNorm",
    "RelativePositionBias",
    "RotaryEmbedding",
    "SelfAttention",
    "SwiGLU",
    "TransformerBlock",
    "apply_rotary",
    "attend",
    "block_class",
    "build_mlp",
    "build_norm",
    "build_position_encoding",
    "drop_path_rates",
    "linear_cross_entropy",
]
