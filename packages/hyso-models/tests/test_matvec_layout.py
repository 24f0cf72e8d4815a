"""Generation stores the linear weights column by column while it runs (faster
matrix-vector products on the CPU) and gives them back exactly as they were."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hyso.core.models import generation
from hyso.core.models.generation import matvec_layout

V = 97  # vocab size of the debug config


def _prompt(batch: int = 2, length: int = 5) -> torch.Tensor:
    return torch.randint(0, V, (batch, length), generator=torch.Generator().manual_seed(3))


def _linear_weights(model: nn.Module) -> list[torch.Tensor]:
    return [m.weight for m in model.modules() if isinstance(m, nn.Linear)]


@pytest.mark.parametrize("family", ["decoder_only", "encoder_decoder"])
def test_generation_tokens_and_logits_match_the_usual_layout(
    make_model, monkeypatch, family: str
) -> None:
    model = make_model(family).eval()
    ids = _prompt()
    kw = {"decoder_start_token_id": 0} if family == "encoder_decoder" else {}
    fast, fast_logits = model.generate(ids, 20, return_logits=True, **kw)
    monkeypatch.setattr(generation, "MATVEC_LAYOUT_MIN_TOKENS", 10**9)
    plain, plain_logits = model.generate(ids, 20, return_logits=True, **kw)
    assert torch.equal(fast, plain)
    torch.testing.assert_close(fast_logits, plain_logits, rtol=1e-5, atol=1e-5)


def test_weights_come_back_bit_identical_in_place(make_model) -> None:
    model = make_model("decoder_only").eval()
    before = {name: (p.data_ptr(), p.stride(), p.clone()) for name, p in model.named_parameters()}
    seen: list[bool] = []

    def during(_: torch.Tensor) -> None:
        seen.append(all(w.stride() == (1, w.shape[0]) for w in _linear_weights(model)))

    model.generate(_prompt(), 20, on_token=during)
    assert seen and all(seen)  # column-major while generating
    for name, p in model.named_parameters():
        ptr, stride, values = before[name]
        assert (p.data_ptr(), p.stride()) == (ptr, stride), name
        assert torch.equal(p, values), name
    assert not generation._LAYOUT_USERS


def test_short_generations_leave_the_layout_alone(make_model) -> None:
    model = make_model("decoder_only").eval()
    seen: list[bool] = []

    def during(_: torch.Tensor) -> None:
        seen.append(all(w.is_contiguous() for w in _linear_weights(model)))

    model.generate(_prompt(), generation.MATVEC_LAYOUT_MIN_TOKENS - 1, on_token=during)
    assert seen and all(seen)


def test_nested_uses_restore_only_at_the_last_exit() -> None:
    layer = nn.Linear(6, 4)
    values = layer.weight.detach().clone()
    with matvec_layout(layer):
        with matvec_layout(layer):
            assert layer.weight.stride() == (1, 4)
        assert layer.weight.stride() == (1, 4)
        assert torch.equal(layer.weight, values)
    assert layer.weight.stride() == (6, 1)
    assert torch.equal(layer.weight, values)


def test_a_weight_viewing_a_larger_buffer_is_left_alone() -> None:
    flat = torch.randn(100)
    layer = nn.Linear(6, 4, bias=False)
    layer.weight = nn.Parameter(flat[10:34].view(4, 6))  # a view, as FSDP's flat parameters
    with matvec_layout(layer):
        assert layer.weight.stride() == (6, 1)
    assert torch.equal(layer.weight.detach(), flat[10:34].view(4, 6))


def test_an_error_inside_restores_the_layout() -> None:
    layer = nn.Linear(6, 4)
    with pytest.raises(RuntimeError, match="boom"), matvec_layout(layer):
        raise RuntimeError("boom")
    assert layer.weight.is_contiguous()
    assert not generation._LAYOUT_USERS


def test_training_after_generation_works(make_model) -> None:
    model = make_model("decoder_only")
    model.generate(_prompt(), 20)
    assert model.training  # generate puts the mode back
    loss = model(_prompt()).float().logsumexp(-1).mean()
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_a_failure_half_way_puts_back_what_was_rearranged(monkeypatch) -> None:
    model = nn.Sequential(nn.Linear(6, 4), nn.Linear(4, 3), nn.Linear(3, 2))
    values = [m.weight.detach().clone() for m in model]
    real, calls = generation._restride, []

    def failing(w: torch.Tensor, column_major: bool) -> None:
        calls.append(column_major)
        if column_major and len(calls) == 2:
            raise MemoryError("no room for the copy")
        real(w, column_major)

    monkeypatch.setattr(generation, "_restride", failing)
    with pytest.raises(MemoryError), matvec_layout(model):
        pass
    for m, v in zip(model, values, strict=True):
        assert m.weight.is_contiguous()
        assert torch.equal(m.weight, v)
    assert not generation._LAYOUT_USERS


def test_other_dtypes_keep_their_layout() -> None:
    layer = nn.Linear(6, 4).to(torch.bfloat16)
    with matvec_layout(layer):
        assert layer.weight.is_contiguous()
