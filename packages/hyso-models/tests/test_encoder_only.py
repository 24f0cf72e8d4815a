"""Encoder-only: the seed's call, bidirectionality, padding invariance."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hyso.core.models import HysoEncoderOnly
from hyso.core.models.encoder_only import HysoEncoderOnly as Direct

V = 97


@pytest.fixture(scope="module")
def encoder(make_model):
    return make_model("encoder_only").eval()


def test_seed_call_works_with_defaults() -> None:
    model = HysoEncoderOnly(dim=512, num_layers=2, vocab_size=261)
    assert Direct is HysoEncoderOnly
    assert model.config.num_heads == 8 and model.vocab_size == 261
    assert not model.is_encoder_decoder
    logits = model(torch.randint(0, 261, (3, 32)))
    assert logits.shape == (3, 32, 261)
    assert torch.isfinite(logits).all()


def test_every_position_sees_every_token(make_model) -> None:
    model = make_model("encoder_only").eval()
    ids = torch.randint(0, V, (1, 10))
    changed = ids.clone()
    changed[0, -1] = (ids[0, -1] + 1) % V
    with torch.no_grad():
        assert not torch.allclose(model(ids)[:, 0], model(changed)[:, 0])


@settings(max_examples=20, deadline=None)
@given(length=st.integers(1, 20), pad=st.integers(1, 20), pad_id=st.integers(0, V - 1))
def test_appended_masked_padding_never_changes_real_token_logits(
    encoder, length, pad, pad_id
) -> None:
    model = encoder
    ids = torch.randint(0, V, (2, length), generator=torch.Generator().manual_seed(length))
    padded = torch.cat([ids, torch.full((2, pad), pad_id)], dim=1)
    mask = torch.cat([torch.ones(2, length), torch.zeros(2, pad)], dim=1)
    with torch.no_grad():
        plain = model(ids)
        masked = model(padded, attention_mask=mask)
    assert torch.allclose(masked[:, :length], plain, atol=1e-5)
    assert torch.isfinite(masked).all()


def test_rows_padded_differently_in_one_batch(make_model) -> None:
    model = make_model("encoder_only").eval()
    a = torch.randint(0, V, (1, 8))
    b = torch.randint(0, V, (1, 5))
    batch = torch.zeros(2, 8, dtype=torch.long)
    batch[0], batch[1, :5] = a[0], b[0]
    mask = torch.tensor([[1] * 8, [1] * 5 + [0] * 3])
    with torch.no_grad():
        out = model(batch, attention_mask=mask)
        assert torch.allclose(out[0], model(a)[0], atol=1e-5)
        assert torch.allclose(out[1, :5], model(b)[0], atol=1e-5)
        # an all-ones mask is the same as no mask
        assert torch.equal(model(a, attention_mask=torch.ones(1, 8)), model(a))
