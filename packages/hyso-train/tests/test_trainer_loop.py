"""The Trainer's loop against hand-written loops: same arithmetic, same weights."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from train_helpers import VOCAB, TinyLM, TinySeq2Seq, loader, params_equal, token_data

from hyso.core.train import Callback, NonFiniteLossError, Trainer, TrainingConfigError


def _pair(dropout: float = 0.0, seed: int = 0, lr: float = 0.05):
    torch.manual_seed(seed)
    a = TinyLM(dropout=dropout)
    b = TinyLM(dropout=dropout)
    b.load_state_dict(a.state_dict())
    return a, torch.optim.SGD(a.parameters(), lr=lr), b, torch.optim.SGD(b.parameters(), lr=lr)


def _ce(logits, y):
    return F.cross_entropy(logits.reshape(-1, VOCAB), y.reshape(-1), ignore_index=-100)


def test_fit_matches_hand_written_loop_bit_for_bit() -> None:
    ds = token_data()
    a, opt_a, b, opt_b = _pair()
    trainer = Trainer(a, opt_a, progress_bar=False, max_grad_norm=0.5)
    trainer.fit(loader(ds), epochs=2)
    for _ in range(2):
        for x, y in loader(ds):
            loss = _ce(b(x), y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(list(b.parameters()), 0.5)
            opt_b.step()
            opt_b.zero_grad(set_to_none=True)
    assert params_equal(a, b)
    assert trainer.global_step == 12
    assert trainer.epoch == 1 and len(trainer.history) == 2


def test_gradient_accumulation_matches_manual_accumulation_with_a_short_last_group() -> None:
    ds = token_data(n=40)  # 5 batches of 8: groups of 2, 2, 1
    a, opt_a, b, opt_b = _pair()
    Trainer(a, opt_a, progress_bar=False, grad_accum_steps=2).fit(loader(ds), epochs=1)
    batches = list(loader(ds))
    for group in (batches[0:2], batches[2:4], batches[4:5]):
        for x, y in group:
            (_ce(b(x), y) / len(group)).backward()
        opt_b.step()
        opt_b.zero_grad(set_to_none=True)
    assert params_equal(a, b)


def test_scheduler_interval_step_versus_epoch() -> None:
    ds = token_data(n=32)  # 4 batches
    for interval, expected_steps in (("step", 8), ("epoch", 2)):
        model = TinyLM()
        opt = torch.optim.SGD(model.parameters(), lr=1.0)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
        Trainer(model, opt, sched, progress_bar=False, scheduler_interval=interval).fit(
            loader(ds), epochs=2
        )
        assert opt.param_groups[0]["lr"] == pytest.approx(0.5**expected_steps)


def test_validate_reports_token_weighted_loss_and_perplexity() -> None:
    ds = token_data(n=20)
    y = ds.tensors[1].clone()
    y[:, :2] = -100  # ignored positions
    ds = torch.utils.data.TensorDataset(ds.tensors[0], y)
    model = TinyLM()
    trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), progress_bar=False)
    metrics = trainer.validate(loader(ds, batch_size=7))  # uneven batches: 7, 7, 6
    with torch.no_grad():
        logits = model(ds.tensors[0])
        expected = _ce(logits, y).item()
    assert metrics["val_loss"] == pytest.approx(expected, rel=1e-6)
    assert metrics["val_ppl"] == pytest.approx(math.exp(expected), rel=1e-6)
    assert metrics["val_tokens"] == int((y != -100).sum())
    assert trainer.best_val_loss == metrics["val_loss"]


def test_dict_batches_pass_the_attention_mask() -> None:
    x = torch.randint(0, VOCAB, (4, 5))
    mask = torch.ones(4, 5)
    mask[:, -1] = 0
    batch = {"input_ids": x, "labels": x, "attention_mask": mask}
    model = TinyLM()
    trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), progress_bar=False)
    m = trainer.validate([batch])
    with torch.no_grad():
        assert m["val_loss"] == pytest.approx(_ce(model(x, mask), x).item(), rel=1e-6)


def test_encoder_decoder_batches_use_teacher_forcing() -> None:
    src = torch.randint(0, VOCAB, (3, 4))
    tgt = torch.randint(0, VOCAB, (3, 6))
    model = TinySeq2Seq()
    trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), progress_bar=False)
    m = trainer.validate([(src, tgt)])
    with torch.no_grad():
        expected = _ce(model(src, tgt[:, :-1]), tgt[:, 1:]).item()
    assert m["val_loss"] == pytest.approx(expected, rel=1e-6)
    assert m["val_tokens"] == 3 * 5


def test_custom_loss_fn_replaces_the_default() -> None:
    calls = []

    def loss_fn(model, batch):
        calls.append(1)
        x, _ = batch
        return model(x).pow(2).mean()

    ds = token_data(n=16)
    model = TinyLM()
    Trainer(
        model, torch.optim.SGD(model.parameters(), lr=0.1), loss_fn=loss_fn, progress_bar=False
    ).fit(loader(ds), epochs=1)
    assert len(calls) == 2


def test_max_steps_stops_mid_epoch() -> None:
    ds = token_data(n=80)  # 10 batches
    model = TinyLM()
    t = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), progress_bar=False, max_steps=4)
    history = t.fit(loader(ds), loader(ds), epochs=3)
    assert t.global_step == 4 and len(history) == 1
    assert history[0]["epoch_steps"] == 4 and "val_loss" in history[0]


class _Poison(Callback):
    """Turns the weights to NaN at ``at_step`` so the next loss is NaN."""

    def __init__(self, at_step: int) -> None:
        self.at_step = at_step

    def on_step_start(self, trainer) -> None:
        if trainer.global_step + 1 == self.at_step:
            with torch.no_grad():
                for p in trainer.model.parameters():
                    p.fill_(float("nan"))


def test_nan_loss_raises_naming_the_first_bad_step() -> None:
    ds = token_data(n=80)
    model = TinyLM()
    t = Trainer(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        progress_bar=False,
        log_every=4,
        callbacks=[_Poison(at_step=6)],
    )
    with pytest.raises(NonFiniteLossError, match="step 6") as err:
        t.fit(loader(ds), epochs=1)
    assert err.value.step == 6 and math.isnan(err.value.loss)
    assert t.status == "failed"


class _NanOnce(Callback):
    def __init__(self, at_step: int) -> None:
        self.at_step = at_step

        self.fired = False

    def on_step_start(self, trainer) -> None:
        trainer.loss_scale_nan = not self.fired and trainer.global_step + 1 == self.at_step
        self.fired = self.fired or trainer.loss_scale_nan


def test_nan_policy_skip_skips_the_step_and_keeps_weights_finite() -> None:
    def loss_fn(model, batch):
        x, y = batch
        loss = _ce(model(x), y)
        if getattr(trainer, "loss_scale_nan", False):
            loss = loss * float("nan")
        return loss

    ds = token_data(n=40)
    model = TinyLM()
    trainer = Trainer(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        loss_fn=loss_fn,
        progress_bar=False,
        nan_policy="skip",
        callbacks=[_NanOnce(at_step=3)],
    )
    trainer.fit(loader(ds), epochs=1)
    assert trainer.skipped_steps == 1
    assert trainer.global_step == 4  # 5 batches, one skipped
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert math.isfinite(trainer.history[0]["train_loss"])


def test_bf16_autocast_trains() -> None:
    ds = token_data(n=32)
    model = TinyLM()
    t = Trainer(
        model, torch.optim.Adam(model.parameters(), lr=1e-2), precision="bf16", progress_bar=False
    )
    h = t.fit(loader(ds), loader(ds), epochs=3)
    assert h[-1]["val_loss"] < h[0]["val_loss"]
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_epoch_history_records_train_and_validation_metrics() -> None:
    ds = token_data(n=32)
    model = TinyLM()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    h = Trainer(model, opt, progress_bar=False).fit(loader(ds), loader(ds), epochs=2)
    assert [r["epoch"] for r in h] == [0, 1]
    assert [r["step"] for r in h] == [4, 8]
    for r in h:
        assert r["train_tokens"] == 32 * 6
        assert {"train_loss", "val_loss", "val_ppl", "lr", "tokens_per_s"} <= set(r)


def test_bad_settings_name_the_key_and_value() -> None:
    model = TinyLM()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(TrainingConfigError, match=r"grad_accum_steps .* got 0"):
        Trainer(model, opt, grad_accum_steps=0)
    with pytest.raises(TrainingConfigError, match="precision"):
        Trainer(model, opt, config={"training": {"precision": "fp8"}})
    with pytest.raises(TrainingConfigError, match="unknown training setting"):
        Trainer(model, opt, learning_rate=3)
    with pytest.raises(TrainingConfigError, match="epochs"):
        Trainer(model, opt, progress_bar=False).fit([], epochs=0)


def test_bad_batch_layout_is_a_clear_error() -> None:
    model = TinyLM()
    t = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), progress_bar=False)
    with pytest.raises(ValueError, match="input_ids"):
        t.validate([{"ids": torch.zeros(2, 3, dtype=torch.long)}])
    with pytest.raises(ValueError, match=r"logits of shape \(2, 3, 23\)"):
        t.validate([(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 4, dtype=torch.long))])


@pytest.mark.parametrize("clip", [None, 1.0])
def test_fp16_uses_a_grad_scaler_and_trains(clip) -> None:
    ds = token_data(n=32)
    model = TinyLM()
    t = Trainer(
        model,
        torch.optim.Adam(model.parameters(), lr=1e-2),
        precision="fp16",
        max_grad_norm=clip,
        progress_bar=False,
    )
    h = t.fit(loader(ds), loader(ds), epochs=3)
    assert t._scaler is not None and t._scaler.get_scale() > 0
    assert h[-1]["val_loss"] < h[0]["val_loss"]
    assert "grad_scaler" in t.checkpoint_state() and t.checkpoint_state()["grad_scaler"]


def test_an_empty_training_loader_is_a_clear_error() -> None:
    model = TinyLM()
    t = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), progress_bar=False)
    with pytest.raises(ValueError, match="no batches in epoch 0"):
        t.fit([], epochs=1)


@pytest.mark.parametrize(
    ("n", "max_steps", "expected_steps"),
    [(48, None, (3, 6)), (80, 6, (3, 6))],  # the epoch's last step; max_steps mid-epoch
)
def test_validation_runs_once_when_eval_every_divides_the_last_step(
    n: int, max_steps: int | None, expected_steps: tuple[int, ...]
) -> None:
    class Count(Callback):
        def __init__(self) -> None:
            self.steps: list[int] = []

        def on_validation_end(self, trainer, metrics) -> None:
            self.steps.append(trainer.global_step)

    count = Count()
    model = TinyLM()
    t = Trainer(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        callbacks=[count],
        progress_bar=False,
        eval_every=3,
        max_steps=max_steps,
    )
    history = t.fit(loader(token_data(n=n)), loader(token_data(n=16, seed=1)), epochs=1)
    assert t.global_step == 6
    assert tuple(count.steps) == expected_steps  # not a second validation at step 6
    assert history[-1]["val_loss"] == t.last_val_metrics["val_loss"]
