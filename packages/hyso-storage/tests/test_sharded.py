"""Sharded checkpoints: a record written last, ``latest`` only for committed folders,
verification, rotation, and loading at another world size (2 -> 1, 1 -> 2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import hyso.core.storage.checkpoint as checkpoint_module
from hyso.core.storage import CheckpointConfig, CheckpointCorruptError, CheckpointManager


def _model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(6, 10), torch.nn.ReLU(), torch.nn.Linear(10, 3))


def _trained(seed: int = 0):
    model = _model(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    for _ in range(2):
        model(torch.randn(4, 6)).square().mean().backward()
        opt.step()
        opt.zero_grad()
        sched.step()
    return model, opt, sched


def _manager(folder: Path, **kwargs) -> CheckpointManager:
    return CheckpointManager(CheckpointConfig.from_dir(directory=folder, **kwargs))


def _assert_same(a: torch.nn.Module, b: torch.nn.Module) -> None:
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name


def test_round_trip_in_one_process(tmp_path) -> None:
    model, opt, sched = _trained()
    mgr = _manager(tmp_path)
    path = mgr.save_sharded(1, model, opt, sched, step=7, metrics={"val_loss": 0.5}, extra={"a": 1})
    assert path.name == "ckpt-000001-e1-s7.dcp" and path.is_dir()
    record = json.loads((tmp_path / "ckpt-000001-e1-s7.dcp.json").read_text())
    assert record["format_version"] == 1 and record["kind"] == "sharded"
    assert "extra.pt" in record["files"] and ".metadata" in record["files"]
    assert mgr.latest_path == path
    fresh, fresh_opt, fresh_sched = _trained(seed=1)
    ckpt = mgr.load_latest()
    assert (ckpt.epoch, ckpt.step, ckpt.extra, ckpt.sharded) == (1, 7, {"a": 1}, True)
    mgr.restore_objects(ckpt, fresh, fresh_opt, fresh_sched)
    _assert_same(model, fresh)
    for p, q in zip(model.parameters(), fresh.parameters()):
        torch.testing.assert_close(fresh_opt.state[q]["exp_avg"], opt.state[p]["exp_avg"])
    assert fresh_sched.state_dict() == sched.state_dict()
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".staging")]


def test_a_save_that_dies_before_its_record_is_never_latest(tmp_path, monkeypatch) -> None:
    model, opt, _ = _trained()
    mgr = _manager(tmp_path)
    first = mgr.save_sharded(0, model, opt, step=1)

    def crash(path, record):
        raise OSError("killed before the record")

    monkeypatch.setattr(checkpoint_module, "write_record", crash)
    with pytest.raises(OSError, match="killed"):
        mgr.save_sharded(0, model, opt, step=2)
    monkeypatch.undo()
    unfinished = tmp_path / "ckpt-000002-e0-s2.dcp"
    assert unfinished.is_dir()  # every shard landed, the record did not
    assert mgr.latest_path == first
    assert mgr.load_latest().step == 1
    (tmp_path / ".ckpt-000009-e0-s9.dcp.staging").mkdir()  # a dead writer's shards
    third = mgr.save_sharded(0, model, opt, step=3)
    mgr.wait()
    assert not unfinished.exists() and not (tmp_path / ".ckpt-000009-e0-s9.dcp.staging").exists()
    assert mgr.latest_path == third


def test_a_damaged_shard_is_refused_and_skipped(tmp_path) -> None:
    model, opt, _ = _trained()
    mgr = _manager(tmp_path)
    first = mgr.save_sharded(0, model, opt, step=1)
    second = mgr.save_sharded(0, model, opt, step=2)
    mgr.wait()
    shard = next(p for p in second.iterdir() if p.suffix == ".distcp")
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(CheckpointCorruptError, match=shard.name):
        mgr.load(second)
    assert mgr.load_latest().path == first


def test_rotation_removes_old_folders_and_keeps_the_best(tmp_path) -> None:
    model, opt, _ = _trained()
    mgr = _manager(tmp_path, max_to_keep=1, best_metric_name="val_loss")
    best = mgr.save_sharded(0, model, opt, step=1, metrics={"val_loss": 0.1})
    mgr.save_sharded(0, model, opt, step=2, metrics={"val_loss": 0.9})
    last = mgr.save_sharded(0, model, opt, step=3, metrics={"val_loss": 0.8})
    mgr.wait()
    kept = sorted(n for n in os.listdir(tmp_path) if n.endswith(".dcp"))
    assert kept == [best.name, last.name]
    assert mgr.best_path == best and mgr.latest_path == last


WORKER = textwrap.dedent(
    """
    import os, sys
    import torch
    import torch.distributed as dist
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions, get_model_state_dict, get_optimizer_state_dict)
    from torch.distributed.fsdp import fully_shard
    from hyso.core.storage import CheckpointConfig, CheckpointManager

    mode, folder, out = sys.argv[1], sys.argv[2], sys.argv[3]
    dist.init_process_group("gloo")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 10), torch.nn.ReLU(), torch.nn.Linear(10, 3))
    fully_shard(model[0])
    fully_shard(model[2])
    fully_shard(model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    mgr = CheckpointManager(CheckpointConfig.from_dir(directory=folder))
    if mode == "save":
        torch.manual_seed(1 + dist.get_rank())
        model(torch.randn(4, 6)).square().mean().backward()
        opt.step()
        mgr.save_sharded(0, model, opt, step=1)
    else:
        mgr.restore_objects(mgr.load_latest(), model, opt)
    full = StateDictOptions(full_state_dict=True, cpu_offload=True)
    states = {"model": get_model_state_dict(model, options=full),
              "optim": get_optimizer_state_dict(model, opt, options=full)}
    if dist.get_rank() == 0:
        torch.save(states, out)
    dist.barrier()
    # Leave without tearing gloo down: a peer closing its sockets while the other still
    # finishes the barrier can abort that one ("terminate called"), which is not what
    # this test is about.
    os._exit(0)
    """
)


def _torchrun(tmp_path: Path, mode: str, folder: Path, out: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    proc = subprocess.run(
        [*cmd, str(script), mode, str(folder), str(out)],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.timeout(300)
def test_two_process_checkpoint_loads_in_one_process(tmp_path) -> None:
    folder, out = tmp_path / "ckpts", tmp_path / "full.pt"
    _torchrun(tmp_path, "save", folder, out)
    saved = torch.load(out, weights_only=True)
    model = _model(seed=3)  # other weights, and an optimizer like the saved one
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    mgr = _manager(folder)
    mgr.restore_objects(mgr.load_latest(), model, opt)
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(tensor, saved["model"][name], rtol=0, atol=0, msg=name)
    for name, p in model.named_parameters():
        want = saved["optim"]["state"][name]["exp_avg"]
        torch.testing.assert_close(opt.state[p]["exp_avg"], want, rtol=0, atol=0, msg=name)


@pytest.mark.timeout(300)
def test_one_process_checkpoint_loads_sharded_over_two(tmp_path) -> None:
    folder, out = tmp_path / "ckpts", tmp_path / "loaded.pt"
    model = _model(seed=4)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model(torch.randn(4, 6)).square().mean().backward()
    opt.step()
    _manager(folder).save_sharded(0, model, opt, step=2)
    _torchrun(tmp_path, "load", folder, out)
    loaded = torch.load(out, weights_only=True)
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(loaded["model"][name], tensor, rtol=0, atol=0, msg=name)
    for name, p in model.named_parameters():
        got = loaded["optim"]["state"][name]["exp_avg_sq"]
        torch.testing.assert_close(got, opt.state[p]["exp_avg_sq"], rtol=0, atol=0, msg=name)


class _RunsCode:
    """Unpickling this calls ``Path.touch`` on a marker file: a stand-in for any code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_crafted_metadata_file_runs_nothing(tmp_path) -> None:
    """DCP's ``.metadata`` is a pickle: one that names anything but checkpoint metadata is
    refused before a single object is built from it."""
    import pickle

    from hyso.core.storage.sharded import load_sharded_states

    model, opt, sched = _trained()
    path = _manager(tmp_path / "c").save_sharded(1, model, opt, sched, step=1)
    marker = tmp_path / "ran"
    (path / ".metadata").write_bytes(pickle.dumps(_RunsCode(marker)))
    with pytest.raises(CheckpointCorruptError, match="refused"):
        load_sharded_states(path, _model())
    assert not marker.exists()


def test_non_tensor_values_are_read_as_plain_data_only(tmp_path) -> None:
    import io
    import pickle

    from hyso.core.storage._dcp_safe import SafeLoadPlanner

    marker = tmp_path / "ran"
    buffer = io.BytesIO()
    torch.save(_RunsCode(marker), buffer)
    buffer.seek(0)
    with pytest.raises(pickle.UnpicklingError):
        SafeLoadPlanner().load_bytes(None, buffer)
    assert not marker.exists()
