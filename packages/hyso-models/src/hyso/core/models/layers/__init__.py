"""Reusable transformer layers: attention, positional encodings, norms, MLPs, DropPath,
the block."""

from .attention import CrossAttention, KVCache, SelfAttention, attend
from .block import TransformerBlock
from .drop_path import DropPath, drop_path_rates
from .learned import LearnedPositions
from .mlp import GeluMLP, SwiGLU, build_mlp
from .norms import LayerNorm, RMSNorm, build_norm
from .position import NoPositionEncoding, PositionEncoding
from .registry import POSITION_ENCODINGS, build_position_encoding
from .rope import RotaryEmbedding, apply_rotary

__all__ = [
    "POSITION_ENCODINGS",
    "CrossAttention",
    "DropPath",
    "GeluMLP",
    "KVCache",
    "LayerNorm",
    "LearnedPositions",
    "NoPositionEncoding",
    "PositionEncoding",
    "RMSNorm",
    "RotaryEmbedding",
    "SelfAttention",
    "SwiGLU",
    "TransformerBlock",
    "apply_rotary",
    "attend",
    "build_mlp",
    "build_norm",
    "build_position_encoding",
    "drop_path_rates",
]
