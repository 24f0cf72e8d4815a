"""Overrides: the grammar, safe value parsing, typed application, add and delete."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from hyso.core.config import (
    Config,
    ConfigError,
    apply_overrides,
    format_override,
    get_overrides,
    get_source,
    load_config,
    load_config_with_overrides,
    merge_config,
    parse_overrides,
    parse_value,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1e-4", 1e-4),
        ("12", 12),
        ("-3", -3),
        ("1_000", 1000),
        ("[1, 2]", [1, 2]),
        ("(1, 2)", [1, 2]),
        ("{'a': 1}", {"a": 1}),
        ("'quoted str'", "quoted str"),
        ('"it\'s"', "it's"),
        ("True", True),
        ("true", True),
        ("FALSE", False),
        ("null", None),
        ("None", None),
        ("plain text", "plain text"),
        ("cpu", "cpu"),
        ("", ""),
        ("[a, b]", ["a", "b"]),
        ("{a: 1, b: [x]}", {"a": 1, "b": ["x"]}),
        ("'true'", "true"),
        ("007", "007"),
        ("${training.lr}", "${training.lr}"),
    ],
)
def test_values_are_parsed_safely(text: str, expected: object) -> None:
    value = parse_value(text)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("text", ["inf", "-inf", "nan"])
def test_non_finite_floats(text: str) -> None:
    value = parse_value(text)
    assert isinstance(value, float) and not math.isfinite(value)


def test_code_is_never_evaluated(tmp_path: Path, base_file: Path) -> None:
    marker = tmp_path / "pwned"
    payload = f"__import__('os').system('touch {marker}')"
    assert parse_value(payload) == payload
    cfg = load_config_with_overrides(base_file, [f"data.name={payload}"])
    assert cfg.data.name == payload
    with pytest.raises(ConfigError, match=r"holds a float"):
        load_config_with_overrides(base_file, [f"training.lr={payload}"])
    assert not marker.exists()


def test_parse_overrides_builds_a_nested_mapping() -> None:
    parsed = parse_overrides(["training.lr=0.0001", "model.layers=12", "+model.act.beta=0.5"])
    assert parsed == {"training": {"lr": 0.0001}, "model": {"layers": 12, "act": {"beta": 0.5}}}


def test_parse_overrides_refuses_duplicates_and_deletions() -> None:
    with pytest.raises(ConfigError, match=r"'a.b' is set twice"):
        parse_overrides(["a.b=1", "a.b=2"])
    with pytest.raises(ConfigError, match=r"conflicts with an earlier 'a=...'"):
        parse_overrides(["a=1", "a.b=2"])
    with pytest.raises(ConfigError, match=r"use apply_overrides"):
        parse_overrides(["~a"])
    with pytest.raises(ConfigError, match=r"wrap it in a list"):
        parse_overrides("a=1")  # type: ignore[arg-type]


def test_seed_example_call(base_file: Path) -> None:
    cfg = load_config_with_overrides(
        path=base_file, override_pairs=["training.lr=0.0001", "model.dim=512"]
    )
    assert cfg.training.lr == 0.0001 and cfg.model.dim == 512
    assert cfg.model.layers == 2  # untouched keys survive
    assert get_overrides(cfg) == ["training.lr=0.0001", "model.dim=512"]
    assert get_source(cfg) == str(base_file)


def test_without_overrides_the_file_is_loaded_as_is(base_file: Path) -> None:
    assert load_config_with_overrides(base_file) == load_config(base_file)
    assert get_overrides(load_config(base_file)) == []


def test_unknown_key_suggests_the_closest(base_file: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config_with_overrides(base_file, ["training.lrr=0.1"])
    msg = str(info.value)
    assert "no key 'training.lrr'" in msg and "did you mean 'training.lr'" in msg
    assert "+training.lrr=0.1" in msg


def test_key_without_its_section_suggests_the_full_path(base_file: Path) -> None:
    with pytest.raises(ConfigError, match=r"did you mean .*'training.batch_size'"):
        load_config_with_overrides(base_file, ["batch_size=4"])


def test_add_and_delete(base_file: Path) -> None:
    cfg = load_config_with_overrides(
        base_file, ["+training.warmup=100", "+extra.deep.key=x", "~model.act", "~data"]
    )
    assert cfg.training.warmup == 100
    assert cfg.extra == {"deep": {"key": "x"}}
    assert "act" not in cfg.model and "data" not in cfg


def test_type_rules(base_file: Path) -> None:
    cfg = load_config_with_overrides(
        base_file,
        [
            "training.lr=1",  # int where a float stood: fine, stored as a float
            "training.eval_every=500",  # anything replaces null
            "model.name=null",  # null replaces anything
            "training.betas=[0.8, 0.9, 0.99]",  # a list for a list
            "model.act.approx=true",
        ],
    )
    assert cfg.training.lr == 1.0 and isinstance(cfg.training.lr, float)
    huge = 2**53 + 1  # no float holds it exactly: kept as the exact int
    assert load_config_with_overrides(base_file, [f"training.lr={huge}"]).training.lr == huge
    assert cfg.training.eval_every == 500
    assert cfg.model.name is None
    assert cfg.training.betas == [0.8, 0.9, 0.99]
    assert cfg.model.act.approx is True


@pytest.mark.parametrize(
    ("override", "old", "new"),
    [
        ("model.layers=two", "an int", "a str"),
        ("model.layers=2.5", "an int", "a float"),
        ("model.layers=true", "an int", "a bool"),
        ("model.act.approx=1", "a bool", "an int"),
        ("training.device=3", "a str", "an int"),
        ("training.betas=0.9", "a list", "a float"),
        ("model=3", "a mapping", "an int"),
        ("training.lr=[1]", "a float", "a list"),
    ],
)
def test_type_clash_names_key_and_both_types(base_file: Path, override: str, old: str, new: str):
    key = override.split("=")[0]
    with pytest.raises(ConfigError) as info:
        load_config_with_overrides(base_file, [override])
    msg = str(info.value)
    assert f"key '{key}' holds {old}" in msg and f"new value is {new}" in msg


def test_quoting_hint_for_text_keys(base_file: Path) -> None:
    with pytest.raises(ConfigError, match=r"quote it to pass the text: training.device='3'"):
        load_config_with_overrides(base_file, ["training.device=3"])
    cfg = load_config_with_overrides(base_file, ["training.device='3'"])
    assert cfg.training.device == "3"


def test_a_mapping_value_merges_into_a_section(base_file: Path) -> None:
    cfg = load_config_with_overrides(base_file, ["model.act={'name': 'relu'}"])
    assert cfg.model.act == {"name": "relu", "approx": False}
    cfg = load_config_with_overrides(base_file, ["model.act={'_replace_': True, 'name': 'relu'}"])
    assert cfg.model.act == {"name": "relu"}
    with pytest.raises(ConfigError, match=r"section 'model.act' has no key 'nmae'.*'name'"):
        load_config_with_overrides(base_file, ["model.act={'nmae': 'relu'}"])


def test_apply_overrides_on_a_config_built_in_code() -> None:
    cfg = Config({"training": {"lr": 0.1, "tag": "${not_a_ref}"}})
    out = apply_overrides(cfg, ["training.lr=0.2"])
    assert out.training == {"lr": 0.2, "tag": "${not_a_ref}"}
    assert cfg.training.lr == 0.1
    assert get_overrides(out) == ["training.lr=0.2"]


def test_overrides_accumulate_across_calls(base_file: Path) -> None:
    cfg = load_config_with_overrides(base_file, ["model.dim=8"])
    cfg = apply_overrides(cfg, ["model.layers=1"])
    assert get_overrides(cfg) == ["model.dim=8", "model.layers=1"]
    assert get_source(cfg) == str(base_file)
    assert (cfg.model.dim, cfg.model.layers) == (8, 1)


def test_parsed_overrides_feed_merge_config(base_file: Path) -> None:
    merged = merge_config(load_config(base_file), parse_overrides(["training.lr=0.5"]))
    assert merged.training.lr == 0.5 and merged.training.seed == 1337


@pytest.mark.parametrize(
    "value",
    [
        0.1,
        1e-300,
        -0.0,
        3,
        True,
        False,
        None,
        "text",
        'it\'s "q"',
        "",
        "true",
        "1e-4",
        [1, "a", None],
        {"a": [1.5, {"b": None}]},
        math.inf,
        -math.inf,
        [math.inf, 1],
    ],
)
def test_format_override_reads_back(value: object) -> None:
    text = format_override("a.b", value)
    assert parse_overrides([text]) == {"a": {"b": value}}
