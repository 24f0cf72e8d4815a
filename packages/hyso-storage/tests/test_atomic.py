"""Atomic writes: complete file or old file, never a partial one; stale temps cleaned."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hyso.core.storage.atomic import (
    atomic_write,
    atomic_write_bytes,
    atomic_write_json,
    clean_stale_temps,
    is_temp_name,
)


@settings(max_examples=40, deadline=None)
@given(data=st.binary(max_size=4096))
def test_bytes_round_trip(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("a") / "f.bin"
    atomic_write_bytes(path, data)
    assert path.read_bytes() == data
    assert [p.name for p in path.parent.iterdir()] == ["f.bin"]


def test_json_refuses_nan_and_keeps_old_file(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    atomic_write_json(path, {"a": 1})
    with pytest.raises(ValueError):
        atomic_write_json(path, {"a": float("nan")})
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_failing_writer_leaves_old_content_and_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    atomic_write_bytes(path, b"old")

    def broken(handle) -> None:
        handle.write(b"half of the new con")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        atomic_write(path, broken)
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


def test_temp_of_a_dead_process_is_cleaned_but_live_ones_kept(tmp_path: Path) -> None:
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(child.stdout)
    dead = tmp_path / f".f.bin.{dead_pid}.0123abcd.tmp"
    mine = tmp_path / f".f.bin.{os.getpid()}.89abcdef.tmp"
    unrelated = tmp_path / "notes.tmp"
    for p in (dead, mine, unrelated):
        p.write_bytes(b"x")
    assert is_temp_name(dead.name) and not is_temp_name(unrelated.name)
    assert clean_stale_temps(tmp_path) == [dead]
    assert mine.exists() and unrelated.exists()
    assert clean_stale_temps(tmp_path, include_own=True) == [mine]
    assert unrelated.exists()


_KILLED_WRITER = """
import os, signal, sys
from hyso.core.storage.atomic import atomic_write

def half_then_die(handle):
    handle.write(b"half of the new con")
    handle.flush()
    os.fsync(handle.fileno())
    os.kill(os.getpid(), signal.SIGKILL)

atomic_write(sys.argv[1], half_then_die)
"""


@pytest.mark.skipif(os.name == "nt", reason="SIGKILL is POSIX")
def test_a_writer_killed_mid_write_leaves_the_old_file_and_a_cleanable_temp(
    tmp_path: Path,
) -> None:
    path = tmp_path / "f.bin"
    atomic_write_bytes(path, b"old")
    child = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(path)], check=False)
    assert child.returncode == -9  # killed by SIGKILL, inside the writer
    assert path.read_bytes() == b"old"
    leftovers = [p for p in tmp_path.iterdir() if p.name != "f.bin"]
    assert len(leftovers) == 1 and is_temp_name(leftovers[0].name)
    assert leftovers[0].read_bytes() == b"half of the new con"
    assert clean_stale_temps(tmp_path) == leftovers
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


def test_a_failure_between_write_and_replace_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "f.bin"
    atomic_write_bytes(path, b"old")

    def no_replace(src: object, dst: object) -> None:
        raise OSError("replace refused")

    monkeypatch.setattr(os, "replace", no_replace)
    with pytest.raises(OSError, match="replace refused"):
        atomic_write_bytes(path, b"new content")
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]
