"""The chunked head loss equals the plain one, and never keeps the whole logits."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from hyso.core.models import HysoDecoderOnly
from hyso.core.models.layers import linear_cross_entropy


def _plain(x: torch.Tensor, w: torch.Tensor, t: torch.Tensor, reduction: str) -> torch.Tensor:
    logits = (x @ w.T).float()
    return F.cross_entropy(logits.reshape(-1, w.shape[0]), t.reshape(-1), reduction=reduction)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(1, 40),
    dim=st.integers(1, 24),
    vocab=st.integers(2, 70),
    chunk=st.one_of(st.none(), st.integers(1, 50)),
    ignored=st.floats(0.0, 0.9),
    reduction=st.sampled_from(["mean", "sum"]),
    seed=st.integers(0, 2**16),
)
def test_loss_and_gradients_equal_the_plain_head(
    rows: int, dim: int, vocab: int, chunk: int | None, ignored: float, reduction: str, seed: int
) -> None:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, dim, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(vocab, dim, generator=g, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, vocab, (rows,), generator=g)
    t[torch.rand(rows, generator=g) < ignored] = -100
    t[0] = int(t[0].clamp(min=0))  # at least one counted target: a mean of none is NaN
    ours = linear_cross_entropy(x, w, t, reduction=reduction, chunk_rows=chunk)
    ref = _plain(x, w, t, reduction).double()
    torch.testing.assert_close(ours.double(), ref, rtol=1e-6, atol=1e-6)
    scale = torch.rand((), generator=g, dtype=torch.float64) + 0.5  # an upstream gradient
    got = torch.autograd.grad(ours * scale, (x, w))
    want = torch.autograd.grad(ref * scale, (x, w))
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


def test_batched_shapes_no_grad_and_a_frozen_weight() -> None:
    torch.manual_seed(0)
    x = torch.randn(3, 5, 8, requires_grad=True)
    w = torch.randn(30, 8)  # frozen (an adapter run's head): only x gets a gradient
    t = torch.randint(0, 30, (3, 5))
    t[1, 2:] = -100
    ours = linear_cross_entropy(x, w, t, chunk_rows=4)
    ref = _plain(x, w, t, "mean")
    torch.testing.assert_close(ours, ref)
    (gx,) = torch.autograd.grad(ours, (x,))
    (rx,) = torch.autograd.grad(ref, (x,))
    torch.testing.assert_close(gx, rx)
    with torch.no_grad():
        torch.testing.assert_close(linear_cross_entropy(x, w, t), ref.detach())


def test_bfloat16_autocast_stays_near_float32() -> None:
    torch.manual_seed(0)
    x = torch.randn(64, 16, requires_grad=True)
    w = (torch.randn(100, 16) * 0.3).requires_grad_()
    t = torch.randint(0, 100, (64,))
    exact = linear_cross_entropy(x, w, t)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = linear_cross_entropy(x, w, t)
    assert low.dtype == torch.float32
    assert abs(low.item() - exact.item()) < 2e-2
    gx, gw = torch.autograd.grad(low, (x, w))
    assert gx.dtype == x.dtype and gw.dtype == w.dtype
    ex, ew = torch.autograd.grad(exact, (x, w))
    assert (gx - ex).abs().max() < 5e-3 and (gw - ew).abs().max() < 5e-3


def test_bad_input_is_named() -> None:
    x, w = torch.randn(4, 8), torch.randn(10, 8)
    with pytest.raises(ValueError, match="id 10 is out of range"):
        linear_cross_entropy(x, w, torch.tensor([0, 1, 10, -100]))
    with pytest.raises(ValueError, match="id -3 is out of range"):
        linear_cross_entropy(x, w, torch.tensor([0, -3, 1, 2]))
    with pytest.raises(ValueError, match=r"targets of shape \(3,\)"):
        linear_cross_entropy(x, w, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"weight of shape \(10, 7\)"):
        linear_cross_entropy(x, torch.randn(10, 7), torch.tensor([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="chunk_rows must be a positive integer, got 0"):
        linear_cross_entropy(x, w, torch.tensor([0, 1, 2, 3]), chunk_rows=0)
    with pytest.raises(ValueError, match="reduction"):
        linear_cross_entropy(x, w, torch.tensor([0, 1, 2, 3]), reduction="none")


@pytest.mark.parametrize("tie", [True, False])
def test_decoder_targets_give_the_loss_of_its_logits(tie: bool) -> None:
    torch.manual_seed(0)
    model = HysoDecoderOnly(
        vocab_size=97, dim=32, num_layers=2, num_heads=2, max_seq_len=16, tie_embeddings=tie
    )
    ids = torch.randint(0, 97, (3, 16))
    targets = torch.randint(0, 97, (3, 16))
    targets[1, 5:] = -100
    mask = torch.ones(3, 16, dtype=torch.long)
    mask[2, :4] = 0  # a left-padded row
    params = list(model.parameters())
    ours = model(ids, attention_mask=mask, targets=targets)
    logits = model(ids, attention_mask=mask)
    ref = F.cross_entropy(logits.reshape(-1, 97), targets.reshape(-1))
    torch.testing.assert_close(ours, ref, rtol=1e-6, atol=1e-6)
    summed = model(ids, attention_mask=mask, targets=targets, reduction="sum")
    want = F.cross_entropy(logits.reshape(-1, 97), targets.reshape(-1), reduction="sum")
    torch.testing.assert_close(summed, want, rtol=1e-6, atol=1e-5)
    for a, b in zip(torch.autograd.grad(ours, params), torch.autograd.grad(ref, params)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_decoder_targets_keep_no_whole_logits_for_backward() -> None:
    torch.manual_seed(0)
    vocab, batch, seq = 4096, 2, 64
    model = HysoDecoderOnly(vocab_size=vocab, dim=16, num_layers=1, num_heads=2, max_seq_len=seq)
    ids = torch.randint(0, vocab, (batch, seq))
    saved: list[int] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved.append(t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(ids, targets=ids)
    assert saved and max(saved) < batch * seq * vocab // 4, max(saved)
    saved.clear()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        logits = model(ids)  # the plain head keeps them: the check above can fail
        F.cross_entropy(logits.reshape(-1, vocab), ids.reshape(-1))
    assert max(saved) >= batch * seq * vocab


def test_decoder_targets_refuse_cached_or_mismatched_calls() -> None:
    model = HysoDecoderOnly(vocab_size=11, dim=16, num_layers=1, num_heads=2, max_seq_len=8)
    ids = torch.randint(0, 11, (2, 8))
    with pytest.raises(ValueError, match=r"shape of input_ids \(2, 8\), got \(2, 7\)"):
        model(ids, targets=ids[:, :7])
    with pytest.raises(ValueError, match="no cache and no last_only"):
        model(ids, targets=ids, last_only=True)
    with pytest.raises(ValueError, match="no cache and no last_only"):
        model(ids, targets=ids, cache=model.new_cache(2, 8))
    with pytest.raises(ValueError, match="reduction must be 'mean' or 'sum', got 'none'"):
        model(ids, targets=ids, reduction="none")
