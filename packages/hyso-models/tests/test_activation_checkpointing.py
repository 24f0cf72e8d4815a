"""Activation checkpointing: same gradients, fewer saved activations, only when training."""

from __future__ import annotations

import pytest
import torch

from hyso.core.models import ModelConfigError, get_config

from .conftest import build

V = 97


def _loss(model, ids: torch.Tensor) -> torch.Tensor:
    logits = model(ids, ids) if model.is_encoder_decoder else model(ids)
    return logits.logsumexp(-1).mean()


def _grads(model, ids: torch.Tensor, seed: int) -> dict[str, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)  # the same dropout masks in both runs
    _loss(model, ids).backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("dropout", [0.0, 0.1])
def test_gradients_equal_the_plain_run(family, dropout) -> None:
    plain = build(family, seed=4, dropout=dropout, drop_path=dropout)
    ckpt = build(family, seed=4, dropout=dropout, drop_path=dropout, activation_checkpointing=True)
    ckpt.load_state_dict(plain.state_dict())
    ids = torch.randint(0, V, (4, 16), generator=torch.Generator().manual_seed(1))
    expected, got = _grads(plain, ids, seed=7), _grads(ckpt, ids, seed=7)
    assert expected.keys() == got.keys() and len(got) == len(list(plain.parameters()))
    for name, grad in expected.items():
        torch.testing.assert_close(got[name], grad, rtol=0, atol=1e-6, msg=name)


def _saved_bytes(model, ids: torch.Tensor) -> int:
    """Bytes of the tensors autograd keeps for backward during one forward."""
    total = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        _loss(model, ids)
    return total


def test_checkpointing_keeps_fewer_activations(family) -> None:
    plain = build(family, seed=0, num_layers=4)
    ckpt = build(family, seed=0, num_layers=4, activation_checkpointing=True)
    ids = torch.randint(0, V, (4, 32))
    assert _saved_bytes(ckpt, ids) < 0.5 * _saved_bytes(plain, ids)


def test_not_applied_in_eval_or_without_grad(family) -> None:
    plain = build(family, seed=0)
    ckpt = build(family, seed=0, activation_checkpointing=True)
    ids = torch.randint(0, V, (2, 16))
    assert _saved_bytes(ckpt.eval(), ids) == _saved_bytes(plain.eval(), ids)
    ckpt.train()
    with torch.no_grad():
        assert ckpt._checkpointing(None) is False
    assert ckpt._checkpointing(None) is True


def test_generation_with_checkpointing_matches_plain() -> None:
    plain = build("decoder_only", seed=3).eval()
    ckpt = build("decoder_only", seed=3, activation_checkpointing=True).eval()
    prompt = torch.randint(0, V, (2, 5))
    assert torch.equal(
        plain.generate(prompt, max_new_tokens=6, do_sample=False),
        ckpt.generate(prompt, max_new_tokens=6, do_sample=False),
    )


def test_activation_checkpointing_must_be_a_bool() -> None:
    with pytest.raises(ModelConfigError, match="activation_checkpointing"):
        get_config("debug", activation_checkpointing="yes")
