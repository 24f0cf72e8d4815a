"""GPT-2 checkpoints load exactly and export back exactly."""

from __future__ import annotations

import pytest
import torch
import transformers

from hyso.core.models import load_hf

CONFIGS = {
    "gpt2-tied": dict(vocab_size=101, n_embd=48, n_layer=2, n_head=4, n_positions=64),
    # Heads of 5, an n_inner of its own, untied output head.
    "gpt2-untied-odd-heads": dict(
        vocab_size=89, n_embd=40, n_layer=3, n_head=8, n_inner=72, n_positions=48,
        tie_word_embeddings=False,
    ),
    "gpt2-pytorch-tanh": dict(
        vocab_size=64, n_embd=32, n_layer=1, n_head=2, n_positions=64,
        activation_function="gelu_pytorch_tanh", layer_norm_epsilon=1e-6,
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_gpt2_parity(name, tmp_path, parity):
    config = transformers.GPT2Config(**CONFIGS[name])
    parity.check_family(config, tmp_path)


def test_checkpoints_without_the_transformer_prefix_load(tmp_path):
    torch.manual_seed(0)
    config = transformers.GPT2Config(**CONFIGS["gpt2-tied"])
    hf_model = transformers.GPT2LMHeadModel(config).eval()
    hf_model.transformer.save_pretrained(tmp_path / "bare")  # names "h.0...", "wte.weight"
    config.architectures = ["GPT2LMHeadModel"]  # as the hub's gpt2 folder says
    config.save_pretrained(tmp_path / "bare")
    model = load_hf(tmp_path / "bare").eval()
    ids = torch.randint(0, 101, (2, 10))
    with torch.no_grad():
        assert (model(ids) - hf_model(ids).logits).abs().max() <= 1e-5
