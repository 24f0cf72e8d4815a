"""Early stopping, the learning-rate monitor and the progress bar in real fits."""

from __future__ import annotations

import io
import re

import pytest
import torch
from train_helpers import TinyLM, loader, token_data

from hyso.core.train import Callback, EarlyStopping, LRMonitor, ProgressBar, Trainer


def _trainer(callbacks, lr=0.1, **kw):
    model = TinyLM()
    return Trainer(
        model,
        torch.optim.SGD(model.parameters(), lr=lr),
        callbacks=callbacks,
        progress_bar=False,
        **kw,
    )


def test_early_stopping_stops_after_patience_without_improvement() -> None:
    stop = EarlyStopping(patience=2)
    t = _trainer([stop], lr=0.0)  # lr 0: the validation loss never improves
    history = t.fit(loader(token_data(n=16)), loader(token_data(n=8)), epochs=10)
    assert len(history) == 3  # the first validation sets the best, two more fail
    assert stop.stopped_at_step == t.global_step and t.should_stop


def test_early_stopping_keeps_going_while_improving() -> None:
    t = _trainer([EarlyStopping(patience=1, mode="min")], lr=0.5)
    ds = token_data(n=16)
    history = t.fit(loader(ds), loader(ds), epochs=4)
    assert len(history) == 4


def test_early_stopping_rejects_unknown_metric_and_bad_arguments() -> None:
    with pytest.raises(ValueError, match="mode"):
        EarlyStopping(mode="up")
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(patience=0)
    t = _trainer([EarlyStopping(monitor="val_acc")])
    with pytest.raises(ValueError, match="val_acc"):
        t.fit(loader(token_data(n=8)), loader(token_data(n=8)), epochs=1)


def test_lr_monitor_records_the_schedule() -> None:
    mon = LRMonitor()
    model = TinyLM()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    Trainer(
        model,
        opt,
        sched,
        callbacks=[mon],
        progress_bar=False,
        log_every=1,
        scheduler_interval="step",
    ).fit(loader(token_data(n=24)), epochs=1)
    assert mon.history[:3] == [(1, [0.5]), (2, [0.25]), (3, [0.125])]


def test_progress_bar_shows_steps_and_loss() -> None:
    out = io.StringIO()
    bar = ProgressBar(file=out, mininterval=0)
    t = _trainer([bar], log_every=1)
    t.fit(loader(token_data(n=32)), epochs=2)
    text = out.getvalue()
    assert "8/8" in text and "loss=" in text and "tok_s=" in text
    assert bar.bar is None  # closed at the end


class _LastLogged(Callback):
    def __init__(self) -> None:
        self.metrics: dict = {}

    def on_step_end(self, trainer, metrics):
        if "loss" in metrics:
            self.metrics = dict(metrics)


def test_progress_bar_redraws_every_step_without_an_interval() -> None:
    out = io.StringIO()
    t = _trainer([ProgressBar(file=out, mininterval=0)], log_every=1)
    t.fit(loader(token_data(n=32)), epochs=2)
    text = out.getvalue()
    assert all(f" {k}/8 " in text for k in range(9))


def test_progress_bar_within_its_interval_ends_showing_the_final_step_and_loss() -> None:
    out = io.StringIO()
    bar, last = ProgressBar(file=out, mininterval=3600), _LastLogged()
    t = _trainer([bar, last], log_every=3)
    t.fit(loader(token_data(n=32)), epochs=2)  # 8 steps; the last logging step is 6
    text = out.getvalue()
    assert " 0/8 " in text and " 8/8 " in text  # drawn at the start and at the end only
    assert not any(f" {k}/8 " in text for k in range(1, 8))
    shown = set(re.findall(r"loss=[^,]*, lr=[^,]*,", text))  # the final draw and close
    assert shown == {f"loss={last.metrics['loss']:.4f}, lr=0.1,"}
    assert bar.bar is None


def test_progress_bar_update_every_and_interval_are_checked() -> None:
    with pytest.raises(ValueError, match="update_every"):
        ProgressBar(update_every=0)
    with pytest.raises(ValueError, match="mininterval must be a number >= 0, got -1"):
        ProgressBar(mininterval=-1)
