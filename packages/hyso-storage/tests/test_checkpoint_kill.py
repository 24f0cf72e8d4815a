"""A process killed with SIGKILL at random moments always leaves a loadable latest checkpoint."""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import signal
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from hyso.core.storage import CheckpointConfig, CheckpointManager
from hyso.core.storage.atomic import is_temp_name

TRIALS = 24

pytestmark = pytest.mark.skipif(
    sys.platform == "win32" or "fork" not in mp.get_all_start_methods(),
    reason="needs SIGKILL and fork",
)


def _model() -> nn.Module:
    return nn.Sequential(nn.Linear(256, 512), nn.Linear(512, 256))  # ~1 MB of fp32


def _save_forever(directory: str, mode: str, ready) -> None:
    """Save epoch after epoch: ``blocking``, ``background`` or ``sharded`` saves."""
    torch.set_num_threads(1)
    manager = CheckpointManager(CheckpointConfig(directory, max_to_keep=2))
    latest = manager.load_latest()
    epoch = 0 if latest is None else latest.epoch + 1
    model = _model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    while True:
        with torch.no_grad():
            for p in model.parameters():
                p.fill_(float(epoch))  # the content tells which save this is
        if mode == "sharded":
            manager.save_sharded(epoch, model, optimizer, step=epoch, extra={"epoch": epoch})
        else:
            blocking = mode == "blocking"
            manager.save(
                epoch, model, optimizer, step=epoch, extra={"epoch": epoch}, blocking=blocking
            )
        ready.set()
        epoch += 1


def test_sigkill_at_random_moments_never_loses_the_latest(tmp_path: Path) -> None:
    # the first optimizer of a process imports torch._dynamo (seconds): do it once here,
    # so each forked child starts saving at once
    torch.optim.SGD(_model().parameters(), lr=0.1, momentum=0.9)
    ctx = mp.get_context("fork")
    rng = random.Random(2026)
    directory = tmp_path / "ckpt"
    last_epoch = -1
    for trial in range(TRIALS):
        ready = ctx.Event()
        child = ctx.Process(
            target=_save_forever,
            args=(str(directory), ("blocking", "background")[trial % 2], ready),
        )
        child.start()
        assert ready.wait(timeout=60), "the saving process never completed a first save"
        time.sleep(rng.uniform(0.0, 0.25))  # a random moment, usually mid-save
        os.kill(child.pid, signal.SIGKILL)
        child.join(timeout=30)
        assert child.exitcode == -signal.SIGKILL

        manager = CheckpointManager(CheckpointConfig(directory, max_to_keep=2))
        ckpt = manager.load_latest()
        assert ckpt is not None, f"trial {trial}: no loadable checkpoint"
        assert ckpt.epoch >= last_epoch and ckpt.extra["epoch"] == ckpt.epoch
        for value in ckpt.model_state.values():
            assert torch.all(value == float(ckpt.epoch)), f"trial {trial}: mixed content"
        last_epoch = ckpt.epoch

        # a later save works and clears whatever the killed process left behind
        if trial % 6 == 5:
            model = _model()
            manager.restore_objects(ckpt, model)
            path = manager.save(
                ckpt.epoch + 1, model, step=ckpt.epoch + 1, extra={"epoch": ckpt.epoch + 1}
            )
            manager.wait()  # rotation of old checkpoints runs after save() returns
            manager.close()  # release the writer lock for the next child process
            names = sorted(p.name for p in directory.iterdir())
            assert not any(is_temp_name(n) for n in names), names
            payloads = [n for n in names if n.endswith(".pt")]
            assert all(f"{n}.json" in names for n in payloads), names
            assert len(payloads) <= 2 and path.name in payloads
            last_epoch = ckpt.epoch + 1
    assert last_epoch > 0


def test_sigkill_during_sharded_saves_never_loses_the_latest(tmp_path: Path) -> None:
    """The same promise for ``save_sharded`` (torch.distributed.checkpoint folders with a
    record written last): whatever moment the writer dies, ``latest`` loads whole."""
    torch.optim.SGD(_model().parameters(), lr=0.1, momentum=0.9)
    ctx = mp.get_context("fork")
    rng = random.Random(7)
    directory = tmp_path / "ckpt"
    last_epoch = -1
    for trial in range(TRIALS // 2):
        ready = ctx.Event()
        child = ctx.Process(target=_save_forever, args=(str(directory), "sharded", ready))
        child.start()
        assert ready.wait(timeout=120), "the saving process never completed a first save"
        time.sleep(rng.uniform(0.0, 0.3))
        os.kill(child.pid, signal.SIGKILL)
        child.join(timeout=30)
        assert child.exitcode == -signal.SIGKILL

        manager = CheckpointManager(CheckpointConfig(directory, max_to_keep=2))
        ckpt = manager.load_latest()
        assert ckpt is not None and ckpt.sharded, f"trial {trial}: no loadable checkpoint"
        assert ckpt.epoch >= last_epoch and ckpt.extra["epoch"] == ckpt.epoch
        model = _model()
        manager.restore_objects(ckpt, model)
        for value in model.state_dict().values():
            assert torch.all(value == float(ckpt.epoch)), f"trial {trial}: mixed content"
        last_epoch = ckpt.epoch
        manager.close()
    names = sorted(p.name for p in directory.iterdir())
    committed = [n for n in names if n.endswith(".dcp") and f"{n}.json" in names]
    assert last_epoch > 0 and 1 <= len(committed) <= 3, names
