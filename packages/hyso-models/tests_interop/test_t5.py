"""T5 checkpoints (v1.0 ReLU, v1.1 gated GELU) load exactly and export back exactly."""

from __future__ import annotations

import pytest
import torch
import transformers

from hyso.core.models import load_hf

CONFIGS = {
    # v1.0: ReLU, tied (the decoder output is scaled by d_model ** -0.5).
    "t5-relu-tied": dict(
        vocab_size=101, d_model=48, d_kv=12, d_ff=80, num_layers=2, num_heads=4,
        relative_attention_num_buckets=8, relative_attention_max_distance=20,
        feed_forward_proj="relu", tie_word_embeddings=True,
    ),
    # v1.1: gated GELU, unscaled decoder output, d_kv other than d_model // heads.
    "t5-geglu-untied": dict(
        vocab_size=89, d_model=40, d_kv=6, d_ff=56, num_layers=2, num_decoder_layers=2,
        num_heads=5, relative_attention_num_buckets=16, relative_attention_max_distance=32,
        feed_forward_proj="gated-gelu", tie_word_embeddings=False,
    ),
}  # fmt: skip


def run_both(hf_model, model, src, src_mask, tgt):
    with torch.no_grad():
        theirs = hf_model(input_ids=src, attention_mask=src_mask, decoder_input_ids=tgt).logits
        ours = model(src, tgt, src_mask=src_mask)
    return float((theirs - ours).abs().max())


def greedy(hf_model, model, src, src_mask, parity):
    with torch.no_grad():
        theirs = hf_model.generate(
            input_ids=src, attention_mask=src_mask, do_sample=False,
            max_new_tokens=parity.NEW_TOKENS, min_new_tokens=parity.NEW_TOKENS,
            eos_token_id=None, decoder_start_token_id=0, pad_token_id=0,
        )  # fmt: skip
    ours = model.generate(src, parity.NEW_TOKENS, src_mask=src_mask)
    assert len(set(theirs[:, 1:].flatten().tolist())) >= 6, theirs  # not a degenerate run
    assert torch.equal(ours, theirs)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_t5_parity(name, tmp_path, parity):
    config = transformers.T5Config(
        **CONFIGS[name], initializer_factor=4.0, decoder_start_token_id=0
    )
    torch.manual_seed(0)
    hf_model = transformers.T5ForConditionalGeneration(config).eval()
    with torch.no_grad():
        for pname, p in hf_model.named_parameters():
            if "layer_norm" in pname:
                p.add_(torch.randn_like(p) * 0.1)
    hf_model.save_pretrained(tmp_path / "hf")
    src, src_mask = parity.padded_batch(config.vocab_size)
    tgt = torch.randint(1, config.vocab_size, (2, 9), generator=torch.Generator().manual_seed(5))
    tgt[:, 0] = 0
    model = load_hf(tmp_path / "hf").eval()
    assert run_both(hf_model, model, src, src_mask, tgt) <= parity.LOGIT_TOL
    greedy(hf_model, model, src, src_mask, parity)
    model.to_hf(tmp_path / "out")
    back = transformers.AutoModelForSeq2SeqLM.from_pretrained(tmp_path / "out").eval()
    assert type(back) is transformers.T5ForConditionalGeneration
    again = load_hf(tmp_path / "out").eval()
    assert run_both(back, again, src, src_mask, tgt) <= parity.LOGIT_TOL
    greedy(back, again, src, src_mask, parity)
    parity.check_bf16_roundtrip(hf_model, tmp_path, transformers.AutoModelForSeq2SeqLM)
