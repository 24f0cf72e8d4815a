"""``load_config``: safe YAML/JSON, the YAML pitfalls fixed, ``_base_`` composition."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from hyso.core.config import Config, ConfigError, load_config


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("suffix", [".yaml", ".yml"])
def test_yaml_loads_into_a_config(tmp_path: Path, suffix: str) -> None:
    path = write(tmp_path, "c" + suffix, "model:\n  dim: 8\ntraining:\n  lr: 0.1\n")
    cfg = load_config(path)
    assert isinstance(cfg, Config)
    assert cfg == {"model": {"dim": 8}, "training": {"lr": 0.1}}


def test_json_loads_into_a_config(tmp_path: Path) -> None:
    path = write(tmp_path, "c.json", '{"model": {"dim": 8, "tags": ["a"]}, "x": null}')
    assert load_config(str(path)) == {"model": {"dim": 8, "tags": ["a"]}, "x": None}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1e-4", 1e-4),
        ("3E5", 3e5),
        ("-2.5e-3", -2.5e-3),
        ("1.0e-10", 1e-10),
        (".5", 0.5),
        ("1.", 1.0),
        ("1_000", 1000),
        ("0x1F", 31),
        ("0o17", 15),
        ("-7", -7),
        (".inf", math.inf),
        ("-.inf", -math.inf),
        ("true", True),
        ("False", False),
        ("null", None),
        ("~", None),
        ("1:30", "1:30"),
        ("2024-01-01", "2024-01-01"),
        ("0755", "0755"),
        ("'yes'", "yes"),
        ("'1e-4'", "1e-4"),
        ("1e-4x", "1e-4x"),
    ],
)
def test_scalars_load_as_users_expect(tmp_path: Path, text: str, expected: object) -> None:
    value = load_config(write(tmp_path, "c.yaml", f"v: {text}\n")).v
    assert value == expected and type(value) is type(expected)


def test_nan_loads_as_a_float(tmp_path: Path) -> None:
    assert math.isnan(load_config(write(tmp_path, "c.yaml", "v: .nan\n")).v)


@pytest.mark.parametrize("word", ["yes", "No", "on", "OFF"])
def test_yaml_11_booleans_are_refused_as_ambiguous(tmp_path: Path, word: str) -> None:
    path = write(tmp_path, "c.yaml", f"flag: {word}\n")
    with pytest.raises(ConfigError, match=f"'{word}' is ambiguous.*write true or false") as info:
        load_config(path)
    assert (info.value.line, info.value.column) == (1, 7)


def test_duplicate_key_is_an_error_with_both_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", "training:\n  lr: 0.1\n  batch_size: 4\n  lr: 0.2\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    msg = str(info.value)
    assert "duplicate key 'lr'" in msg and "first defined on line 2" in msg
    assert str(path) in msg and "line 4, column 3" in msg
    assert (info.value.path, info.value.line, info.value.column) == (str(path), 4, 3)


def test_same_key_in_different_sections_is_fine(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "c.yaml", "a: {x: 1}\nb: {x: 2}\n"))
    assert (cfg.a.x, cfg.b.x) == (1, 2)


def test_yaml_anchors_and_merge_keys_work(tmp_path: Path) -> None:
    text = "defaults: &d {lr: 0.1, wd: 0.0}\nfast:\n  <<: *d\n  lr: 0.5\n"
    cfg = load_config(write(tmp_path, "c.yaml", text))
    assert cfg.fast == {"lr": 0.5, "wd": 0.0}


@pytest.mark.parametrize(
    "text",
    [
        "x: !!python/object/apply:os.system ['echo hacked']\n",
        "x: !!python/name:os.system\n",
        "x: !!binary aGVsbG8=\n",
        "x: !!set {a, b}\n",
        "x: !!timestamp 2024-01-01\n",
        "x: !custom 1\n",
    ],
)
def test_tags_building_other_types_are_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError, match=r"is not allowed") as info:
        load_config(write(tmp_path, "c.yaml", text))
    assert (info.value.line, info.value.column) == (1, 4)


def test_composition_merges_child_over_bases_in_order(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", "model: {dim: 8, layers: 2}\ntraining: {lr: 0.1, epochs: 1}\n")
    write(tmp_path, "more/extra.yaml", "training: {epochs: 5, wd: 0.1}\n")
    child = write(
        tmp_path,
        "exp/child.yaml",
        "_base_: [../base.yaml, ../more/extra.yaml]\nmodel: {dim: 16}\n",
    )
    cfg = load_config(child)
    assert cfg == {
        "model": {"dim": 16, "layers": 2},
        "training": {"lr": 0.1, "epochs": 5, "wd": 0.1},
    }
    assert "_base_" not in cfg


def test_composition_chains_through_several_levels(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "x: 1\ny: 1\nz: 1\n")
    write(tmp_path, "b.yaml", "_base_: a.yaml\ny: 2\nz: 2\n")
    c = write(tmp_path, "c.yaml", "_base_: b.yaml\nz: 3\n")
    assert load_config(c) == {"x": 1, "y": 2, "z": 3}


def test_child_can_replace_a_whole_section(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", "optim: {name: adam, betas: [0.9, 0.99], eps: 1.0e-8}\n")
    child = write(tmp_path, "c.yaml", "_base_: base.yaml\noptim: {_replace_: true, name: sgd}\n")
    assert load_config(child).optim == {"name": "sgd"}


def test_lists_are_replaced_not_appended(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", "data: {files: [a, b, c]}\n")
    child = write(tmp_path, "c.yaml", "_base_: base.yaml\ndata: {files: [d]}\n")
    assert load_config(child).data.files == ["d"]


def test_a_shared_base_is_not_a_cycle(tmp_path: Path) -> None:
    write(tmp_path, "root.yaml", "x: 0\n")
    write(tmp_path, "left.yaml", "_base_: root.yaml\nl: 1\n")
    write(tmp_path, "right.yaml", "_base_: root.yaml\nr: 1\n")
    both = write(tmp_path, "both.yaml", "_base_: [left.yaml, right.yaml]\n")
    assert load_config(both) == {"x": 0, "l": 1, "r": 1}


def test_base_cycles_are_errors_naming_the_chain(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "_base_: b.yaml\nx: 1\n")
    write(tmp_path, "b.yaml", "_base_: a.yaml\ny: 1\n")
    with pytest.raises(ConfigError, match=r"_base_ cycle: .*a\.yaml -> .*b\.yaml -> .*a\.yaml"):
        load_config(tmp_path / "a.yaml")
    write(tmp_path, "self.yaml", "_base_: self.yaml\n")
    with pytest.raises(ConfigError, match=r"cycle"):
        load_config(tmp_path / "self.yaml")


def test_missing_base_names_child_and_base(tmp_path: Path) -> None:
    child = write(tmp_path, "c.yaml", "_base_: nowhere.yaml\n")
    with pytest.raises(ConfigError) as info:
        load_config(child)
    assert "nowhere.yaml does not exist" in str(info.value)
    assert f"listed in _base_ of {child.resolve()}" in str(info.value)


def test_json_may_extend_yaml(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", "training: {lr: 0.1, epochs: 1}\n")
    child = write(tmp_path, "c.json", '{"_base_": "base.yaml", "training": {"epochs": 3}}')
    assert load_config(child).training == {"lr": 0.1, "epochs": 3}


def test_a_file_from_a_newer_format_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", "_format_version_: 99\nx: 1\n")
    with pytest.raises(ConfigError, match=r"_format_version_ is 99.*upgrade"):
        load_config(path)
    assert load_config(write(tmp_path, "d.yaml", "_format_version_: 1\nx: 1\n")) == {"x": 1}


def test_alias_bombs_are_refused(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):  # 10**9 values once expanded
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    path = write(tmp_path, "bomb.yaml", "\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match=r"expands to more than 1,000,000 values") as info:
        load_config(path)
    assert str(path) in str(info.value)
