"""Run folders: layout, unique time-sorted ids, concurrent creation, reopening."""

from __future__ import annotations

import multiprocessing as mp
import re
import time
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from hyso.core.storage import RunPathFactory, RunPaths
from hyso.core.storage.paths import make_run_id, validate_run_id


def test_create_makes_the_layout(tmp_path: Path) -> None:
    paths = RunPathFactory.from_root(tmp_path / "runs").create()
    assert paths.run_dir == tmp_path.resolve() / "runs" / paths.run_id
    assert paths.root == (tmp_path / "runs").resolve()
    for folder in (paths.run_dir, paths.logs_dir, paths.checkpoints_dir, paths.artifacts_dir):
        assert folder.is_dir()
    assert paths.logs_dir == paths.run_dir / "logs"
    assert paths.checkpoints_dir == paths.run_dir / "checkpoints"
    assert paths.artifacts_dir == paths.run_dir / "artifacts"
    assert paths.manifest_path == paths.run_dir / "manifest.json"
    assert paths.metrics_path == paths.run_dir / "metrics.csv"
    assert paths.config_path == paths.run_dir / "config.yaml"
    validate_run_id(paths.run_id)


def test_ids_sort_by_creation_time(tmp_path: Path) -> None:
    factory = RunPathFactory.from_root(tmp_path)
    created = [factory.create().run_id for _ in range(50)]
    assert sorted(created) == created
    assert len(set(created)) == 50
    assert [p.run_id for p in factory.list_runs()] == created


def test_named_run_and_bad_name(tmp_path: Path) -> None:
    paths = RunPathFactory.from_root(tmp_path).create(name="lm-small")
    assert paths.run_id.endswith("-lm-small")
    with pytest.raises(ValueError, match="run name"):
        RunPathFactory.from_root(tmp_path).create(name="../escape")


def test_path_for_creates_nothing_and_validates(tmp_path: Path) -> None:
    factory = RunPathFactory.from_root(tmp_path)
    run_id = make_run_id()
    paths = factory.path_for(run_id)
    assert paths.run_dir == factory.root / run_id
    assert not paths.run_dir.exists()
    with pytest.raises(ValueError, match="run id"):
        factory.path_for("../../etc")


def test_open_reopens_and_restores_missing_subfolders(tmp_path: Path) -> None:
    created = RunPathFactory.from_root(tmp_path).create()
    created.artifacts_dir.rmdir()
    reopened = RunPaths.open(created.run_dir)
    assert reopened == created
    assert reopened.artifacts_dir.is_dir()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        RunPaths.open(tmp_path / "nope")


def _create_many(root: str, start: float, count: int, out: mp.Queue) -> None:
    while time.time() < start:  # line up all processes on the same instant
        pass
    out.put([RunPathFactory.from_root(root).create().run_id for _ in range(count)])


def test_32_processes_get_32_distinct_folders(tmp_path: Path) -> None:
    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
    out: mp.Queue = ctx.Queue()
    start = time.time() + 1.0
    procs = [
        ctx.Process(target=_create_many, args=(str(tmp_path), start, 2, out)) for _ in range(32)
    ]
    for p in procs:
        p.start()
    ids = [run_id for _ in procs for run_id in out.get(timeout=60)]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert len(ids) == 64 and len(set(ids)) == 64
    assert sorted(d.name for d in tmp_path.iterdir()) == sorted(ids)


@settings(max_examples=80, deadline=None)
@given(name=st.text(max_size=70))
@example(name="lm\n")
@example(name="..")
@example(name="a" * 64)
def test_run_names_are_accepted_exactly_when_safe(name: str) -> None:
    safe = re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", name) is not None
    if safe:
        run_id = make_run_id(name)
        assert validate_run_id(run_id) == run_id and run_id.endswith("-" + name)
        assert "/" not in run_id and run_id not in (".", "..")
    else:
        with pytest.raises(ValueError, match="run name"):
            make_run_id(name)


def test_artifact_paths_live_in_the_artifacts_folder(tmp_path: Path) -> None:
    paths = RunPaths.for_run_dir(tmp_path / "r")
    assert paths.tokenizer_path == tmp_path / "r" / "artifacts" / "tokenizer.json"
    assert paths.loss_plot_path == tmp_path / "r" / "artifacts" / "loss.png"
    assert paths.manifest_path.name == "manifest.json"
