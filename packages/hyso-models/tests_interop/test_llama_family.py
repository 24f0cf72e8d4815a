"""Llama, Mistral and Qwen2 checkpoints load exactly and export back exactly."""

from __future__ import annotations

import pytest
import transformers

LLAMA3_SCALING = {
    "rope_type": "llama3",
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 16,
}

CONFIGS = {
    # GQA, tied, head_dim (16) other than hidden_size // heads (12), llama3 scaling.
    "llama-gqa-tied-llama3": lambda: transformers.LlamaConfig(
        vocab_size=101,
        hidden_size=48,
        intermediate_size=72,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=64,
        rope_theta=500.0,
        rope_scaling=LLAMA3_SCALING,
        tie_word_embeddings=True,
        rms_norm_eps=1e-5,
    ),
    # Untied, five heads of 8, no GQA, another rope_theta.
    "llama-untied-odd-heads": lambda: transformers.LlamaConfig(
        vocab_size=89,
        hidden_size=40,
        intermediate_size=56,
        num_hidden_layers=3,
        num_attention_heads=5,
        num_key_value_heads=5,
        max_position_embeddings=64,
        rope_theta=1000.0,
        tie_word_embeddings=False,
    ),
    "mistral-gqa": lambda: transformers.MistralConfig(
        vocab_size=97,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=1,
        max_position_embeddings=64,
        sliding_window=None,
    ),
    "qwen2-bias-gqa": lambda: transformers.Qwen2Config(
        vocab_size=103,
        hidden_size=48,
        intermediate_size=80,
        num_hidden_layers=2,
        num_attention_heads=6,
        num_key_value_heads=2,
        max_position_embeddings=64,
        tie_word_embeddings=False,
    ),
    "qwen2-tied": lambda: transformers.Qwen2Config(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=64,
        tie_word_embeddings=True,
    ),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_llama_family_parity(name, tmp_path, parity):
    parity.check_family(CONFIGS[name](), tmp_path)
