"""Manifest: config objects in, environment recorded, atomic JSON round trip."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hyso.core.storage import Manifest, load_manifest, save_manifest


class AttrMapping(Mapping):
    """A read-only mapping with attribute access, like hyso.core.config.Config."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = {k: AttrMapping(v) if isinstance(v, dict) else v for k, v in data.items()}

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __getattr__(self, key: str) -> Any:
        return self._data[key]


@dataclasses.dataclass
class ModelCfg:
    name: str = "encoder_only"
    dim: int = 256
    layers: int = 2


class ToDict:
    def to_dict(self) -> dict[str, Any]:
        return {"name": "dummy", "paths": [Path("/data/a.txt")]}


def test_new_accepts_config_objects_and_records_everything(tmp_path: Path) -> None:
    training = AttrMapping({"lr": 1e-3, "batch_size": 16, "opt": {"betas": (0.9, 0.95)}})
    m = Manifest.new(
        run_id="r1",
        model=ModelCfg(),
        training=training,
        data=ToDict(),
        workdir=tmp_path,
        note="first",
    )
    assert m.model == {"name": "encoder_only", "dim": 256, "layers": 2}
    assert m.training == {"lr": 1e-3, "batch_size": 16, "opt": {"betas": [0.9, 0.95]}}
    assert m.data == {"name": "dummy", "paths": ["/data/a.txt"]}
    assert m.hyperparameters["training.lr"] == 1e-3
    assert m.hyperparameters["model.dim"] == 256
    assert m.extra == {"note": "first"}
    assert m.status == "running" and m.pid == os.getpid()
    assert m.hostname == socket.gethostname()
    created = datetime.fromisoformat(m.created_at)
    assert created.utcoffset() == timezone.utc.utcoffset(None)
    assert abs((datetime.now(timezone.utc) - created).total_seconds()) < 60
    env = m.environment
    assert env["torch"]["version"] == str(torch.__version__)
    assert env["torch"]["cuda_available"] == torch.cuda.is_available()
    assert len(env["torch"]["gpus"]) == (
        torch.cuda.device_count() if torch.cuda.is_available() else 0
    )
    assert "cudnn_available" in env["torch"] and "cudnn_version" in env["torch"]
    assert env["python"]["version"].count(".") == 2
    assert env["os"]["system"] and env["os"]["platform"]
    assert "hyso-storage" in env["hyso_packages"]
    assert env["git"] is None  # tmp_path is not a checkout


def test_save_load_round_trip_is_atomic_json(tmp_path: Path) -> None:
    m = Manifest.new(
        run_id="r2", model={"dim": 8}, training={"lr": 0.1}, data={"name": "x"}, workdir=tmp_path
    )
    m.mark("finished", results={"best_val_loss": 1.25, "nan": float("nan")})
    path = tmp_path / "manifest.json"
    save_manifest(path, m)
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]
    raw = json.loads(path.read_text())
    assert raw["format_version"] == 1
    loaded = load_manifest(path)
    assert loaded.status == "finished" and loaded.finished_at is not None
    assert loaded.results == {"best_val_loss": 1.25, "nan": "nan"}
    assert loaded.to_dict() == m.to_dict()
    assert Manifest.from_dict(m.to_dict()).to_dict() == m.to_dict()


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=30, deadline=None)
@given(data=st.dictionaries(st.text(min_size=1), json_values, max_size=5))
def test_any_json_data_round_trips(tmp_path_factory: pytest.TempPathFactory, data: dict) -> None:
    folder = tmp_path_factory.mktemp("m")
    m = Manifest(run_id="r", created_at="2026-01-01T00:00:00+00:00", data=data, extra=data)
    save_manifest(folder / "m.json", m)
    assert load_manifest(folder / "m.json") == m


def test_unsupported_objects_and_bad_files_raise_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"training\.opt: cannot record an object of type"):
        Manifest.new(run_id="r", training={"opt": object()}, workdir=tmp_path)
    with pytest.raises(ValueError, match="status"):
        Manifest(run_id="r", created_at="t").mark("exploded")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match=r"bad\.json.*not valid JSON"):
        load_manifest(bad)
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps({"format_version": 99, "run_id": "r", "created_at": "t"}))
    with pytest.raises(ValueError, match="format_version 99"):
        load_manifest(newer)
    unknown = tmp_path / "unknown.json"
    unknown.write_text(
        json.dumps({"format_version": 1, "run_id": "r", "created_at": "t", "surprise": 1})
    )
    with pytest.raises(ValueError, match="surprise"):
        load_manifest(unknown)


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_commit_and_dirty_flag(tmp_path: Path) -> None:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=tmp_path, check=True, capture_output=True, text=True
        ).stdout.strip()

    git("init", "-q")
    git("config", "user.email", "t@example.com")
    git("config", "user.name", "t")
    assert Manifest.new(run_id="r", workdir=tmp_path).environment["git"] is None  # no commit
    (tmp_path / "a.txt").write_text("1")
    git("add", "a.txt")
    git("commit", "-q", "-m", "one")
    git("checkout", "-q", "-b", "topic")
    clean = Manifest.new(run_id="r", workdir=tmp_path).environment["git"]
    assert clean["branch"] == "topic"
    assert clean["commit"] == git("rev-parse", "HEAD") and clean["dirty"] is False
    (tmp_path / "untracked.txt").write_text("not a change to tracked files")
    assert Manifest.new(run_id="r", workdir=tmp_path).environment["git"]["dirty"] is False
    (tmp_path / "a.txt").write_text("2")
    assert Manifest.new(run_id="r", workdir=tmp_path).environment["git"]["dirty"] is True


def test_hyso_package_versions_match_the_installed_metadata() -> None:
    from importlib import metadata

    from hyso.core.storage.environment import hyso_package_versions

    expected = {
        (d.metadata["Name"] or "").lower().replace("_", "-"): d.metadata["Version"]
        for d in metadata.distributions()
        if (d.metadata["Name"] or "").lower().replace("_", "-").startswith("hyso-")
    }
    found = hyso_package_versions()
    assert found == dict(sorted(expected.items()))
    assert "hyso-storage" in found  # the only hyso distribution every environment has
    found["hyso-storage"] = "changed by the caller"
    assert hyso_package_versions()["hyso-storage"] == expected["hyso-storage"]  # a copy
