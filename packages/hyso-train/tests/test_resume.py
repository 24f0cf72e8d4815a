"""Exact resume: an interrupted run continued with resume="latest" ends bit-identical."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader
from train_helpers import TinyLM, params_equal, token_data

from hyso.core.storage import CheckpointConfig, CheckpointManager, RunPaths
from hyso.core.train import Callback, EarlyStopping, Trainer, read_metrics


class _Interrupt(Exception):
    pass


class _StopAt(Callback):
    """Raise at the start of optimizer step ``step`` (after ``step - 1`` steps)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_start(self, trainer) -> None:
        if trainer.global_step + 1 == self.step:
            raise _Interrupt


def _run(run_dir, *, stop_at=None, resume=None, accum=2, save_every=1, epochs=3, seed=5):
    torch.manual_seed(seed)  # the resumed run must not depend on this: state comes back
    model = TinyLM(dropout=0.2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.02)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.7)
    ds = token_data(n=44, seed=1)  # 6 batches of 8 (last one 4): accum groups 2, 2, 2
    train = DataLoader(ds, batch_size=8, shuffle=True)
    val = DataLoader(token_data(n=16, seed=2), batch_size=8)
    paths = RunPaths.for_run_dir(run_dir).ensure_dirs()
    manager = CheckpointManager(
        CheckpointConfig.from_dir(directory=paths.checkpoints_dir, best_metric_name="val_loss")
    )
    callbacks = [EarlyStopping(patience=50)]
    if stop_at is not None:
        callbacks.append(_StopAt(stop_at))
    trainer = Trainer(
        model,
        opt,
        sched,
        run_paths=paths,
        checkpoint_manager=manager,
        callbacks=callbacks,
        grad_accum_steps=accum,
        save_every=save_every,
        eval_every=4,
        log_every=2,
        scheduler_interval="step",
        progress_bar=False,
        seed=123,
    )
    trainer.fit(train, val, epochs=epochs, resume=resume)
    return trainer, paths


_COMPARED = ("step", "epoch", "split", "loss", "ppl", "lr", "grad_norm")


@pytest.mark.parametrize("stop_at", [2, 5, 7])
def test_interrupted_and_resumed_run_matches_uninterrupted(tmp_path, stop_at) -> None:
    full, full_paths = _run(tmp_path / "full")
    with pytest.raises(_Interrupt):
        _run(tmp_path / "cut", stop_at=stop_at)
    resumed, cut_paths = _run(tmp_path / "cut", resume="latest", seed=99)
    assert params_equal(full.model, resumed.model)
    assert resumed.global_step == full.global_step == 9
    for a, b in zip(full.history, resumed.history, strict=True):
        for key in ("epoch", "step", "train_loss", "train_tokens", "val_loss", "lr"):
            assert a[key] == b[key], key
    rows_full = [{k: r[k] for k in _COMPARED} for r in read_metrics(full_paths.metrics_path)]
    rows_cut = [{k: r[k] for k in _COMPARED} for r in read_metrics(cut_paths.metrics_path)]
    assert rows_cut == rows_full
    state_full = full.optimizer.state_dict()["state"]
    state_cut = resumed.optimizer.state_dict()["state"]
    assert all(torch.equal(state_full[k]["exp_avg"], state_cut[k]["exp_avg"]) for k in state_full)
    assert full.scheduler.state_dict() == resumed.scheduler.state_dict()


def test_resume_at_an_epoch_boundary_without_step_saves(tmp_path) -> None:
    full, _ = _run(tmp_path / "full", save_every=None)
    with pytest.raises(_Interrupt):
        _run(tmp_path / "cut", stop_at=7, save_every=None)  # epoch-end checkpoint at step 6
    resumed, _ = _run(tmp_path / "cut", resume="latest", save_every=None, seed=42)
    assert params_equal(full.model, resumed.model)


def test_resume_latest_without_checkpoints_starts_fresh(tmp_path) -> None:
    fresh, _ = _run(tmp_path / "a")
    resumed, _ = _run(tmp_path / "b", resume="latest")
    assert params_equal(fresh.model, resumed.model)


def test_resume_of_a_finished_run_changes_nothing(tmp_path) -> None:
    first, _ = _run(tmp_path / "r")
    weights = [p.detach().clone() for p in first.model.parameters()]
    again, _ = _run(tmp_path / "r", resume="latest")
    assert again.global_step == first.global_step
    assert params_equal(weights, again.model)


def test_resume_mid_epoch_with_other_accumulation_is_refused(tmp_path) -> None:
    with pytest.raises(_Interrupt):
        _run(tmp_path / "r", stop_at=2)
    with pytest.raises(ValueError, match="grad_accum_steps=2"):
        _run(tmp_path / "r", resume="latest", accum=3)


def test_resume_best_needs_a_best_checkpoint(tmp_path) -> None:
    paths = RunPaths.for_run_dir(tmp_path / "x").ensure_dirs()
    model = TinyLM()
    t = Trainer(
        model, torch.optim.SGD(model.parameters(), lr=0.1), run_paths=paths, progress_bar=False
    )
    with pytest.raises(FileNotFoundError, match="best"):
        t.fit([], epochs=1, resume="best")
