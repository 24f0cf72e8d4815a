"""``BertForMaskedLM``: learned positions and token types summed and normalised,
post-norm blocks, and the masked-LM head's transform (dense, GELU, LayerNorm)
before an output head with a bias."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .base import HFArchitecture, Rule, Unsupported, hf_bool, hf_float, hf_int, require
from .weights import HFFormatError

if TYPE_CHECKING:
    from hyso.core.models.config import TransformerConfig

__all__ = ["BertArchitecture"]

# transformers' hidden_act -> hyso mlp kind (the same GELU in the head transform).
ACTIVATIONS = {"gelu": "gelu_erf", "gelu_new": "gelu", "gelu_pytorch_tanh": "gelu"}


class BertArchitecture(HFArchitecture):
    """``BertForMaskedLM``."""

    architecture: ClassVar[str] = "BertForMaskedLM"
    model_type: ClassVar[str] = "bert"
    # Buffers, and the pooler / next-sentence head of pre-training checkpoints.
    ignored: ClassVar[tuple[str, ...]] = (
        r"embeddings\.(position_ids|token_type_ids)$",
        r"^bert\.pooler\.",
        r"^cls\.seq_relationship\.",
    )
    layer_pattern: ClassVar[str] = r"encoder\.layer\.(\d+)\."
    embedding: ClassVar[str] = "bert.embeddings.word_embeddings.weight"

    @property
    def family(self) -> str:
        """BERT loads as the encoder-only family."""
        return "encoder_only"

    def hyso_config(self, hf: Mapping[str, Any], path: Path) -> dict[str, Any]:
        """hyso config values; fields that would change the math are refused."""
        act = hf.get("hidden_act", "gelu")
        if act not in ACTIVATIONS:
            raise HFFormatError(
                f"{path}: hidden_act {act!r} is not supported ({', '.join(ACTIVATIONS)})"
            )
        kind = hf.get("position_embedding_type", "absolute")
        if kind != "absolute":
            raise HFFormatError(f"{path}: position_embedding_type {kind!r} is not supported")
        if hf_bool(hf, "is_decoder", path, False):
            raise HFFormatError(f"{path}: is_decoder true is not supported")
        return {
            "dim": hf_int(hf, "hidden_size", path),
            "num_layers": hf_int(hf, "num_hidden_layers", path),
            "vocab_size": hf_int(hf, "vocab_size", path),
            "num_heads": hf_int(hf, "num_attention_heads", path),
            "hidden_dim": hf_int(hf, "intermediate_size", path),
            "max_seq_len": hf_int(hf, "max_position_embeddings", path),
            "type_vocab_size": hf_int(hf, "type_vocab_size", path, 2),
            "mlp": ACTIVATIONS[act],
            "norm": "layernorm",
            "norm_eps": hf_float(hf, "layer_norm_eps", path, 1e-12),
            "pos_encoding": "learned",
            "block": "post_norm",
            "embed_norm": True,
            "head_transform": True,
            "bias": True,
            "qkv_bias": True,
            "tie_embeddings": hf_bool(hf, "tie_word_embeddings", path, True),
        }

    def hf_config(self, config: TransformerConfig, family: str) -> dict[str, Any]:
        """A BERT ``config.json``, or :class:`Unsupported` naming the first feature it lacks."""
        wanted = {
            "family": (family, "encoder_only"),
            "pos_encoding": (config.pos_encoding, "learned"),
            "block": (config.block, "post_norm"),
            "embed_norm": (config.embed_norm, True),
            "head_transform": (getattr(config, "head_transform", False), True),
            "norm": (config.norm, "layernorm"),
            "bias": (config.bias, True),
            "qkv_bias": (config.qkv_bias, True),
            "num_kv_heads": (config.num_kv_heads, config.num_heads),
            "head_size": (config.head_dim, config.dim // config.num_heads),  # type: ignore[operator]
        }
        require(wanted)
        act = {v: k for k, v in ACTIVATIONS.items() if k != "gelu_pytorch_tanh"}.get(config.mlp)
        if act is None or getattr(config, "type_vocab_size", 0) < 1:
            raise Unsupported(f"mlp {config.mlp!r} or type_vocab_size 0 (needs a GELU, >= 1)")
        return {
            "architectures": [self.architecture],
            "model_type": self.model_type,
            "hidden_size": config.dim,
            "num_hidden_layers": config.num_layers,
            "vocab_size": config.vocab_size,
            "num_attention_heads": config.num_heads,
            "intermediate_size": config.hidden_dim,
            "max_position_embeddings": config.max_seq_len,
            "type_vocab_size": config.type_vocab_size,  # type: ignore[attr-defined]
            "hidden_act": act,
            "layer_norm_eps": config.norm_eps,
            "position_embedding_type": "absolute",
            "tie_word_embeddings": config.tie_embeddings,
        }

    def rules(self, config: TransformerConfig) -> dict[str, Rule]:
        """hyso tensor -> transformers tensors (q/k/v fused in hyso)."""
        emb = "bert.embeddings."
        rules = {
            "tok_emb.weight": Rule((f"{emb}word_embeddings.weight",)),
            "type_emb.weight": Rule((f"{emb}token_type_embeddings.weight",)),
            "pos_encoding.emb.weight": Rule((f"{emb}position_embeddings.weight",)),
        }
        pairs = {
            "embed_norm": f"{emb}LayerNorm",
            "head_transform.0": "cls.predictions.transform.dense",
            "head_transform.2": "cls.predictions.transform.LayerNorm",
        }
        for i in range(config.num_layers):
            src = f"bert.encoder.layer.{i}."
            for part in ("weight", "bias"):
                qkv = tuple(f"{src}attention.self.{p}.{part}" for p in ("query", "key", "value"))
                rules[f"blocks.{i}.attn.qkv.{part}"] = Rule(qkv, (config.dim,) * 3)
            pairs.update({
                f"blocks.{i}.attn.out": f"{src}attention.output.dense",
                f"blocks.{i}.attn_norm": f"{src}attention.output.LayerNorm",
                f"blocks.{i}.mlp.fc": f"{src}intermediate.dense",
                f"blocks.{i}.mlp.down": f"{src}output.dense",
                f"blocks.{i}.mlp_norm": f"{src}output.LayerNorm",
            })  # fmt: skip
        for ours, theirs in pairs.items():
            rules[f"{ours}.weight"] = Rule((f"{theirs}.weight",))
            rules[f"{ours}.bias"] = Rule((f"{theirs}.bias",))
        # Tied, the decoder's bias is cls.predictions.bias; untied (transformers 5), the
        # decoder has its own, which is the one its forward adds.
        if config.tie_embeddings:
            rules["lm_head.bias"] = Rule(("cls.predictions.bias",))
        else:
            rules["lm_head.weight"] = Rule(("cls.predictions.decoder.weight",))
            rules["lm_head.bias"] = Rule(("cls.predictions.decoder.bias",))
        return rules

    def is_ignored(self, name: str, config: TransformerConfig) -> bool:
        """Buffers, pooler and NSP head; the copies of the head a checkpoint may store."""
        if config.tie_embeddings:
            unused = name in ("cls.predictions.decoder.weight", "cls.predictions.decoder.bias")
        else:
            unused = name == "cls.predictions.bias"
        return unused or super().is_ignored(name, config)
