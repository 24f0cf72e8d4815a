"""pretrained.atomic_write_bytes: a writer that dies mid-write leaves the old file intact."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hyso.core.models import pretrained

TEMP_RE = re.compile(r"^\..+\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp\Z")  # the project's scheme


def test_writes_and_replaces_without_leftovers(tmp_path: Path) -> None:
    target = tmp_path / "config.json"
    pretrained.atomic_write_bytes(target, b"old")
    pretrained.atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]


def test_an_error_between_write_and_replace_keeps_the_old_file(tmp_path, monkeypatch) -> None:
    target = tmp_path / "model.safetensors"
    target.write_bytes(b"old weights")
    temps: list[str] = []

    def failing_replace(src, dst):
        temps.append(Path(src).name)
        assert Path(src).read_bytes() == b"new weights"  # written and flushed by now
        raise OSError("disk gone")

    monkeypatch.setattr(pretrained.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk gone"):
        pretrained.atomic_write_bytes(target, b"new weights")
    assert target.read_bytes() == b"old weights"
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]  # temp removed
    match = TEMP_RE.match(temps[0])
    assert match and int(match["pid"]) == os.getpid() and temps[0].startswith(".model.")


def test_a_killed_writer_leaves_the_old_file_and_a_recognisable_temp(tmp_path: Path) -> None:
    target = tmp_path / "config.json"
    target.write_bytes(b"old")
    # The child stops inside the write (at the fsync of the temp file) until it is killed.
    code = (
        "import os, sys, time\n"
        "from pathlib import Path\n"
        "from hyso.core.models import pretrained\n"
        "def stall(fd):\n"
        "    print('writing', flush=True)\n"
        "    time.sleep(60)\n"
        "os.fsync = stall\n"
        f"pretrained.atomic_write_bytes(Path({str(target)!r}), b'new' * 100000)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "writing"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL
    assert target.read_bytes() == b"old"
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "config.json"]
    assert len(leftovers) == 1
    match = TEMP_RE.match(leftovers[0])
    assert match and int(match["pid"]) == child.pid
