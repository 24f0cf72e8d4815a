"""Careless input to hyso-storage: a second writer in one checkpoint folder, records
from newer versions or with wrong types. (A hostile git checkout is probed by the
adversarial suite, tests/adversarial/test_storage.py.)"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from hyso.core.storage import (
    CheckpointConfig,
    CheckpointCorruptError,
    CheckpointError,
    CheckpointManager,
)
from hyso.core.storage.checkpoint import LOCK_NAME
from hyso.core.storage.lock import FolderLock, FolderLockedError


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Linear(3, 2)


def _manager(folder: Path) -> CheckpointManager:
    config = CheckpointConfig.from_dir(directory=folder, best_metric_name="val_loss")
    return CheckpointManager(config)


_SAVE_AND_HOLD = """
import sys, time, torch
from hyso.core.storage import CheckpointConfig, CheckpointManager
m = CheckpointManager(CheckpointConfig.from_dir(directory=sys.argv[1]))
m.save(0, torch.nn.Linear(3, 2), step=1)
print("saved", flush=True)
time.sleep(60)
"""


def test_a_second_process_saving_into_the_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "ckpt"
    other = subprocess.Popen(
        [sys.executable, "-c", _SAVE_AND_HOLD, str(folder)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert other.stdout is not None and other.stdout.readline().strip() == "saved"
        manager = _manager(folder)
        with pytest.raises(FolderLockedError, match=f"process {other.pid}"):
            manager.save(1, _model(), step=2)
        assert [i.step for i in manager.list()] == [1]  # the other writer's file is intact
    finally:
        other.kill()
        other.wait()
    # the writer is gone: its lock is stale and taken over
    manager.save(1, _model(), step=2)
    assert [i.step for i in manager.list()] == [1, 2]
    manager.close()
    assert not (folder / LOCK_NAME).exists()


def test_lock_of_a_live_process_on_this_host_is_held_and_a_dead_ones_is_stale(
    tmp_path: Path,
) -> None:
    path = tmp_path / "lock"
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    dead_pid = int(done.stdout)
    owner = {"format_version": 1, "hostname": socket.gethostname(), "created_at": ""}
    path.write_text(json.dumps({**owner, "pid": dead_pid}), encoding="utf-8")
    lock = FolderLock(path)
    lock.acquire()
    assert json.loads(path.read_text())["pid"] == os.getpid()
    lock.release()
    assert not path.exists()
    path.write_text(json.dumps({**owner, "pid": os.getppid()}), encoding="utf-8")
    with pytest.raises(FolderLockedError, match=str(os.getppid())):
        FolderLock(path).acquire()
    path.write_text(json.dumps({**owner, "pid": 1, "hostname": "elsewhere"}), encoding="utf-8")
    with pytest.raises(FolderLockedError, match="elsewhere"):
        FolderLock(path).acquire()


def _saved(tmp_path: Path, count: int = 2) -> tuple[CheckpointManager, list[Path]]:
    manager = _manager(tmp_path / "ckpt")
    paths = [
        manager.save(i, _model(), step=i + 1, metrics={"val_loss": 1.0 - i / 10})
        for i in range(count)
    ]
    manager.wait()
    return manager, paths


def _edit_record(payload: Path, **changes: object) -> None:
    record_file = payload.with_name(payload.name + ".json")
    record = json.loads(record_file.read_text(encoding="utf-8"))
    record.update(changes)
    record_file.write_text(json.dumps(record), encoding="utf-8")


def test_a_newer_record_format_is_refused_not_skipped(tmp_path: Path) -> None:
    manager, paths = _saved(tmp_path)
    _edit_record(paths[-1], format_version=2)
    for call in (manager.list, manager.load_latest, lambda: manager.load(paths[-1])):
        with pytest.raises(CheckpointError, match="format_version 2, newer") as info:
            call()
        assert not isinstance(info.value, CheckpointCorruptError)


@pytest.mark.parametrize(
    "changes",
    [{"epoch": None}, {"metrics": []}, {"step": "3"}, {"seq": -1}, {"epoch": True}],
    ids=["epoch-null", "metrics-list", "step-str", "seq-negative", "epoch-bool"],
)
def test_a_record_with_wrong_types_is_a_damaged_record(
    tmp_path: Path, changes: dict[str, object], caplog: pytest.LogCaptureFixture
) -> None:
    manager, paths = _saved(tmp_path)
    _edit_record(paths[-1], **changes)
    assert [i.path for i in manager.list()] == paths[:1]  # listed without it, with a warning
    assert "damaged" in caplog.text
    latest = manager.load_latest()
    assert latest is not None and latest.path == paths[0]
    with pytest.raises(CheckpointCorruptError, match="damaged"):
        manager.load(paths[-1])
    manager.save(5, _model(), step=9)  # rotation goes on
    manager.wait()
    assert [i.step for i in manager.list()][-1] == 9


def test_apply_file_mode_follows_the_umask(tmp_path: Path) -> None:
    import tempfile

    from hyso.core.storage.permissions import apply_file_mode, current_umask

    previous = os.umask(0o027)
    try:
        assert current_umask() == 0o027
        fd, name = tempfile.mkstemp(dir=tmp_path)
        os.close(fd)
        assert os.stat(name).st_mode & 0o777 == 0o600
        apply_file_mode(name)
        assert os.stat(name).st_mode & 0o777 == 0o640
    finally:
        os.umask(previous)
