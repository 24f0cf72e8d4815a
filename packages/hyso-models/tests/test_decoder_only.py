"""Decoder-only: causality, padding, KV-cache generation, sampling, EOS, input checks."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hyso.core.models import HysoDecoderOnly

V = 97  # vocab size of the debug config


@pytest.fixture(scope="module")
def model(make_model) -> HysoDecoderOnly:
    return make_model("decoder_only").eval()


@settings(max_examples=25, deadline=None)
@given(t=st.integers(0, 19), new=st.integers(0, V - 1), seed=st.integers(0, 1000))
def test_changing_token_t_never_changes_earlier_logits(model, t: int, new: int, seed: int):
    ids = torch.randint(0, V, (2, 20), generator=torch.Generator().manual_seed(seed))
    changed = ids.clone()
    changed[:, t] = new
    with torch.no_grad():
        a, b = model(ids), model(changed)
    assert torch.equal(a[:, :t], b[:, :t])
    if (ids[:, t] != new).all() and t < 19:
        assert not torch.allclose(a[:, t:], b[:, t:])  # later positions do see it


def test_left_padding_leaves_real_token_logits_unchanged(model) -> None:
    ids = torch.randint(0, V, (1, 12), generator=torch.Generator().manual_seed(3))
    padded = torch.cat([torch.zeros(1, 5, dtype=torch.long), ids], dim=1)
    mask = torch.cat([torch.zeros(1, 5), torch.ones(1, 12)], dim=1)
    with torch.no_grad():
        plain = model(ids)
        masked = model(padded, attention_mask=mask)
        unmasked = model(padded)
    assert torch.allclose(masked[:, 5:], plain, atol=1e-4)  # RoPE is relative
    assert not torch.allclose(unmasked[:, 5:], plain, atol=1e-4)


def greedy_without_cache(model, ids: torch.Tensor, steps: int):
    """Reference: argmax over full forward passes of the whole sequence, no cache."""
    tokens, logits = ids, []
    with torch.no_grad():
        for _ in range(steps):
            last = model(tokens)[:, -1]
            logits.append(last)
            tokens = torch.cat([tokens, last.argmax(-1, keepdim=True)], dim=1)
    return tokens, torch.stack(logits, dim=1)


@pytest.mark.parametrize("batch", [1, 3])
def test_greedy_generate_with_cache_equals_full_forward_argmax(model, batch: int) -> None:
    ids = torch.randint(0, V, (batch, 7), generator=torch.Generator().manual_seed(batch))
    tokens, logits = model.generate(ids, 30, return_logits=True)
    expected_tokens, expected_logits = greedy_without_cache(model, ids, 30)
    assert torch.equal(tokens, expected_tokens)
    assert (logits - expected_logits).abs().max() < 1e-4


def test_left_padded_batch_generates_what_each_row_generates_alone(model) -> None:
    gen = torch.Generator().manual_seed(5)
    prompts = [torch.randint(1, V, (n,), generator=gen) for n in (9, 4, 6)]
    width = max(len(p) for p in prompts)
    ids = torch.zeros(3, width, dtype=torch.long)
    mask = torch.zeros(3, width, dtype=torch.long)
    for row, p in enumerate(prompts):
        ids[row, width - len(p) :] = p
        mask[row, width - len(p) :] = 1
    batched = model.generate(ids, 12, attention_mask=mask)
    for row, p in enumerate(prompts):
        alone = model.generate(p[None], 12)
        assert torch.equal(batched[row, width:], alone[0, len(p) :])


def test_right_padding_is_rejected_for_generation(model) -> None:
    ids = torch.ones(2, 4, dtype=torch.long)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    with pytest.raises(ValueError, match="left-padded"):
        model.generate(ids, 3, attention_mask=mask)


def test_each_row_stops_at_eos_and_is_padded_after(model) -> None:
    ids = torch.randint(0, V, (4, 5), generator=torch.Generator().manual_seed(8))
    free = model.generate(ids, 20)[:, 5:]
    eos = int(free[0, 2])  # row 0 emits this token third, so it must stop there
    out = model.generate(ids, 20, eos_token_id=eos, pad_token_id=-1)[:, 5:]
    for row in range(4):
        hits = (free[row] == eos).nonzero()
        if len(hits) == 0:
            assert torch.equal(out[row, : free.shape[1]], free[row, : out.shape[1]])
            continue
        stop = int(hits[0])
        assert torch.equal(out[row, : stop + 1], free[row, : stop + 1])
        assert (out[row, stop + 1 :] == -1).all()
    assert out.shape[1] <= 20
    if all((free[row] == eos).any() for row in range(4)):
        assert out.shape[1] < 20  # stopped early once every row finished


def test_sampling_is_reproducible_and_filters_tokens(model) -> None:
    ids = torch.randint(0, V, (2, 5), generator=torch.Generator().manual_seed(9))
    greedy = model.generate(ids, 10)

    def sample(seed: int, **kw):
        return model.generate(
            ids, 10, do_sample=True, generator=torch.Generator().manual_seed(seed), **kw
        )

    assert torch.equal(sample(1), sample(1))
    assert not torch.equal(sample(1, temperature=5.0), sample(2, temperature=5.0))
    assert torch.equal(sample(3, top_k=1), greedy)  # one candidate left: the argmax
    assert torch.equal(sample(4, top_p=1e-6), greedy)  # nucleus of one token
    assert torch.equal(model.generate(ids, 10, do_sample=True, temperature=0.0), greedy)


def test_top_k_sampling_only_draws_from_the_k_best(model) -> None:
    ids = torch.randint(0, V, (1, 5), generator=torch.Generator().manual_seed(10))
    with torch.no_grad():
        allowed = set(model(ids)[0, -1].topk(3).indices.tolist())
    for seed in range(20):
        out = model.generate(
            ids,
            1,
            do_sample=True,
            top_k=3,
            temperature=3.0,
            generator=torch.Generator().manual_seed(seed),
        )
        assert int(out[0, -1]) in allowed


def test_generate_restores_training_mode(make_model) -> None:
    model = make_model("decoder_only", dropout=0.5).train()
    ids = torch.randint(0, V, (1, 4))
    assert torch.equal(model.generate(ids, 5), model.generate(ids, 5))  # no dropout inside
    assert model.training


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m: m(torch.randint(0, V, (1, 65))), "sequence length 65 exceeds max_seq_len 64"),
        (lambda m: m(torch.tensor([[1, V]])), f"token id {V} is out of range for vocab_size {V}"),
        (lambda m: m(torch.tensor([[1, -1]])), "token id -1 is out of range"),
        (lambda m: m(torch.ones(1, 3)), "integer token ids"),
        (lambda m: m(torch.ones(3, dtype=torch.long)), "shape \\(batch, seq_len\\)"),
        (
            lambda m: m(torch.ones(1, 3, dtype=torch.long), attention_mask=torch.ones(1, 4)),
            "attention_mask",
        ),
        (lambda m: m.generate(torch.ones(1, 60, dtype=torch.long), 5), "65 exceeds max_seq_len"),
        (lambda m: m.generate(torch.ones(1, 3, dtype=torch.long), 0), "max_new_tokens"),
        (lambda m: m.generate(torch.ones(1, 3, dtype=torch.long), 2, top_k=0), "top_k"),
        (lambda m: m.generate(torch.ones(1, 3, dtype=torch.long), 2, top_p=1.5), "top_p"),
        (lambda m: m.generate(torch.ones(1, 3, dtype=torch.long), 2, temperature=-1), "temper"),
    ],
)
def test_bad_inputs_raise_clear_value_errors(model, call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call(model)
