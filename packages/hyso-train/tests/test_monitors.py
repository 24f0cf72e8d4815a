"""Early stopping, the learning-rate monitor and the progress bar in real fits."""

from __future__ import annotations

import io

import pytest
import torch
from train_helpers import TinyLM, loader, token_data

from hyso.core.train import EarlyStopping, LRMonitor, ProgressBar, Trainer


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
