"""CheckpointManager: round trip, rotation, best, integrity, safety, resume, async saves."""

from __future__ import annotations

import json
import logging
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from hyso.core.storage import (
    CheckpointConfig,
    CheckpointCorruptError,
    CheckpointError,
    CheckpointManager,
    UnsafeCheckpointError,
    set_global_seed,
)
from hyso.core.storage import checkpoint as checkpoint_module
from hyso.core.storage.checkpoint_file import hash_file

LOGGER = "hyso.core.storage.checkpoint"


def _setup(
    seed: int = 0,
) -> tuple[nn.Module, torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.3), nn.ReLU(), nn.Linear(8, 2))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    return model, optimizer, scheduler


def _train(model: nn.Module, optimizer, scheduler, steps: int) -> None:
    for _ in range(steps):
        noise = random.random() + float(np.random.rand())  # consume every RNG
        x = torch.randn(5, 4) * noise
        loss = model(x).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()


def _manager(tmp_path: Path, **kw) -> CheckpointManager:
    return CheckpointManager(CheckpointConfig.from_dir(directory=tmp_path / "ckpt", **kw))


def _files(manager: CheckpointManager) -> list[str]:
    """The folder's checkpoint files (not the writer's lock file)."""
    lock = checkpoint_module.LOCK_NAME
    return sorted(p.name for p in manager.directory.iterdir() if p.name != lock)


def test_round_trip_restores_states_and_fields(tmp_path: Path) -> None:
    model, opt, sched = _setup()
    _train(model, opt, sched, 3)
    manager = _manager(tmp_path)
    extra = {"batches_seen": 7, "order": [3, 1, 2], "gen": torch.Generator().get_state()}
    path = manager.save(
        2, model, opt, sched, step=30, metrics={"val_loss": torch.tensor(1.5)}, extra=extra
    )
    assert path.exists() and path.parent == manager.directory
    ckpt = manager.load_latest()
    assert ckpt is not None and ckpt.path == path
    assert (ckpt.epoch, ckpt.step, ckpt.metrics) == (2, 30, {"val_loss": 1.5})
    assert ckpt.extra["batches_seen"] == 7 and ckpt.extra["order"] == [3, 1, 2]
    assert torch.equal(ckpt.extra["gen"], extra["gen"])
    fresh, fresh_opt, fresh_sched = _setup(seed=99)
    manager.restore_objects(ckpt, fresh, fresh_opt, fresh_sched)
    for a, b in zip(model.state_dict().values(), fresh.state_dict().values()):
        assert torch.equal(a, b)
    assert fresh_sched.state_dict() == sched.state_dict()
    assert fresh_opt.state_dict()["param_groups"] == opt.state_dict()["param_groups"]
    for key, state in opt.state_dict()["state"].items():
        for name, value in state.items():
            assert torch.equal(fresh_opt.state_dict()["state"][key][name], value)


def test_resume_reproduces_the_uninterrupted_run_exactly(tmp_path: Path) -> None:
    set_global_seed(5)
    model, opt, sched = _setup()
    _train(model, opt, sched, 3)
    manager = _manager(tmp_path)
    manager.save(0, model, opt, sched, step=3)
    _train(model, opt, sched, 4)  # the uninterrupted run continues
    expected = model.state_dict()

    set_global_seed(12345)  # a "new process": other weights, other RNG streams
    resumed, r_opt, r_sched = _setup(seed=7)
    manager.restore_objects(manager.load_latest(), resumed, r_opt, r_sched)
    _train(resumed, r_opt, r_sched, 4)
    for name, value in resumed.state_dict().items():
        assert torch.equal(value, expected[name]), name


def test_rotation_keeps_recent_and_best(tmp_path: Path) -> None:
    model, opt, _ = _setup()
    manager = _manager(tmp_path, max_to_keep=2, best_metric_name="val_loss")
    losses = [3.0, 1.0, 2.0, float("nan"), 2.5, 4.0]
    paths = [manager.save(e, model, opt, metrics={"val_loss": v}) for e, v in enumerate(losses)]
    kept = manager.list()
    assert [i.path for i in kept] == [paths[1], paths[4], paths[5]]
    assert [i.is_best for i in kept] == [True, False, False]
    assert manager.best_path == paths[1]
    assert manager.load_best().metrics == {"val_loss": 1.0}
    expected = sorted(
        [p.name for p in (paths[1], paths[4], paths[5])]
        + [p.name + ".json" for p in (paths[1], paths[4], paths[5])]
        + ["index.json"]
    )
    assert _files(manager) == expected
    index = json.loads((manager.directory / "index.json").read_text())
    assert index["format_version"] == 1
    assert index["best"] == paths[1].name and index["latest"] == paths[5].name
    assert [c["file"] for c in index["checkpoints"]] == [i.path.name for i in kept]


def test_best_mode_max_and_no_metric(tmp_path: Path) -> None:
    model, _, _ = _setup()
    manager = _manager(tmp_path, max_to_keep=1, best_metric_name="acc", best_mode="max")
    for e, acc in enumerate([0.5, 0.9, 0.7]):
        manager.save(e, model, metrics={"acc": acc})
    assert manager.load_best().metrics["acc"] == 0.9
    assert len(manager.list()) == 2
    plain = _manager(tmp_path / "plain")
    plain.save(0, model)
    assert plain.best_path is None and plain.load_best() is None
    assert _manager(tmp_path / "empty").load_latest() is None


@pytest.mark.parametrize("damage", ["truncate", "bitflip", "delete_record"])
def test_damaged_latest_falls_back_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: str
) -> None:
    model, opt, _ = _setup()
    manager = _manager(tmp_path)
    good = manager.save(0, model, opt, step=1)
    bad = manager.save(1, model, opt, step=2)
    manager.wait()  # housekeeping after the save is done
    data = bytearray(bad.read_bytes())
    if damage == "truncate":
        bad.write_bytes(data[: len(data) // 2])
    elif damage == "bitflip":
        data[len(data) // 2] ^= 0x01
        bad.write_bytes(bytes(data))
    else:
        (bad.parent / (bad.name + ".json")).unlink()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        ckpt = manager.load_latest()
    assert ckpt is not None and ckpt.path == good and ckpt.step == 1
    if damage != "delete_record":  # without a record the file is simply not a checkpoint
        assert any(bad.name in r.getMessage() for r in caplog.records)
        with pytest.raises(CheckpointCorruptError, match=bad.name):
            manager.load(bad)


@pytest.mark.parametrize("damage", ["bitflip", "record"])
def test_damaged_best_raises(tmp_path: Path, damage: str) -> None:
    model, _, _ = _setup()
    manager = _manager(tmp_path, best_metric_name="val_loss")
    best = manager.save(0, model, metrics={"val_loss": 0.1})
    manager.save(1, model, metrics={"val_loss": 0.5})
    manager.wait()
    if damage == "bitflip":
        data = bytearray(best.read_bytes())
        data[100] ^= 0x80
        best.write_bytes(bytes(data))
    else:
        (best.parent / (best.name + ".json")).write_text("{garbage")
    with pytest.raises(CheckpointCorruptError, match=best.name):
        manager.load_best()


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_code_in_a_checkpoint_is_refused_and_never_runs(tmp_path: Path) -> None:
    model, _, _ = _setup()
    manager = _manager(tmp_path)
    honest = manager.save(0, model)
    marker = tmp_path / "pwned"
    evil = manager.directory / "ckpt-000002-e1-s0.pt"
    torch.save({"format_version": 1, "model": {}, "x": _Exploit(marker)}, evil)
    digest, size = hash_file(evil)  # an attacker can forge a matching record
    record = json.loads((honest.parent / (honest.name + ".json")).read_text())
    record.update(file=evil.name, seq=2, sha256=digest, size=size)
    (evil.parent / (evil.name + ".json")).write_text(json.dumps(record))

    with pytest.raises(UnsafeCheckpointError, match="refused to load"):
        manager.load_latest()
    with pytest.raises(UnsafeCheckpointError, match=evil.name):
        manager.load(evil)
    assert not marker.exists()
    # the payload is live: an unsafe loader would have run it
    code = f"import torch; torch.load({str(evil)!r}, weights_only=False)"
    subprocess.run([sys.executable, "-c", code], check=False, capture_output=True)
    assert marker.exists()


def test_unsafe_objects_are_refused_at_save_time(tmp_path: Path) -> None:
    model, _, _ = _setup()
    manager = _manager(tmp_path)
    with pytest.raises(CheckpointError, match=r"extra\['cfg'\]"):
        manager.save(0, model, extra={"cfg": object()})
    with pytest.raises(CheckpointError, match=r"extra\['lr'\]"):
        manager.save(0, model, extra={"lr": np.float64(0.1)})
    assert _files(manager) == []


def test_async_save_snapshots_state_and_reports_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, opt, sched = _setup()
    _train(model, opt, sched, 2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    manager = _manager(tmp_path)
    path = manager.save(0, model, opt, sched, blocking=False)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(100.0)  # changes after save() returned must not leak into the file
    manager.wait()
    ckpt = manager.load(path)
    for name, value in before.items():
        assert torch.equal(ckpt.model_state[name], value)

    def boom(*args, **kwargs):
        raise OSError("no space left on device")

    monkeypatch.setattr(checkpoint_module, "write_payload", boom)
    manager.save(1, model, blocking=False)
    with pytest.raises(CheckpointError, match="no space left"):
        manager.wait()
    manager.wait()  # the error is reported once


def test_second_async_save_waits_for_the_first(tmp_path: Path) -> None:
    model, _, _ = _setup()
    manager = _manager(tmp_path, max_to_keep=5)
    paths = [manager.save(e, model, blocking=False) for e in range(4)]
    manager.wait()
    assert [i.path for i in manager.list()] == paths


def test_wrapper_prefixes_load_both_ways(tmp_path: Path) -> None:
    model, _, _ = _setup()
    manager = _manager(tmp_path)
    manager.save(0, nn.DataParallel(model))  # saved without the "module." prefix
    ckpt = manager.load_latest()
    assert all(not k.startswith("module.") for k in ckpt.model_state)
    plain, _, _ = _setup(seed=3)
    manager.restore_objects(ckpt, plain)
    wrapped = nn.DataParallel(_setup(seed=4)[0])
    manager.restore_objects(ckpt, wrapped)
    prefixed = {f"module.{k}": v for k, v in ckpt.model_state.items()}
    ckpt.model_state = prefixed  # as saved by code that kept the DDP prefix
    other, _, _ = _setup(seed=5)
    manager.restore_objects(ckpt, other)
    for a, b, c in zip(
        plain.state_dict().values(),
        wrapped.module.state_dict().values(),
        other.state_dict().values(),
    ):
        assert torch.equal(a, b.cpu()) and torch.equal(a, c)  # DataParallel may move to GPU


def test_restore_mismatches_name_the_file(tmp_path: Path) -> None:
    model, _, _ = _setup()
    manager = _manager(tmp_path)
    path = manager.save(0, model)
    ckpt = manager.load_latest()
    with pytest.raises(CheckpointError, match=path.name):
        manager.restore_objects(ckpt, nn.Linear(4, 2))
    _, opt, _ = _setup()
    with pytest.raises(CheckpointError, match="no optimizer state"):
        manager.restore_objects(ckpt, model, opt)


def test_leftovers_of_an_interrupted_save_are_cleaned(tmp_path: Path) -> None:
    model, _, _ = _setup()
    manager = _manager(tmp_path)
    manager.save(0, model)
    manager.wait()
    (manager.directory / ".ckpt-000002-e1-s0.pt.999999999.0123abcd.tmp").write_bytes(b"half")
    (manager.directory / "ckpt-000002-e1-s0.pt").write_bytes(b"payload without record")
    assert len(manager.list()) == 1
    fresh = CheckpointManager(manager.config)
    path = fresh.save(1, model)
    fresh.wait()
    assert path.name == "ckpt-000003-e1-s0.pt"  # never reuses a number found on disk
    assert _files(fresh) == sorted(
        [
            "ckpt-000001-e0-s0.pt",
            "ckpt-000001-e0-s0.pt.json",
            path.name,
            path.name + ".json",
            "index.json",
        ]
    )


def test_lost_index_is_harmless(tmp_path: Path) -> None:
    model, _, _ = _setup()
    manager = _manager(tmp_path, best_metric_name="loss")
    path = manager.save(0, model, metrics={"loss": 1.0})
    manager.wait()
    (manager.directory / "index.json").unlink()
    assert manager.load_latest().path == path
    assert manager.load_best().path == path


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"best_mode": "median"}, "best_mode"),
        ({"max_to_keep": 0}, "max_to_keep"),
        ({"max_to_keep": 2.5}, "max_to_keep"),
        ({"prefix": "a/b"}, "prefix"),
    ],
)
def test_bad_config_is_a_value_error(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CheckpointConfig(tmp_path, **kwargs)


def test_bad_save_arguments(tmp_path: Path) -> None:
    model, _, _ = _setup()
    manager = _manager(tmp_path)
    with pytest.raises(ValueError, match="epoch"):
        manager.save(-1, model)
    with pytest.raises(ValueError, match="step"):
        manager.save(0, model, step=1.5)  # type: ignore[arg-type]


def test_damaged_best_stays_reported_after_later_saves(tmp_path: Path) -> None:
    model, _, _ = _setup()
    manager = _manager(tmp_path, max_to_keep=1, best_metric_name="val_loss")
    best = manager.save(0, model, metrics={"val_loss": 0.1})
    manager.wait()
    (best.parent / (best.name + ".json")).unlink()  # the best loses its record
    manager.save(1, model, metrics={"val_loss": 0.5})
    manager.save(2, model, metrics={"val_loss": 0.4})
    assert best.exists()  # not mistaken for an unfinished save and removed
    with pytest.raises(CheckpointCorruptError, match=best.name):
        manager.load_best()
    better = manager.save(3, model, metrics={"val_loss": 0.05})  # a real improvement wins
    assert manager.load_best().path == better


def test_failure_mid_write_keeps_the_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hyso.core.storage import checkpoint_file

    model, opt, _ = _setup()
    manager = _manager(tmp_path)
    good = manager.save(0, model, opt)
    manager.wait()
    real_write = checkpoint_file._HashingWriter._write

    def fail_after_some_bytes(self, data):
        if self.size > 2000:
            raise OSError(28, "No space left on device")
        return real_write(self, data)

    monkeypatch.setattr(checkpoint_file._HashingWriter, "_write", fail_after_some_bytes)
    with pytest.raises(OSError, match="No space left"):
        manager.save(1, model, opt)
    monkeypatch.undo()
    assert _files(manager) == sorted([good.name, good.name + ".json", "index.json"])
    assert manager.load_latest().path == good


def test_payload_is_a_plain_weights_only_torch_file(tmp_path: Path) -> None:
    model, opt, _ = _setup()
    path = _manager(tmp_path).save(4, model, opt, step=9)
    raw = torch.load(path, weights_only=True)
    assert raw["format_version"] == 1 and (raw["epoch"], raw["step"]) == (4, 9)
    for name, value in model.state_dict().items():
        assert torch.equal(raw["model"][name], value)
    record = json.loads((path.parent / (path.name + ".json")).read_text())
    assert record["format_version"] == 1
    assert (record["sha256"], record["size"]) == hash_file(path)


def test_background_saves_reuse_staging_without_mixing_contents(tmp_path: Path) -> None:
    model, opt, sched = _setup()
    manager = _manager(tmp_path, max_to_keep=5)
    expected, paths = [], []
    for epoch in range(3):
        _train(model, opt, sched, 1)
        expected.append({k: v.clone() for k, v in model.state_dict().items()})
        paths.append(manager.save(epoch, model, opt, sched, blocking=False))
    manager.wait()
    for path, states in zip(paths, expected):
        ckpt = manager.load(path)
        for name, value in states.items():
            assert torch.equal(ckpt.model_state[name], value), (path.name, name)


def test_snapshot_reuses_matching_buffers_and_keeps_ties() -> None:
    from hyso.core.storage.state import snapshot_to_cpu

    tied = torch.arange(6.0)
    first = snapshot_to_cpu({"a": tied, "b": tied, "c": [torch.ones(2)]})
    assert first["a"] is first["b"] and first["a"] is not tied
    tied.add_(1)
    second = snapshot_to_cpu({"a": tied, "b": tied, "c": [torch.ones(3)]}, reuse=first)
    assert second["a"] is first["a"]  # same shape: overwritten in place
    assert torch.equal(second["a"], torch.arange(6.0) + 1) and second["b"] is second["a"]
    assert second["c"][0].shape == (3,)  # shape changed: a new buffer


def test_background_save_completes_when_the_program_exits_right_after(tmp_path: Path) -> None:
    code = (
        "import sys, torch\n"
        "from hyso.core.storage import CheckpointConfig, CheckpointManager\n"
        "manager = CheckpointManager(CheckpointConfig(sys.argv[1]))\n"
        "model = torch.nn.Sequential(*[torch.nn.Linear(512, 512) for _ in range(8)])\n"
        "torch.nn.init.constant_(model[0].weight, 3.0)\n"
        "manager.save(5, model, blocking=False)\n"  # no wait(): the script ends here
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, timeout=120)
    ckpt = CheckpointManager(CheckpointConfig(tmp_path)).load_latest()
    assert ckpt is not None and ckpt.epoch == 5
    assert torch.all(ckpt.model_state["0.weight"] == 3.0)


def test_module_extra_state_that_cannot_load_safely_is_refused(tmp_path: Path) -> None:
    class WithExtraState(nn.Linear):
        def get_extra_state(self):
            return {"tokenizer": object()}

        def set_extra_state(self, state) -> None:
            pass

    manager = _manager(tmp_path)
    with pytest.raises(CheckpointError, match=r"model state\['_extra_state'\]"):
        manager.save(0, WithExtraState(2, 2))
    assert _files(manager) == []
