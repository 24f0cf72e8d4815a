"""BERT masked-LM checkpoints load exactly and export back exactly."""

from __future__ import annotations

import pytest
import torch
import transformers

from hyso.core.models import load_hf

CONFIGS = {
    "bert-tied": dict(
        vocab_size=101, hidden_size=48, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=80, max_position_embeddings=64,
    ),
    # Heads of 5, three token types, an untied output head, the tanh GELU.
    "bert-untied-odd-heads": dict(
        vocab_size=89, hidden_size=40, num_hidden_layers=3, num_attention_heads=8,
        intermediate_size=72, max_position_embeddings=48, type_vocab_size=3,
        tie_word_embeddings=False, hidden_act="gelu_new", layer_norm_eps=1e-6,
    ),
}  # fmt: skip


def logits_diff(hf_model, model, ids, mask, types) -> float:
    with torch.no_grad():
        theirs = hf_model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits
        ours = model(ids, attention_mask=mask, token_type_ids=types)
    keep = mask.bool()
    return float((theirs[keep] - ours[keep]).abs().max())


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_bert_parity(name, tmp_path, parity):
    config = transformers.BertConfig(**CONFIGS[name], initializer_range=0.2)
    torch.manual_seed(0)
    hf_model = transformers.BertForMaskedLM(config).eval()
    with torch.no_grad():
        for pname, p in hf_model.named_parameters():
            if pname.endswith("bias") or "LayerNorm" in pname:
                p.add_(torch.randn_like(p) * 0.1)
    hf_model.save_pretrained(tmp_path / "hf")
    ids, mask = parity.padded_batch(config.vocab_size)
    types = torch.zeros_like(ids)
    types[:, 7:] = config.type_vocab_size - 1
    model = load_hf(tmp_path / "hf").eval()
    assert logits_diff(hf_model, model, ids, mask, types) <= parity.LOGIT_TOL
    assert logits_diff(hf_model, model, ids, mask, None) <= parity.LOGIT_TOL
    model.to_hf(tmp_path / "out")
    back = transformers.AutoModelForMaskedLM.from_pretrained(tmp_path / "out").eval()
    assert type(back) is transformers.BertForMaskedLM
    assert logits_diff(back, load_hf(tmp_path / "out"), ids, mask, types) <= parity.LOGIT_TOL
    assert logits_diff(back, model, ids, mask, types) <= parity.LOGIT_TOL
    # Untied, transformers 5 gives the decoder its own bias and leaves this one unread.
    unused = () if config.tie_word_embeddings else ("cls.predictions.bias",)
    parity.check_bf16_roundtrip(hf_model, tmp_path, transformers.AutoModelForMaskedLM, unused)
