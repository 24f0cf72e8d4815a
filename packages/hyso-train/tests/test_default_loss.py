"""The default loss: a decoder-only hyso model computes it from targets, with the value and
gradients of the cross-entropy on its logits, for every batch layout."""

from __future__ import annotations

import torch
from torch import nn

from hyso.core.models import HysoDecoderOnly
from hyso.core.train.loss import (
    default_loss,
    default_loss_for,
    loss_sum_and_count,
    token_cross_entropy,
)


class _LogitsOnly(nn.Module):
    """The same network behind a forward without ``targets=``."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None):
        return self.inner(ids, attention_mask=attention_mask)


def _decoder() -> tuple[HysoDecoderOnly, _LogitsOnly]:
    """A seeded decoder and the same network behind a logits-only forward."""
    torch.manual_seed(0)
    model = HysoDecoderOnly(vocab_size=53, dim=32, num_layers=2, num_heads=2, max_seq_len=12)
    return model, _LogitsOnly(model)


def _grads(loss: torch.Tensor, model: nn.Module) -> list[torch.Tensor]:
    return list(torch.autograd.grad(loss, list(model.parameters())))


def test_decoder_losses_equal_the_logits_loss_for_tuples_and_dicts() -> None:
    model, plain = _decoder()
    ids = torch.randint(0, 53, (4, 12))
    labels = torch.randint(0, 53, (4, 12))
    labels[:, :3] = -100  # a prompt that does not count
    mask = torch.ones(4, 12, dtype=torch.long)
    mask[1, :2] = 0
    batches = [
        (ids, labels),
        [ids, labels],
        {"input_ids": ids, "labels": labels, "attention_mask": mask},
    ]
    for batch in batches:
        fast = default_loss_for(model)(model, batch)
        also = default_loss(model, batch)
        ref = default_loss(plain, batch)
        kwargs = {"attention_mask": mask} if isinstance(batch, dict) else {}
        direct = token_cross_entropy(model(ids, **kwargs), labels)
        torch.testing.assert_close(ref, direct)
        want = _grads(ref, model)
        for loss in (fast, also):
            torch.testing.assert_close(loss, ref, rtol=1e-6, atol=1e-6)
            for a, b in zip(_grads(loss, model), want):
                torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    summed = default_loss(model, (ids, labels), reduction="sum")
    torch.testing.assert_close(summed, token_cross_entropy(model(ids), labels, reduction="sum"))


def _largest_saved(fn) -> int:
    """Elements of the largest tensor autograd keeps for backward while ``fn`` runs."""
    sizes: list[int] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        sizes.append(t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return max(sizes)


def test_the_trainer_loss_of_a_decoder_keeps_no_whole_logits() -> None:
    torch.manual_seed(0)
    vocab = 2048
    model = HysoDecoderOnly(vocab_size=vocab, dim=16, num_layers=1, num_heads=2, max_seq_len=32)
    ids = torch.randint(0, vocab, (2, 32))
    whole = ids.numel() * vocab
    assert _largest_saved(lambda: default_loss_for(model)(model, (ids, ids))) < whole
    assert _largest_saved(lambda: default_loss(model, (ids, ids))) < whole
    # a model without targets= keeps them: the checks above can fail
    assert _largest_saved(lambda: default_loss(_LogitsOnly(model), (ids, ids))) >= whole


def test_validation_sums_equal_the_logits_sums_even_with_nothing_counted() -> None:
    model, plain = _decoder()
    ids = torch.randint(0, 53, (3, 12))
    labels = torch.randint(0, 53, (3, 12))
    labels[0, 4:] = -100
    nothing = torch.full_like(labels, -100)
    for targets in (labels, nothing):
        for batch in ((ids, targets), {"input_ids": ids, "labels": targets}):
            with torch.no_grad():
                total, count = loss_sum_and_count(model, batch)
                ref_total, ref_count = loss_sum_and_count(plain, batch)
            assert count.dtype == torch.float64 and count == ref_count
            assert count == (targets != -100).sum()
            torch.testing.assert_close(total, ref_total, rtol=1e-6, atol=1e-5)
    assert loss_sum_and_count(model, (ids, nothing))[0] == 0
