"""Interpolation: ``${key.path}``, ``${env:NAME,default}``, escapes, cycles, missing targets."""

from __future__ import annotations

from pathlib import Path

import pytest

from hyso.core.config import (
    Config,
    ConfigError,
    load_config,
    load_config_with_overrides,
    resolve_interpolations,
)


def load(tmp_path: Path, text: str) -> Config:
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def test_whole_value_reference_keeps_the_type(tmp_path: Path) -> None:
    cfg = load(
        tmp_path,
        "training: {lr: 1e-3, epochs: 3}\n"
        "sched: {max_lr: '${training.lr}', total: '${training.epochs}', src: '${training}'}\n",
    )
    assert cfg.sched.max_lr == 1e-3 and isinstance(cfg.sched.max_lr, float)
    assert cfg.sched.total == 3
    assert cfg.sched.src == {"lr": 1e-3, "epochs": 3} and isinstance(cfg.sched.src, Config)


def test_embedded_references_format_into_text(tmp_path: Path) -> None:
    cfg = load(tmp_path, "m: {dim: 64, ok: true}\nname: run-d${m.dim}-${m.ok}\n")
    assert cfg.name == "run-d64-true"


def test_chains_and_lists_resolve(tmp_path: Path) -> None:
    cfg = load(tmp_path, "a: 1\nb: ${a}\nc: ${b}\nlst: ['${c}', 'x${a}']\n")
    assert (cfg.b, cfg.c, cfg.lst) == (1, 1, [1, "x1"])


def test_overrides_reach_references(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("training: {lr: 0.1}\nsched: {max_lr: '${training.lr}'}\n", encoding="utf-8")
    cfg = load_config_with_overrides(path, ["training.lr=0.5"])
    assert cfg.sched.max_lr == 0.5
    cfg = load_config_with_overrides(path, ["sched.max_lr=0.9"])
    assert (cfg.training.lr, cfg.sched.max_lr) == (0.1, 0.9)


def test_env_with_and_without_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYSO_TEST_BS", "32")
    monkeypatch.setenv("HYSO_TEST_DIR", "/data/x")
    monkeypatch.delenv("HYSO_TEST_UNSET", raising=False)
    cfg = load(
        tmp_path,
        "bs: ${env:HYSO_TEST_BS}\n"
        "dir: ${env:HYSO_TEST_DIR}/train\n"
        "fallback: ${env:HYSO_TEST_UNSET,0.5}\n"
        "fallback_text: '${env:HYSO_TEST_UNSET,cpu}'\n",
    )
    assert cfg.bs == 32 and cfg.dir == "/data/x/train"
    assert cfg.fallback == 0.5 and cfg.fallback_text == "cpu"


def test_missing_env_names_key_and_variable(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("HYSO_TEST_UNSET", raising=False)
    with pytest.raises(ConfigError) as info:
        load(tmp_path, "data: {root: '${env:HYSO_TEST_UNSET}'}\n")
    msg = str(info.value)
    assert "key 'data.root'" in msg and "HYSO_TEST_UNSET is not set" in msg
    assert "${env:HYSO_TEST_UNSET,VALUE}" in msg


def test_escaped_reference_is_literal_text(tmp_path: Path) -> None:
    cfg = load(tmp_path, "fmt: 'cost \\${x} is ${y}'\ny: 3\n")
    assert cfg.fmt == "cost ${x} is 3"


def test_missing_target_names_key_and_suggests(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, "training: {lr: 0.1}\nsched: {max_lr: '${training.lrr}'}\n")
    msg = str(info.value)
    assert "key 'sched.max_lr' refers to ${training.lrr}" in msg
    assert "did you mean 'training.lr'" in msg


def test_cycles_are_errors_naming_the_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"interpolation cycle: a -> b -> c -> a"):
        load(tmp_path, "a: ${b}\nb: ${c}\nc: ${a}\n")
    with pytest.raises(ConfigError, match=r"interpolation cycle: s.x -> s.x"):
        load(tmp_path, "s: {x: '${s.x}'}\n")
    with pytest.raises(ConfigError, match=r"interpolation cycle: s -> s.inner -> s"):
        load(tmp_path, "s: {inner: '${s}'}\n")


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("'${}'", "'${}' is not a valid interpolation"),
        ("'${foo:bar}'", "'${foo:bar}' is not a valid interpolation"),
        ("'${a'", "unterminated or nested"),
        ("'x ${s}'", "cannot be embedded"),
        ("'${env:1BAD}'", "needs an environment variable name"),
    ],
)
def test_malformed_interpolations(tmp_path: Path, value: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=r"key 'v'") as info:
        load(tmp_path, f"s: {{a: 1}}\nv: {value}\n")
    assert needle in str(info.value)


def test_resolve_interpolations_for_configs_built_in_code() -> None:
    cfg = resolve_interpolations({"a": {"b": 2}, "c": "${a.b}"})
    assert cfg.c == 2
