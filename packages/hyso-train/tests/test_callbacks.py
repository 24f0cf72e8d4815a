"""Callback hooks: order, arguments, no-op skipping, state round trips."""

from __future__ import annotations

import pytest
import torch
from train_helpers import TinyLM, loader, token_data

from hyso.core.train import Callback, CallbackList, Trainer
from hyso.core.train.callbacks import HOOKS


class Recorder(Callback):
    def __init__(self, events: list) -> None:
        self.events = events

    def on_train_start(self, trainer):
        self.events.append(("train_start", trainer.global_step))

    def on_train_end(self, trainer):
        self.events.append(("train_end", trainer.status))

    def on_epoch_start(self, trainer):
        self.events.append(("epoch_start", trainer.epoch))

    def on_epoch_end(self, trainer, metrics):
        self.events.append(("epoch_end", metrics["epoch"], round(metrics["val_loss"], 6)))

    def on_step_start(self, trainer):
        self.events.append(("step_start", trainer.global_step))

    def on_step_end(self, trainer, metrics):
        self.events.append(("step_end", trainer.global_step, sorted(metrics)))

    def on_validation_end(self, trainer, metrics):
        self.events.append(("val", trainer.global_step))


def test_hooks_run_in_order_with_metrics_on_logging_steps_only() -> None:
    events: list = []
    model = TinyLM()
    t = Trainer(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        callbacks=[Recorder(events)],
        progress_bar=False,
        log_every=2,
        grad_accum_steps=2,
    )
    t.fit(loader(token_data(n=32)), loader(token_data(n=8)), epochs=2)  # 4 batches: 2 steps
    names = [e[0] for e in events]
    assert names[0] == "train_start" and names[-1] == "train_end"
    assert events[-1] == ("train_end", "finished")
    per_epoch = [
        "epoch_start",
        "step_start",
        "step_end",
        "step_start",
        "step_end",
        "val",
        "epoch_end",
    ]
    assert names[1:-1] == per_epoch * 2
    step_ends = [e for e in events if e[0] == "step_end"]
    assert [e[1] for e in step_ends] == [1, 2, 3, 4]
    assert step_ends[0][2] == [] and step_ends[2][2] == []  # not logging steps: empty
    assert {"loss", "lr", "tokens_per_s"} <= set(step_ends[1][2])


def test_train_end_runs_on_failure_with_failed_status() -> None:
    events: list = []

    class Boom(Callback):
        def on_step_end(self, trainer, metrics):
            raise RuntimeError("boom")

    model = TinyLM()
    t = Trainer(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        callbacks=[Recorder(events), Boom()],
        progress_bar=False,
    )
    with pytest.raises(RuntimeError, match="boom"):
        t.fit(loader(token_data(n=16)), epochs=1)
    assert events[-1] == ("train_end", "failed")


def test_callback_list_calls_only_overriding_callbacks() -> None:
    calls = []

    class OnlyEpoch(Callback):
        def on_epoch_start(self, trainer):
            calls.append("epoch")

    cbs = CallbackList([Callback(), OnlyEpoch()])
    assert cbs.has_hook("on_epoch_start")
    assert not cbs.has_hook("on_step_end")
    for hook in HOOKS:
        assert cbs.has_hook(hook) == (hook == "on_epoch_start")
    cbs.on_epoch_start(None)  # type: ignore[arg-type]
    cbs.on_step_end(None, {})  # type: ignore[arg-type]
    assert calls == ["epoch"]


def test_hook_functions_stay_current_when_callbacks_are_appended() -> None:
    class StepEnd(Callback):
        def on_step_end(self, trainer, metrics):
            pass

    cbs = CallbackList([Callback()])
    fns = cbs.functions("on_step_end")
    assert fns == []
    first, second = StepEnd(), StepEnd()
    cbs.append(first)
    cbs.append(Callback())
    cbs.append(second)
    assert fns == [first.on_step_end, second.on_step_end]  # the same list, updated
    assert cbs.functions("on_epoch_start") == []


def test_callback_list_rejects_non_callbacks() -> None:
    with pytest.raises(TypeError, match="Callback"):
        CallbackList([object()])  # type: ignore[list-item]


def test_states_round_trip_with_unique_keys() -> None:
    class Counter(Callback):
        def __init__(self, n: int) -> None:
            self.n = n

        def state_dict(self):
            return {"n": self.n}

        def load_state_dict(self, state):
            self.n = state["n"]

    saved = CallbackList([Counter(1), Counter(2), Callback()]).state_dict()
    assert saved == {"Counter": {"n": 1}, "Counter#1": {"n": 2}}
    fresh = CallbackList([Counter(0), Counter(0)])
    fresh.load_state_dict(saved)
    assert [cb.n for cb in fresh] == [1, 2]
