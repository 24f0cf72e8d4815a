"""``GPT2LMHeadModel``: learned absolute positions, LayerNorm with bias, GELU (tanh),
biases on every projection, and ``Conv1D`` weights stored as ``(in, out)``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .base import HFArchitecture, Rule, hf_bool, hf_float, hf_int, require
from .weights import HFFormatError

if TYPE_CHECKING:
    from hyso.core.models.config import TransformerConfig

__all__ = ["GPT2Architecture"]

# transformers' names for the tanh approximation of GELU that hyso's GELU MLP uses.
TANH_GELUS = ("gelu_new", "gelu_pytorch_tanh", "gelu_fast")


class GPT2Architecture(HFArchitecture):
    """``GPT2LMHeadModel``."""

    architecture: ClassVar[str] = "GPT2LMHeadModel"
    model_type: ClassVar[str] = "gpt2"
    tied_head: ClassVar[str] = "lm_head.weight"
    # Causal-mask buffers that older checkpoints store.
    ignored: ClassVar[tuple[str, ...]] = (r"\.attn\.(masked_)?bias$",)
    layer_pattern: ClassVar[str] = r"\bh\.(\d+)\."
    embedding: ClassVar[str] = "transformer.wte.weight"
    # The hub's original checkpoints name tensors without the ``transformer.`` prefix.
    bare_prefix: ClassVar[str] = "transformer."

    def hyso_config(self, hf: Mapping[str, Any], path: Path) -> dict[str, Any]:
        """hyso config values; fields that would change the math are refused."""
        act = hf.get("activation_function", "gelu_new")
        if act not in TANH_GELUS:
            raise HFFormatError(
                f"{path}: activation_function {act!r} is not supported ({', '.join(TANH_GELUS)})"
            )
        if not hf_bool(hf, "scale_attn_weights", path, True):
            raise HFFormatError(f"{path}: scale_attn_weights false is not supported")
        if hf_bool(hf, "scale_attn_by_inverse_layer_idx", path, False):
            raise HFFormatError(f"{path}: scale_attn_by_inverse_layer_idx true is not supported")
        dim = hf_int(hf, "n_embd", path)
        inner = hf.get("n_inner")
        return {
            "dim": dim,
            "num_layers": hf_int(hf, "n_layer", path),
            "vocab_size": hf_int(hf, "vocab_size", path),
            "num_heads": hf_int(hf, "n_head", path),
            "hidden_dim": 4 * dim if inner is None else hf_int(hf, "n_inner", path),
            "max_seq_len": hf_int(hf, "n_positions", path),
            "mlp": "gelu",
            "norm": "layernorm",
            "norm_eps": hf_float(hf, "layer_norm_epsilon", path, 1e-5),
            "pos_encoding": "learned",
            "bias": True,
            "qkv_bias": True,
            "tie_embeddings": hf_bool(hf, "tie_word_embeddings", path, True),
        }

    def hf_config(self, config: TransformerConfig, family: str) -> dict[str, Any]:
        """A GPT-2 ``config.json``, or :class:`Unsupported` naming the first feature it lacks."""
        wanted = {
            "family": (family, "decoder_only"),
            "pos_encoding": (config.pos_encoding, "learned"),
            "mlp": (config.mlp, "gelu"),
            "norm": (config.norm, "layernorm"),
            "bias": (config.bias, True),
            "qkv_bias": (config.qkv_bias, True),
            "num_kv_heads": (config.num_kv_heads, config.num_heads),
            "head_size": (config.head_dim, config.dim // config.num_heads),  # type: ignore[operator]
        }
        require(wanted)
        return {
            "architectures": [self.architecture],
            "model_type": self.model_type,
            "n_embd": config.dim,
            "n_layer": config.num_layers,
            "n_head": config.num_heads,
            "n_inner": config.hidden_dim,
            "n_positions": config.max_seq_len,
            "vocab_size": config.vocab_size,
            "activation_function": "gelu_new",
            "layer_norm_epsilon": config.norm_eps,
            "tie_word_embeddings": config.tie_embeddings,
            "scale_attn_weights": True,
            "scale_attn_by_inverse_layer_idx": False,
            "reorder_and_upcast_attn": False,
        }

    def rules(self, config: TransformerConfig) -> dict[str, Rule]:
        """hyso tensor -> transformers tensor (``Conv1D`` weights transposed)."""
        rules = {
            "tok_emb.weight": Rule(("transformer.wte.weight",)),
            "pos_encoding.emb.weight": Rule(("transformer.wpe.weight",)),
        }
        pairs = {
            "attn_norm": ("ln_1", False),
            "attn.qkv": ("attn.c_attn", True),
            "attn.out": ("attn.c_proj", True),
            "mlp_norm": ("ln_2", False),
            "mlp.fc": ("mlp.c_fc", True),
            "mlp.down": ("mlp.c_proj", True),
        }
        for i in range(config.num_layers):
            for ours, (theirs, conv) in pairs.items():
                src = f"transformer.h.{i}.{theirs}"
                rules[f"blocks.{i}.{ours}.weight"] = Rule((f"{src}.weight",), transpose=conv)
                rules[f"blocks.{i}.{ours}.bias"] = Rule((f"{src}.bias",))
        rules["norm.weight"] = Rule(("transformer.ln_f.weight",))
        rules["norm.bias"] = Rule(("transformer.ln_f.bias",))
        if not config.tie_embeddings:
            rules["lm_head.weight"] = Rule(("lm_head.weight",))
        return rules
