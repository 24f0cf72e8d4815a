"""``LlamaForCausalLM``, ``MistralForCausalLM`` and ``Qwen2ForCausalLM``.

All three are the same network: RMSNorm pre-norm blocks, rotary positions
(halves rotated, as transformers stores the weights), grouped-query attention
and a SwiGLU MLP. Qwen2 adds biases to q/k/v; Llama may scale its rotary
frequencies (``llama3``); Mistral may restrict attention to a sliding window,
which changes nothing while sequences are no longer than the window, so the
loaded model's ``max_seq_len`` is capped at it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .base import HFArchitecture, Rule, Unsupported, hf_bool, hf_float, hf_int, require
from .weights import HFFormatError

if TYPE_CHECKING:
    from hyso.core.models.config import TransformerConfig

__all__ = ["LlamaArchitecture", "MistralArchitecture", "Qwen2Architecture"]

SCALING_KEYS = ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings")


class LlamaArchitecture(HFArchitecture):
    """``LlamaForCausalLM``."""

    architecture: ClassVar[str] = "LlamaForCausalLM"
    model_type: ClassVar[str] = "llama"
    tied_head: ClassVar[str] = "lm_head.weight"
    ignored: ClassVar[tuple[str, ...]] = (r"rotary_emb\.inv_freq$",)
    embedding: ClassVar[str] = "model.embed_tokens.weight"

    def hyso_config(self, hf: Mapping[str, Any], path: Path) -> dict[str, Any]:
        """hyso config values; fields that would change the math are refused."""
        act = hf.get("hidden_act", "silu")
        if act not in ("silu", "swish"):
            raise HFFormatError(f"{path}: hidden_act {act!r} is not supported (only silu)")
        layer_types = hf.get("layer_types")
        if layer_types is not None and any(t != "full_attention" for t in layer_types):
            raise HFFormatError(
                f"{path}: layer_types {sorted(set(layer_types))} is not supported "
                "(only full_attention)"
            )
        dim = hf_int(hf, "hidden_size", path)
        heads = hf_int(hf, "num_attention_heads", path)
        head_size = hf.get("head_dim")
        bias, qkv_bias = self._biases(hf, path)
        base, scaling = _rope(hf, path)
        return {
            "dim": dim,
            "num_layers": hf_int(hf, "num_hidden_layers", path),
            "vocab_size": hf_int(hf, "vocab_size", path),
            "num_heads": heads,
            "num_kv_heads": hf_int(hf, "num_key_value_heads", path, heads),
            "head_size": dim // heads if head_size is None else hf_int(hf, "head_dim", path),
            "hidden_dim": hf_int(hf, "intermediate_size", path),
            "max_seq_len": self._max_len(hf, path),
            "mlp": "swiglu",
            "norm": "rmsnorm",
            "norm_eps": hf_float(hf, "rms_norm_eps", path, 1e-6),
            "pos_encoding": "rope",
            "rope_base": base,
            "rope_scaling": scaling,
            "bias": bias,
            "qkv_bias": qkv_bias,
            "tie_embeddings": hf_bool(hf, "tie_word_embeddings", path, False),
        }

    def _biases(self, hf: Mapping[str, Any], path: Path) -> tuple[bool, bool]:
        attention = hf_bool(hf, "attention_bias", path, False)
        mlp = hf_bool(hf, "mlp_bias", path, False)
        if attention != mlp:
            raise HFFormatError(
                f"{path}: attention_bias {attention} with mlp_bias {mlp} is not supported "
                "(hyso puts biases on every projection or on none)"
            )
        return attention, attention

    def _max_len(self, hf: Mapping[str, Any], path: Path) -> int:
        return hf_int(hf, "max_position_embeddings", path, 2048)

    def hf_config(self, config: TransformerConfig, family: str) -> dict[str, Any]:
        """A ``config.json`` for transformers, or :class:`Unsupported`."""
        _require_llama_shape(config, family)
        if config.qkv_bias != config.bias:
            raise Unsupported("q/k/v biases without biases elsewhere (that is Qwen2)")
        out = self._common(config)
        out.update(attention_bias=config.bias, mlp_bias=config.bias)
        return out

    def _common(self, config: TransformerConfig) -> dict[str, Any]:
        rope: dict[str, Any] = {"rope_type": "default", "rope_theta": config.rope_base}
        if config.rope_scaling is not None:
            rope.update({k: config.rope_scaling[k] for k in SCALING_KEYS}, rope_type="llama3")
        return {
            "architectures": [self.architecture],
            "model_type": self.model_type,
            "hidden_size": config.dim,
            "num_hidden_layers": config.num_layers,
            "vocab_size": config.vocab_size,
            "num_attention_heads": config.num_heads,
            "num_key_value_heads": config.num_kv_heads,
            "head_dim": config.head_dim,
            "intermediate_size": config.hidden_dim,
            "max_position_embeddings": config.max_seq_len,
            "hidden_act": "silu",
            "rms_norm_eps": config.norm_eps,
            "tie_word_embeddings": config.tie_embeddings,
            "rope_parameters": rope,
            # The older spelling, for transformers before 5.
            "rope_theta": config.rope_base,
            "rope_scaling": None if config.rope_scaling is None else dict(rope),
        }

    def rules(self, config: TransformerConfig) -> dict[str, Rule]:
        """hyso tensor -> transformers tensors (q/k/v and gate/up are fused in hyso)."""
        q = config.num_heads * config.head_dim  # type: ignore[operator]
        kv = config.num_kv_heads * config.head_dim  # type: ignore[operator]
        hidden: int = config.hidden_dim  # type: ignore[assignment]
        rules = {"tok_emb.weight": Rule(("model.embed_tokens.weight",))}
        for i in range(config.num_layers):
            src, dst = f"model.layers.{i}.", f"blocks.{i}."
            attn = f"{src}self_attn."
            qkv = tuple(f"{attn}{p}_proj.weight" for p in "qkv")
            rules[f"{dst}attn_norm.weight"] = Rule((f"{src}input_layernorm.weight",))
            rules[f"{dst}attn.qkv.weight"] = Rule(qkv, (q, kv, kv))
            if config.qkv_bias:
                qkv_b = tuple(f"{attn}{p}_proj.bias" for p in "qkv")
                rules[f"{dst}attn.qkv.bias"] = Rule(qkv_b, (q, kv, kv))
            rules[f"{dst}attn.out.weight"] = Rule((f"{attn}o_proj.weight",))
            rules[f"{dst}mlp_norm.weight"] = Rule((f"{src}post_attention_layernorm.weight",))
            mlp = f"{src}mlp."
            gate_up = (f"{mlp}gate_proj.weight", f"{mlp}up_proj.weight")
            rules[f"{dst}mlp.gate_up.weight"] = Rule(gate_up, (hidden, hidden))
            rules[f"{dst}mlp.down.weight"] = Rule((f"{mlp}down_proj.weight",))
            if config.bias:
                rules[f"{dst}attn.out.bias"] = Rule((f"{attn}o_proj.bias",))
                gate_up_b = (f"{mlp}gate_proj.bias", f"{mlp}up_proj.bias")
                rules[f"{dst}mlp.gate_up.bias"] = Rule(gate_up_b, (hidden, hidden))
                rules[f"{dst}mlp.down.bias"] = Rule((f"{mlp}down_proj.bias",))
        rules["norm.weight"] = Rule(("model.norm.weight",))
        if not config.tie_embeddings:
            rules["lm_head.weight"] = Rule(("lm_head.weight",))
        return rules


class MistralArchitecture(LlamaArchitecture):
    """``MistralForCausalLM``: Llama with an optional sliding attention window."""

    architecture: ClassVar[str] = "MistralForCausalLM"
    model_type: ClassVar[str] = "mistral"

    def _biases(self, hf: Mapping[str, Any], path: Path) -> tuple[bool, bool]:
        return False, False

    def _max_len(self, hf: Mapping[str, Any], path: Path) -> int:
        longest = hf_int(hf, "max_position_embeddings", path, 4096 * 32)
        window = hf.get("sliding_window")
        if window is None:
            return longest
        # Within the window, sliding-window attention is full causal attention.
        return min(longest, hf_int(hf, "sliding_window", path))

    def hf_config(self, config: TransformerConfig, family: str) -> dict[str, Any]:
        """A Mistral ``config.json`` (no sliding window), or :class:`Unsupported`."""
        _require_llama_shape(config, family)
        if config.bias or config.qkv_bias:
            raise Unsupported("biases (Mistral has none)")
        if config.rope_scaling is not None:
            raise Unsupported("rope_scaling (Mistral has none)")
        return {**self._common(config), "sliding_window": None}


class Qwen2Architecture(LlamaArchitecture):
    """``Qwen2ForCausalLM``: Llama with biases on q/k/v."""

    architecture: ClassVar[str] = "Qwen2ForCausalLM"
    model_type: ClassVar[str] = "qwen2"

    def _biases(self, hf: Mapping[str, Any], path: Path) -> tuple[bool, bool]:
        if hf_bool(hf, "use_sliding_window", path, False):
            raise HFFormatError(f"{path}: use_sliding_window true is not supported")
        return False, True

    def _max_len(self, hf: Mapping[str, Any], path: Path) -> int:
        return hf_int(hf, "max_position_embeddings", path, 32768)

    def hf_config(self, config: TransformerConfig, family: str) -> dict[str, Any]:
        """A Qwen2 ``config.json``, or :class:`Unsupported`."""
        _require_llama_shape(config, family)
        if config.bias or not config.qkv_bias:
            raise Unsupported("q/k/v without biases, or biases beyond q/k/v (Qwen2 has q/k/v)")
        if config.rope_scaling is not None:
            raise Unsupported("rope_scaling (Qwen2 has no llama3 scaling)")
        return {**self._common(config), "use_sliding_window": False, "sliding_window": None}


def _require_llama_shape(config: TransformerConfig, family: str) -> None:
    """The features every Llama-style class needs; :class:`Unsupported` names the first missing."""
    wanted = {
        "family": (family, "decoder_only"),
        "pos_encoding": (config.pos_encoding, "rope"),
        "mlp": (config.mlp, "swiglu"),
        "norm": (config.norm, "rmsnorm"),
    }
    require(wanted)


def _rope(hf: Mapping[str, Any], path: Path) -> tuple[float, dict[str, Any] | None]:
    """``(rope_theta, llama3 scaling or None)`` from ``rope_parameters`` (transformers 5)
    or ``rope_theta`` + ``rope_scaling`` (before)."""
    params = hf.get("rope_parameters")
    if params is None:
        params = dict(hf.get("rope_scaling") or {"rope_type": "default"})
        params.setdefault("rope_theta", hf.get("rope_theta", 10000.0))
    if not isinstance(params, Mapping):
        raise HFFormatError(f"{path}: rope_parameters must be a mapping, got {params!r}")
    kind = params.get("rope_type", params.get("type", "default"))
    base = hf_float(params, "rope_theta", path, 10000.0)
    if kind == "default":
        return base, None
    if kind != "llama3":
        raise HFFormatError(
            f"{path}: rope scaling type {kind!r} is not supported (default or llama3)"
        )
    scaling: dict[str, Any] = {"rope_type": "llama3"}
    for key in SCALING_KEYS:
        scaling[key] = hf_float(params, key, path)
    if params.get("attention_factor") not in (None, 1, 1.0):
        raise HFFormatError(f"{path}: rope attention_factor {params['attention_factor']!r}")
    return base, scaling
