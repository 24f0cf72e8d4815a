"""Sweeps: one config per grid point, labelled, the sweep section gone."""

from __future__ import annotations

from pathlib import Path

import pytest

from hyso.core.config import (
    Config,
    ConfigError,
    expand_sweep,
    get_overrides,
    get_source,
    load_config,
    load_config_with_overrides,
    sweep_label,
)


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "base.yaml").write_text(
        "model: {dim: 8, layers: 2}\ntraining: {lr: 0.1, batch_size: 4}\n"
        "sched: {max_lr: '${training.lr}'}\n",
        encoding="utf-8",
    )
    path = tmp_path / "sweep.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_cartesian_product_with_labels(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "_base_: base.yaml\nsweep:\n  training.lr: [1e-3, 3e-4]\n  model.layers: [1, 2, 4]\n",
    )
    points = expand_sweep(load_config(path))
    assert len(points) == 6
    combos = {(p.training.lr, p.model.layers) for p in points}
    assert combos == {(lr, n) for lr in (1e-3, 3e-4) for n in (1, 2, 4)}
    assert all("sweep" not in p for p in points)
    assert all(p.model.dim == 8 and p.training.batch_size == 4 for p in points)
    labels = [sweep_label(p) for p in points]
    assert labels[0] == "lr=0.001,layers=1"
    assert len(set(labels)) == 6


def test_points_re_resolve_references_and_remember_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, "_base_: base.yaml\nsweep: {training.lr: [0.5, 0.25]}\n")
    points = expand_sweep(load_config(path))
    assert [p.sched.max_lr for p in points] == [0.5, 0.25]
    assert get_overrides(points[1]) == ["~sweep", "training.lr=0.25"]
    assert get_source(points[1]) == str(path)
    rebuilt = load_config_with_overrides(get_source(points[1]), get_overrides(points[1]))
    assert rebuilt == points[1]


def test_labels_use_full_keys_when_last_parts_clash() -> None:
    cfg = Config({"a": {"x": 1}, "b": {"x": 1}, "sweep": {"a.x": [1], "b.x": [2, 3]}})
    assert [sweep_label(p) for p in expand_sweep(cfg)] == ["a.x=1,b.x=2", "a.x=1,b.x=3"]


def test_labels_are_safe_for_folder_names() -> None:
    cfg = Config({"data": {"path": "a"}, "sweep": {"data.path": ["x/y z", "q"]}})
    labels = [sweep_label(p) for p in expand_sweep(cfg)]
    assert labels == ["path=x_y_z", "path=q"]


def test_no_sweep_section_gives_the_config_alone() -> None:
    cfg = Config({"a": 1})
    assert expand_sweep(cfg) == [cfg] and sweep_label(expand_sweep(cfg)[0]) == ""


def test_sweep_values_are_type_checked_and_keys_must_exist() -> None:
    with pytest.raises(ConfigError, match=r"key 'training.lr' holds a float"):
        expand_sweep(Config({"training": {"lr": 0.1}, "sweep": {"training.lr": ["fast"]}}))
    with pytest.raises(ConfigError, match=r"did you mean 'training.lr'"):
        expand_sweep(Config({"training": {"lr": 0.1}, "sweep": {"training.lrr": [0.2]}}))


@pytest.mark.parametrize(
    ("sweep", "needle"),
    [
        ({"training.lr": 0.1}, "'sweep.training.lr' must be a non-empty list"),
        ({"training.lr": []}, "'sweep.training.lr' must be a non-empty list"),
        ({"training": {"lr": [0.1]}}, "write the swept key in full with dots"),
        ([1, 2], "'sweep' must map dotted keys to lists"),
    ],
)
def test_malformed_sweeps(sweep: object, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        expand_sweep(Config({"training": {"lr": 0.1}, "sweep": sweep}))
    assert needle in str(info.value)
