"""Saving: YAML/JSON by suffix, atomic writes, the run record of config + overrides."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hyso.core.config import (
    Config,
    ConfigError,
    load_config,
    load_config_with_overrides,
    load_run_overrides,
    save_config,
    save_run_config,
)

TRICKY = {
    "model": {"dim": 8, "name": "yes", "code": "0x1F", "version": "1e-4"},
    "training": {"lr": 1e-4, "wd": 1e-12, "clip": float("inf"), "on": True, "none": None},
    "text": {"date": "2024-01-01", "time": "1:30", "ref": "${not.a.ref}", "nl": "a\nb"},
    "lists": [[1, 2], {"a": "null"}, "~", ""],
}


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".json"])
def test_saved_config_loads_back_equal(tmp_path: Path, suffix: str) -> None:
    path = save_config(Config(TRICKY), tmp_path / f"out{suffix}")
    loaded = load_config(path)
    assert loaded == TRICKY
    assert type(loaded.training.lr) is float and loaded.model.name == "yes"


def test_saved_file_carries_a_format_version(tmp_path: Path) -> None:
    path = save_config({"a": 1}, tmp_path / "c.yaml")
    assert path.read_text(encoding="utf-8").startswith("_format_version_: 1\n")


def test_plain_dicts_and_to_dict_objects_are_accepted(tmp_path: Path) -> None:
    class Obj:
        def to_dict(self) -> dict:
            return {"a": {"b": 2}}

    assert load_config(save_config(Obj(), tmp_path / "o.json")) == {"a": {"b": 2}}
    with pytest.raises(ConfigError, match=r"cannot save an int"):
        save_config(3, tmp_path / "x.yaml")


def test_unsupported_suffix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unsupported suffix '\.toml'"):
        save_config({"a": 1}, tmp_path / "c.toml")


def test_write_is_atomic_and_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "c.yaml"
    save_config({"a": 1}, path)
    save_config({"a": 2}, path)
    assert load_config(path) == {"a": 2}
    assert sorted(p.name for p in path.parent.iterdir()) == ["c.yaml"]


def test_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "c.yaml"
    save_config({"a": 1}, path)

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match=r"disk full"):
        save_config({"a": 2}, path)
    monkeypatch.undo()
    assert load_config(path) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["c.yaml"]


def test_unsaveable_values_are_refused_before_writing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config key 'a.p' holds"):
        save_config({"a": {"p": tmp_path}}, tmp_path / "c.yaml")
    assert not (tmp_path / "c.yaml").exists()


def test_run_record_rebuilds_the_config(tmp_path: Path, base_file: Path) -> None:
    overrides = ["training.lr=0.0001", "model.dim=512", "+training.note='a b'"]
    cfg = load_config_with_overrides(base_file, overrides)
    run = tmp_path / "run"
    written = save_run_config(cfg, run / "config.yaml")
    assert written == [run / "config.yaml", run / "overrides.yaml"]
    assert load_config(written[0]) == cfg
    record = load_run_overrides(run)
    assert record == {"format_version": 1, "source": str(base_file), "overrides": overrides}
    rebuilt = load_config_with_overrides(record["source"], record["overrides"])
    assert rebuilt == cfg


def test_run_record_with_explicit_overrides_and_plain_dict(tmp_path: Path) -> None:
    written = save_run_config({"a": 1}, tmp_path / "config.yaml", ["a=1"], source="x.yaml")
    assert load_run_overrides(written[1])["overrides"] == ["a=1"]
    assert load_run_overrides(written[1])["source"] == "x.yaml"
    bare = save_run_config({"a": 1}, tmp_path / "b" / "config.yaml")
    assert load_run_overrides(bare[1]) == {"format_version": 1, "source": None, "overrides": []}


def test_run_record_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"name of the overrides record"):
        save_run_config({"a": 1}, tmp_path / "overrides.yaml")
    with pytest.raises(ConfigError, match=r"list of strings, not one string"):
        save_run_config({"a": 1}, tmp_path / "c.yaml", overrides="a=1")  # type: ignore[arg-type]
    (tmp_path / "overrides.yaml").write_text("format_version: 7\noverrides: []\n")
    with pytest.raises(ConfigError, match=r"format_version is 7"):
        load_run_overrides(tmp_path)
    with pytest.raises(ConfigError, match=r"cannot read overrides record"):
        load_run_overrides(tmp_path / "none" / "overrides.yaml")
