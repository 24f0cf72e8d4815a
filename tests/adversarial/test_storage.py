"""Adversarial probes of hyso-storage: a checkout whose git config runs commands, a
second process saving into one checkpoint folder, checkpoint records from a newer
version or with wrong types."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .harness import run_probe

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def hostile_checkout(root: Path, markers: Path) -> Path:
    """A git checkout whose config would run a command (one that leaves a marker file in
    ``markers``) through core.fsmonitor, a filter driver's clean command and a
    post-index-change hook, with stale stat data so that git would re-read its file."""
    repo = root / "hostile"
    repo.mkdir()
    markers.mkdir(exist_ok=True)
    script = root / "evil.sh"
    script.write_text(f'#!/bin/sh\ntouch "{markers}/marker-$1"\ncat\n', encoding="utf-8")
    script.chmod(0o755)

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)

    git("init", "-q")
    git("config", "user.email", "t@example.com")
    git("config", "user.name", "t")
    (repo / "a.txt").write_text("one\n", encoding="utf-8")
    git("add", "a.txt")
    git("commit", "-q", "-m", "one")
    git("config", "core.fsmonitor", f"{script} fsmonitor")
    git("config", "filter.evil.clean", f"{script} clean")
    (repo / ".gitattributes").write_text("* filter=evil\n", encoding="utf-8")
    hook = repo / ".git" / "hooks" / "post-index-change"
    hook.parent.mkdir(parents=True, exist_ok=True)
    hook.write_text(f'#!/bin/sh\ntouch "{markers}/marker-hook"\n', encoding="utf-8")
    hook.chmod(0o755)
    (repo / "a.txt").touch()
    return repo


@needs_git
def test_manifest_in_a_hostile_checkout_runs_none_of_its_commands(probe_dir: Path) -> None:
    markers = probe_dir / "markers"
    repo = hostile_checkout(probe_dir, markers)
    result = run_probe(
        """
        from hyso.core.storage import Manifest
        git = Manifest.new(run_id="r").environment["git"]
        print(git["dirty"], len(git["commit"]))
        """,
        cwd=repo,
    )
    result.expect_ok("False 40")
    assert sorted(p.name for p in markers.iterdir()) == []


_HOLD = """
import sys, time, torch
from hyso.core.storage import CheckpointConfig, CheckpointManager
m = CheckpointManager(CheckpointConfig.from_dir(directory=sys.argv[1]))
m.save(0, torch.nn.Linear(3, 2), step=1)
print("saved", flush=True)
time.sleep(60)
"""

_SECOND_WRITER = """
import sys, torch
from hyso.core.storage import CheckpointConfig, CheckpointError, CheckpointManager
m = CheckpointManager(CheckpointConfig.from_dir(directory="ckpt"))
try:
    m.save(1, torch.nn.Linear(3, 2), step=2)
except CheckpointError as exc:
    sys.exit(f"error: {exc}")
print("saved")
"""


def test_a_second_writer_in_one_checkpoint_folder_is_refused(probe_dir: Path) -> None:
    folder = probe_dir / "ckpt"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(folder)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "saved"
        run_probe(_SECOND_WRITER, cwd=probe_dir).expect_error(
            f"is being written by process {holder.pid}", "lock file"
        )
        assert sorted(p.name for p in folder.glob("*.pt")) == ["ckpt-000001-e0-s1.pt"]
    finally:
        holder.kill()
        holder.wait()
    run_probe(_SECOND_WRITER, cwd=probe_dir).expect_ok("saved")  # the stale lock is taken over


_LATEST = """
import sys
from hyso.core.storage import CheckpointConfig, CheckpointError, CheckpointManager
m = CheckpointManager(CheckpointConfig.from_dir(directory="ckpt", best_metric_name="loss"))
try:
    latest = m.load_latest()
    print("listed", [i.step for i in m.list()], "latest", latest.step)
except CheckpointError as exc:
    sys.exit(f"error: {exc}")
"""


def _two_checkpoints(folder: Path) -> list[Path]:
    code = """
    import torch
    from hyso.core.storage import CheckpointConfig, CheckpointManager
    m = CheckpointManager(CheckpointConfig.from_dir(directory="ckpt", best_metric_name="loss"))
    for i in range(2):
        m.save(i, torch.nn.Linear(3, 2), step=i + 1, metrics={"loss": 2.0 - i})
    m.close()
    """
    run_probe(code, cwd=folder).expect_ok()
    return sorted((folder / "ckpt").glob("*.pt.json"))


def test_a_record_of_a_newer_format_is_refused_loudly(probe_dir: Path) -> None:
    records = _two_checkpoints(probe_dir)
    newest = json.loads(records[-1].read_text(encoding="utf-8"))
    records[-1].write_text(json.dumps({**newest, "format_version": 2}), encoding="utf-8")
    run_probe(_LATEST, cwd=probe_dir).expect_error("format_version 2, newer", "upgrade")


@pytest.mark.parametrize(
    "changes", [{"epoch": None}, {"metrics": []}, {"step": "2"}, {"size": 1.5}], ids=str
)
def test_a_record_with_wrong_types_is_damaged_not_a_crash(
    probe_dir: Path, changes: dict[str, object]
) -> None:
    records = _two_checkpoints(probe_dir)
    newest = json.loads(records[-1].read_text(encoding="utf-8"))
    records[-1].write_text(json.dumps({**newest, **changes}), encoding="utf-8")
    run_probe(_LATEST, cwd=probe_dir).expect_ok("listed [1] latest 1")
