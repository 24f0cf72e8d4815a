"""The package's atomic writer: a writer killed mid-write leaves the old file intact."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hyso.core.config import load_config, save_config
from hyso.core.config.io import atomic_write_text

# The project's temp-name scheme (hyso.core.storage.atomic), which stale-temp cleanup reads.
TEMP_NAME = re.compile(r"^\..+\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp\Z")

# Writes the new text, then stalls where os.replace would move it into place.
STALLED_WRITER = """
import os, sys, time
from pathlib import Path
from hyso.core.config.io import atomic_write_text

def stall(src, dst):
    print(src, flush=True)
    time.sleep(120)

os.replace = stall
atomic_write_text(Path(sys.argv[1]), "training:\\n  lr: 0.5\\n")
"""


@pytest.mark.skipif(os.name == "nt", reason="SIGKILL is POSIX")
def test_writer_killed_before_the_rename_leaves_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    save_config({"training": {"lr": 0.1}}, path)
    old = path.read_bytes()
    proc = subprocess.Popen(
        [sys.executable, "-c", STALLED_WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        temp = Path(proc.stdout.readline().strip())
        assert temp.read_text(encoding="utf-8") == "training:\n  lr: 0.5\n"  # written, synced
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert path.read_bytes() == old
    assert load_config(path) == {"training": {"lr": 0.1}}
    assert temp.parent == tmp_path
    match = TEMP_NAME.match(temp.name)
    assert match is not None and int(match["pid"]) == proc.pid
    assert temp.name.startswith(".c.yaml.")


def test_exception_before_the_rename_removes_the_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "c.yaml"
    atomic_write_text(path, "a: 1\n")
    seen: list[str] = []

    def broken_replace(src: str, dst: str) -> None:
        seen.append(Path(src).name)
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(path, "a: 2\n")
    monkeypatch.undo()
    assert path.read_text(encoding="utf-8") == "a: 1\n"
    assert [p.name for p in tmp_path.iterdir()] == ["c.yaml"]
    assert len(seen) == 1 and TEMP_NAME.match(seen[0]) is not None
