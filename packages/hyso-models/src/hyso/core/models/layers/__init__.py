"""Reusable transformer layers: attention, RoPE, norms, MLPs, DropPath, the block."""

from .attention import CrossAttention, KVCache, SelfAttention, attend
from .block import TransformerBlock
from .drop_path import DropPath, drop_path_rates
from .mlp import GeluMLP, SwiGLU, build_mlp
from .norms import LayerNorm, RMSNorm, build_norm
from .rope import RotaryEmbedding, apply_rotary

__all__ = [
    "CrossAttention",
    "DropPath",
    "GeluMLP",
    "KVCache",
    "LayerNorm",
    "RMSNorm",
    "RotaryEmbedding",
    "SelfAttention",
    "SwiGLU",
    "TransformerBlock",
    "apply_rotary",
    "attend",
    "build_mlp",
    "build_norm",
    "drop_path_rates",
]
