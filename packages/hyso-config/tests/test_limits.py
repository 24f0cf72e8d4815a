"""The documented limits: at the limit a config loads, past it the error names the culprit;
and environment references are saved as written. (Hostile inputs far past the limits
run as capped probes in tests/adversarial/test_config.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hyso.core.config import (
    Config,
    ConfigError,
    apply_overrides,
    expand_sweep,
    interpolation,
    limits,
    load_config,
    load_config_with_overrides,
    loader,
    merge_config,
    parse_value,
    resolve_interpolations,
    save_config,
    sweep,
    to_dict_env_unresolved,
)
from hyso.core.config.limits import MAX_DEPTH, bracket_depth, check_tree


def _nested_list(levels: int) -> list:
    value: list = []
    for _ in range(levels - 1):
        value = [value]
    return value


def test_depth_limit_is_exact_for_files(tmp_path: Path) -> None:
    # The top-level mapping is level 1, so "a" may hold MAX_DEPTH - 1 nested lists.
    ok = tmp_path / "ok.json"
    ok.write_text(json.dumps({"a": _nested_list(MAX_DEPTH - 1)}))
    assert load_config(ok).a == _nested_list(MAX_DEPTH - 1)
    deep = tmp_path / "deep.yaml"
    deep.write_text(json.dumps({"a": _nested_list(MAX_DEPTH)}))
    with pytest.raises(ConfigError, match=r"deep\.yaml: nests more than 100 levels"):
        load_config(deep)


def test_depth_of_override_values_counts_the_key(tmp_path: Path) -> None:
    cfg = Config(a={"b": None})
    fits = "a.b=" + "[" * (MAX_DEPTH - 2) + "]" * (MAX_DEPTH - 2)
    assert apply_overrides(cfg, [fits]).a.b == _nested_list(MAX_DEPTH - 2)
    with pytest.raises(ConfigError, match=r"override 'a\.b=\[\[\[.*nests more than 100"):
        apply_overrides(cfg, ["a.b=" + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)])
    with pytest.raises(ConfigError, match=r"override .x.: nests more than 100 levels deep"):
        parse_value("[" * 101 + "]" * 101, where="override 'x'")


def test_bracket_depth_is_an_upper_bound_and_skips_json_strings() -> None:
    assert bracket_depth("[[1], {'a': (2,)}]") >= 3  # few brackets: their count
    text = "[" * 60 + "]" * 60 + "{" * 60 + "}" * 60
    assert bracket_depth(text) == 60  # balanced groups do not add up
    quoted = '{"a": "' + "[" * 200 + '"}'
    assert bracket_depth(quoted, json=True) == 1
    assert bracket_depth(quoted) > MAX_DEPTH


def test_check_tree_counts_shared_parts_each_time() -> None:
    shared = list(range(10))
    tree = {"a": [shared] * 10}
    assert check_tree(tree, "t") == 1 + 10 + 100
    with pytest.raises(ConfigError, match=r"t: expands to more than 50 values"):
        check_tree(tree, "t", max_values=50)
    loop: list = []
    loop.append(loop)
    with pytest.raises(ConfigError, match=r"nests more than 100 levels"):
        check_tree(loop, "loop")


def test_interpolated_text_limit_names_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(interpolation, "MAX_INTERPOLATED_CHARS", 100)
    bomb = {"a": "x" * 40, "b": "${a}${a}", "c": "${b}${b}"}
    with pytest.raises(ConfigError, match=r"key 'c': interpolation builds more than 100 char"):
        resolve_interpolations(bomb)
    fits = resolve_interpolations({"a": "x" * 40, "b": "${a}-${a}", "c": "${b}"})
    assert fits.b == fits.c == "x" * 40 + "-" + "x" * 40  # a whole reference builds nothing


def test_section_references_share_and_stay_independent(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("base: {lr: 0.1, betas: [1, 2]}\nx: ${base}\ny: ${base}\n")
    cfg = load_config(path)
    assert cfg.x == cfg.y == {"lr": 0.1, "betas": [1, 2]}
    plain = cfg.to_dict()
    plain["x"]["betas"].append(3)
    assert plain["y"]["betas"] == [1, 2] and cfg.x.betas == [1, 2]
    changed = merge_config(cfg, {"base": {"lr": 0.5}})
    assert changed.x.lr == changed.y.lr == 0.5


def test_files_read_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "MAX_FILES", 3)
    (tmp_path / "b.yaml").write_text("x: 1\n")
    (tmp_path / "two.yaml").write_text("_base_: [b.yaml, b.yaml]\ny: 1\n")
    assert load_config(tmp_path / "two.yaml") == {"x": 1, "y": 1}
    (tmp_path / "three.yaml").write_text("_base_: [b.yaml, b.yaml, b.yaml]\ny: 1\n")
    with pytest.raises(ConfigError, match=r"b\.yaml: loading this config reads more than 3"):
        load_config(tmp_path / "three.yaml")


def test_file_size_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "MAX_FILE_BYTES", 20)
    (tmp_path / "ok.yaml").write_text("a: '" + "x" * 14 + "'\n")  # 20 bytes
    assert load_config(tmp_path / "ok.yaml").a == "x" * 14
    (tmp_path / "big.yaml").write_text("a: '" + "x" * 15 + "'\n")
    with pytest.raises(ConfigError, match=r"big\.yaml: larger than 20 bytes"):
        load_config(tmp_path / "big.yaml")


def test_sweep_point_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sweep, "MAX_SWEEP_POINTS", 6)
    cfg = Config(a=1, b=1, sweep={"a": [1, 2, 3], "b": [1, 2]})
    assert len(expand_sweep(cfg)) == 6
    bigger = Config(a=1, b=1, sweep={"a": [1, 2, 3], "b": [1, 2, 3]})
    with pytest.raises(ConfigError, match=r"'sweep' spans 3 x 3 points, more than the 6"):
        expand_sweep(bigger)


def test_limits_are_what_the_readme_says() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    for figure in (
        f"{limits.MAX_DEPTH} levels",
        f"{limits.MAX_VALUES:,} values",
        f"{limits.MAX_FILE_BYTES // (1 << 20)} MiB",
        f"{limits.MAX_FILES} files",
        f"{limits.MAX_INTERPOLATED_CHARS:,} characters",
        f"{limits.MAX_SWEEP_POINTS:,} points",
    ):
        assert figure in readme, figure


# Environment references in saved configs -----------------------------------------------


@pytest.fixture
def env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HYSO_SECRET", "s3cret")
    monkeypatch.setenv("HYSO_DIM", "32")
    path = tmp_path / "c.yaml"
    path.write_text(
        "auth: {token: '${env:HYSO_SECRET}', header: 'Bearer ${env:HYSO_SECRET}'}\n"
        "copy: ${auth}\n"
        "dim: ${env:HYSO_DIM,8}\n"
        "twice: ${dim}\n"
        "name: run-${dim}\n"
        "literal: 'cost \\${x} ${env:HYSO_DIM}'\n"
        "lr: 0.1\n"
        "lr_copy: ${lr}\n"
    )
    return path


def test_to_dict_env_unresolved_keeps_every_path_to_a_secret(env_file: Path) -> None:
    cfg = load_config_with_overrides(env_file, ["lr=0.5"])
    assert cfg.auth.token == "s3cret" and cfg.dim == 32 and cfg.literal == "cost ${x} 32"
    plain = to_dict_env_unresolved(cfg)
    assert plain == {
        "auth": {"token": "${env:HYSO_SECRET}", "header": "Bearer ${env:HYSO_SECRET}"},
        "copy": {"token": "${env:HYSO_SECRET}", "header": "Bearer ${env:HYSO_SECRET}"},
        "dim": "${env:HYSO_DIM,8}",
        "twice": "${env:HYSO_DIM,8}",
        "name": "run-${env:HYSO_DIM,8}",
        "literal": "cost ${x} ${env:HYSO_DIM}",
        "lr": 0.5,
        "lr_copy": 0.5,
    }
    assert all(type(v) is str for v in plain["auth"].values())  # no str subclass leaks
    json.dumps(plain)
    assert to_dict_env_unresolved({"a": "${env:X}"}) == {"a": "${env:X}"}  # taken as final


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_saved_config_keeps_env_references(
    env_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    cfg = load_config(env_file)
    out = save_config(cfg, tmp_path / f"saved{suffix}")
    assert "s3cret" not in out.read_text(encoding="utf-8")
    assert load_config(out) == cfg
    monkeypatch.setenv("HYSO_DIM", "64")  # the saved file reads the environment again
    again = load_config(out)
    assert again.dim == again.twice == 64 and again.literal == "cost ${x} 64"
    resolved = save_config(cfg, tmp_path / f"resolved{suffix}", resolve_env=True)
    assert "s3cret" in resolved.read_text(encoding="utf-8")
    assert load_config(resolved).dim == 32


def test_saving_text_with_a_lone_surrogate_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"key 'a\.b\[1\]' holds text with a lone surrogate"):
        save_config(Config(a={"b": ["ok", "x\udc80"]}), tmp_path / "c.yaml")
    assert not list(tmp_path.iterdir())
