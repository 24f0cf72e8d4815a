"""Encoder-decoder: encode/decode, causality of the decoder, source padding, generation."""

from __future__ import annotations

import pytest
import torch

V = 97


@pytest.fixture(scope="module")
def model(make_model):
    return make_model("encoder_decoder").eval()


def test_forward_is_decode_of_encode(model) -> None:
    src, tgt = torch.randint(0, V, (2, 11)), torch.randint(0, V, (2, 6))
    with torch.no_grad():
        logits = model(src, tgt)
        memory = model.encode(src)
        assert memory.shape == (2, 11, model.config.dim)
        assert logits.shape == (2, 6, V)
        assert torch.equal(model.decode(tgt, memory), logits)
    assert model.is_encoder_decoder


def test_decoder_is_causal_and_reads_the_source(model) -> None:
    src, tgt = torch.randint(0, V, (1, 8)), torch.randint(0, V, (1, 9))
    changed_tgt = tgt.clone()
    changed_tgt[0, 4] = (tgt[0, 4] + 1) % V
    changed_src = src.clone()
    changed_src[0, -1] = (src[0, -1] + 1) % V
    with torch.no_grad():
        base = model(src, tgt)
        assert torch.equal(model(src, changed_tgt)[:, :4], base[:, :4])
        assert not torch.allclose(model(src, changed_tgt)[:, 4:], base[:, 4:])
        assert not torch.allclose(model(changed_src, tgt)[:, 0], base[:, 0])


def test_source_padding_is_ignored(model) -> None:
    src, tgt = torch.randint(0, V, (1, 7)), torch.randint(0, V, (1, 5))
    padded = torch.cat([src, torch.zeros(1, 4, dtype=torch.long)], dim=1)
    mask = torch.tensor([[1] * 7 + [0] * 4])
    with torch.no_grad():
        assert torch.allclose(model(padded, tgt, src_mask=mask), model(src, tgt), atol=1e-5)
        generated = model.generate(padded, 6, src_mask=mask)
    assert torch.equal(generated, model.generate(src, 6))


def test_greedy_generate_equals_full_forward_argmax(model) -> None:
    src = torch.randint(0, V, (3, 10), generator=torch.Generator().manual_seed(4))
    tokens, logits = model.generate(src, 25, return_logits=True, decoder_start_token_id=3)
    assert (tokens[:, 0] == 3).all()
    tgt, expected = torch.full((3, 1), 3), []
    with torch.no_grad():
        for _ in range(25):
            last = model(src, tgt)[:, -1]
            expected.append(last)
            tgt = torch.cat([tgt, last.argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(tokens, tgt)
    assert (logits - torch.stack(expected, dim=1)).abs().max() < 1e-4


def test_generate_stops_rows_at_eos(model) -> None:
    src = torch.randint(0, V, (2, 6), generator=torch.Generator().manual_seed(6))
    free = model.generate(src, 15)
    eos = int(free[0, 3])
    out = model.generate(src, 15, eos_token_id=eos, pad_token_id=-5)
    stop = 1 + int((free[0, 1:] == eos).nonzero()[0])  # position 0 is the start token
    assert torch.equal(out[0, : stop + 1], free[0, : stop + 1])
    assert (out[0, stop + 1 :] == -5).all()


def test_bad_inputs(model) -> None:
    with pytest.raises(ValueError, match="src_ids: token id 97 is out of range"):
        model(torch.tensor([[97]]), torch.tensor([[1]]))
    with pytest.raises(ValueError, match="tgt_ids: sequence length 65 exceeds max_seq_len 64"):
        model(torch.tensor([[1]]), torch.ones(1, 65, dtype=torch.long))
    with pytest.raises(ValueError, match="src_mask has shape"):
        model(
            torch.ones(1, 3, dtype=torch.long),
            torch.ones(1, 2, dtype=torch.long),
            src_mask=torch.ones(1, 4),
        )
    with pytest.raises(ValueError, match="memory has shape"):
        model.decode(torch.ones(2, 3, dtype=torch.long), torch.zeros(1, 4, model.config.dim))
    with pytest.raises(ValueError, match="decoder_start_token_id 100"):
        model.generate(torch.ones(1, 3, dtype=torch.long), 2, decoder_start_token_id=100)
    with pytest.raises(ValueError, match="exceeds max_seq_len 64"):
        model.generate(torch.ones(1, 3, dtype=torch.long), 64)
