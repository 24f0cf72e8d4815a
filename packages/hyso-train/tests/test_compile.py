"""``training.compile: true`` compiles the model in place; the losses follow eager's."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from hyso.core.models import HysoDecoderOnly
from hyso.core.train import Trainer, TrainingConfigError, resolve_settings

from .train_helpers import token_data


def _losses(compile: bool) -> tuple[list[float], list[str]]:
    torch.manual_seed(0)
    model = HysoDecoderOnly(dim=32, num_layers=2, vocab_size=23, num_heads=4, max_seq_len=8)
    keys = list(model.state_dict())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses: list[float] = []

    def loss_fn(m: torch.nn.Module, batch: tuple) -> torch.Tensor:
        x, y = batch
        loss = torch.nn.functional.cross_entropy(m(x).flatten(0, 1), y.flatten())
        losses.append(float(loss.detach()))
        return loss

    trainer = Trainer(model, opt, loss_fn=loss_fn, compile=compile, progress_bar=False)
    x = token_data(n=160, t=6).tensors[0]
    data = TensorDataset(x, x)  # learn to copy each token: the loss falls
    trainer.fit(DataLoader(data, batch_size=8), epochs=1)
    assert list(model.state_dict()) == keys
    return losses, list(model._compiled)


@pytest.mark.timeout(300)
def test_compiled_training_follows_eager_within_1e_4() -> None:
    torch._dynamo.reset()
    eager, none = _losses(compile=False)
    compiled, bodies = _losses(compile=True)
    assert none == [] and bodies == ["_body"]
    assert len(eager) == len(compiled) == 20
    for step, (a, b) in enumerate(zip(eager, compiled)):
        assert abs(a - b) <= 1e-4, (step, a, b)
    assert compiled[-1] < 0.8 * compiled[0]  # it trained


def test_compile_must_be_a_bool() -> None:
    with pytest.raises(TrainingConfigError, match=r"training\.compile.*'yes'"):
        resolve_settings({"training": {"compile": "yes"}})
