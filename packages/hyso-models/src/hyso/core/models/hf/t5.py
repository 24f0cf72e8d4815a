"""``T5ForConditionalGeneration``: a relative position bias per stack (bucketed, shared
by the stack's layers), unscaled attention, T5's RMS norm, and the ReLU (v1.0) or
gated-GELU (v1.1) feed-forward; a tied head scales the decoder output by
``d_model ** -0.5``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .base import HFArchitecture, Rule, Unsupported, hf_bool, hf_float, hf_int, require
from .weights import HFFormatError

if TYPE_CHECKING:
    from hyso.core.models.config import TransformerConfig

__all__ = ["T5Architecture"]

# feed_forward_proj -> hyso mlp kind.
FEED_FORWARDS = {"relu": "dense_relu", "gated-gelu": "geglu"}


class T5Architecture(HFArchitecture):
    """``T5ForConditionalGeneration``."""

    architecture: ClassVar[str] = "T5ForConditionalGeneration"
    model_type: ClassVar[str] = "t5"
    tied_head: ClassVar[str] = "lm_head.weight"
    # The per-stack copies of the shared embedding some checkpoints store.
    ignored: ClassVar[tuple[str, ...]] = (r"^(encoder|decoder)\.embed_tokens\.weight$",)
    embedding: ClassVar[str] = "shared.weight"

    @property
    def family(self) -> str:
        """T5 loads as the encoder-decoder family."""
        return "encoder_decoder"

    def count_layers(self, names: list[str], *, decoder: bool = False) -> int:
        """Blocks of the encoder, or of the decoder."""
        pattern = r"^decoder\.block\.(\d+)\." if decoder else r"^encoder\.block\.(\d+)\."
        return len({int(m.group(1)) for n in names if (m := re.match(pattern, n))})

    def hyso_config(self, hf: Mapping[str, Any], path: Path) -> dict[str, Any]:
        """hyso config values; fields that would change the math are refused."""
        proj = hf.get("feed_forward_proj", "relu")
        if proj not in FEED_FORWARDS:
            raise HFFormatError(
                f"{path}: feed_forward_proj {proj!r} is not supported ({', '.join(FEED_FORWARDS)})"
            )
        dim = hf_int(hf, "d_model", path)
        layers = hf_int(hf, "num_layers", path)
        tied = hf_bool(hf, "tie_word_embeddings", path, True)
        start = hf.get("decoder_start_token_id", 0)
        return {
            "dim": dim,
            "num_layers": layers,
            "num_decoder_layers": hf_int(hf, "num_decoder_layers", path, layers),
            "vocab_size": hf_int(hf, "vocab_size", path),
            "num_heads": hf_int(hf, "num_heads", path),
            "head_size": hf_int(hf, "d_kv", path),
            "hidden_dim": hf_int(hf, "d_ff", path),
            "max_seq_len": hf_int(hf, "n_positions", path, 512),
            "mlp": FEED_FORWARDS[proj],
            "norm": "rmsnorm",
            "norm_eps": hf_float(hf, "layer_norm_epsilon", path, 1e-6),
            "pos_encoding": "relative",
            "rel_buckets": hf_int(hf, "relative_attention_num_buckets", path, 32),
            "rel_max_distance": hf_int(hf, "relative_attention_max_distance", path, 128),
            "attn_scale": 1.0,
            "tie_embeddings": tied,
            # transformers 5 records the scaling apart from the tying (older: tied = scaled).
            "logit_scale": dim**-0.5 if hf_bool(hf, "scale_decoder_outputs", path, tied) else 1.0,
            "decoder_start_token_id": 0 if start is None else start,
        }

    def hf_config(self, config: TransformerConfig, family: str) -> dict[str, Any]:
        """A T5 ``config.json``, or :class:`Unsupported` naming the first feature it lacks."""
        proj = {v: k for k, v in FEED_FORWARDS.items()}.get(config.mlp)
        logit_scale = getattr(config, "logit_scale", 1.0)
        wanted = {
            "family": (family, "encoder_decoder"),
            "pos_encoding": (config.pos_encoding, "relative"),
            "norm": (config.norm, "rmsnorm"),
            "attn_scale": (config.attn_scale, 1.0),
            "bias": ((config.bias, config.qkv_bias), (False, False)),
            "num_kv_heads": (config.num_kv_heads, config.num_heads),
            "mlp": (config.mlp if proj else None, config.mlp),
            "logit_scale": (logit_scale in (1.0, config.dim**-0.5), True),
        }
        require(wanted)
        if not config.tie_embeddings:
            # transformers 5 ties T5's head to the embedding whatever the config says.
            raise Unsupported("an untied output head (transformers ties T5's head)")
        return {
            "architectures": [self.architecture],
            "model_type": self.model_type,
            "d_model": config.dim,
            "d_kv": config.head_dim,
            "d_ff": config.hidden_dim,
            "num_layers": config.num_layers,
            "num_decoder_layers": config.num_decoder_layers,  # type: ignore[attr-defined]
            "num_heads": config.num_heads,
            "vocab_size": config.vocab_size,
            "n_positions": config.max_seq_len,
            "feed_forward_proj": proj,
            "layer_norm_epsilon": config.norm_eps,
            "relative_attention_num_buckets": config.rel_buckets,
            "relative_attention_max_distance": config.rel_max_distance,
            "tie_word_embeddings": config.tie_embeddings,
            "scale_decoder_outputs": logit_scale != 1.0,
            "decoder_start_token_id": config.decoder_start_token_id,  # type: ignore[attr-defined]
            "pad_token_id": config.decoder_start_token_id,  # type: ignore[attr-defined]
            "is_encoder_decoder": True,
        }

    def rules(self, config: TransformerConfig) -> dict[str, Rule]:
        """hyso tensor -> transformers tensors (q/k/v, k/v and wi_0/wi_1 fused in hyso)."""
        inner = config.num_heads * config.head_dim  # type: ignore[operator]
        rel = "layer.0.SelfAttention.relative_attention_bias.weight"
        rules = {
            "tok_emb.weight": Rule(("shared.weight",)),
            "pos_encoding.emb.weight": Rule((f"encoder.block.0.{rel}",)),
            "decoder_pos_encoding.emb.weight": Rule((f"decoder.block.0.{rel}",)),
            "encoder_norm.weight": Rule(("encoder.final_layer_norm.weight",)),
            "decoder_norm.weight": Rule(("decoder.final_layer_norm.weight",)),
        }
        stacks = (("encoder", config.num_layers), ("decoder", config.num_decoder_layers))  # type: ignore[attr-defined]
        for stack, count in stacks:
            for i in range(count):
                rules.update(self._block(config, stack, i, inner))
        if not config.tie_embeddings:
            rules["lm_head.weight"] = Rule(("lm_head.weight",))
        return rules

    def _block(self, config: TransformerConfig, stack: str, i: int, inner: int) -> dict[str, Rule]:
        src, dst = f"{stack}.block.{i}.layer.", f"{stack}_blocks.{i}."
        attn = f"{src}0.SelfAttention."
        rules = {
            f"{dst}attn_norm.weight": Rule((f"{src}0.layer_norm.weight",)),
            f"{dst}attn.qkv.weight": Rule(
                tuple(f"{attn}{p}.weight" for p in "qkv"), (inner, inner, inner)
            ),
            f"{dst}attn.out.weight": Rule((f"{attn}o.weight",)),
        }
        ff = 1
        if stack == "decoder":
            cross = f"{src}1.EncDecAttention."
            rules[f"{dst}cross_norm.weight"] = Rule((f"{src}1.layer_norm.weight",))
            rules[f"{dst}cross.q.weight"] = Rule((f"{cross}q.weight",))
            rules[f"{dst}cross.kv.weight"] = Rule(
                (f"{cross}k.weight", f"{cross}v.weight"), (inner, inner)
            )
            rules[f"{dst}cross.out.weight"] = Rule((f"{cross}o.weight",))
            ff = 2
        dense = f"{src}{ff}.DenseReluDense."
        rules[f"{dst}mlp_norm.weight"] = Rule((f"{src}{ff}.layer_norm.weight",))
        if config.mlp == "geglu":
            hidden: int = config.hidden_dim  # type: ignore[assignment]
            wi = (f"{dense}wi_0.weight", f"{dense}wi_1.weight")
            rules[f"{dst}mlp.gate_up.weight"] = Rule(wi, (hidden, hidden))
        else:
            rules[f"{dst}mlp.fc.weight"] = Rule((f"{dense}wi.weight",))
        rules[f"{dst}mlp.down.weight"] = Rule((f"{dense}wo.weight",))
        return rules
