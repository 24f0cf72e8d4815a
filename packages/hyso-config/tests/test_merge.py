"""``merge_config``: dicts merge, lists and scalars are replaced, ``_replace_`` replaces."""

from __future__ import annotations

from pathlib import Path

import pytest

from hyso.core.config import (
    Config,
    ConfigError,
    get_overrides,
    get_source,
    load_config_with_overrides,
    merge_config,
)


def test_deep_merge_keeps_untouched_keys_and_replaces_lists() -> None:
    base = {"model": {"dim": 256, "layers": 2}, "data": {"files": ["a", "b"]}}
    out = merge_config(base, {"model": {"dim": 512}, "data": {"files": ["c"]}})
    assert out == {"model": {"dim": 512, "layers": 2}, "data": {"files": ["c"]}}
    assert isinstance(out, Config)


def test_inputs_are_not_modified() -> None:
    base = Config({"a": {"b": [1, 2]}})
    override = {"a": {"c": {"d": 1}}}
    out = merge_config(base, override)
    assert base == {"a": {"b": [1, 2]}}
    assert override == {"a": {"c": {"d": 1}}}
    assert out == {"a": {"b": [1, 2], "c": {"d": 1}}}


def test_replace_marker_replaces_a_whole_section() -> None:
    base = {"optim": {"name": "adam", "betas": [0.9, 0.99], "eps": 1e-8}}
    out = merge_config(base, {"optim": {"_replace_": True, "name": "sgd", "momentum": 0.9}})
    assert out == {"optim": {"name": "sgd", "momentum": 0.9}}
    kept = merge_config(base, {"optim": {"_replace_": False, "name": "sgd"}})
    assert kept.optim.eps == 1e-8 and "_replace_" not in kept.optim


def test_a_section_may_replace_a_value_and_back() -> None:
    out = merge_config({"sched": "cosine"}, {"sched": {"name": "cosine", "warmup": 10}})
    assert out.sched.warmup == 10
    assert merge_config(out, {"sched": None}).sched is None


def test_bad_replace_marker_and_non_mappings_are_errors() -> None:
    with pytest.raises(ConfigError, match=r"'optim._replace_' must be true or false"):
        merge_config({}, {"optim": {"_replace_": "yes"}})
    with pytest.raises(ConfigError, match=r"override must be a mapping"):
        merge_config({}, [1])  # type: ignore[arg-type]


def test_merging_into_a_loaded_config_keeps_the_run_record(base_file: Path) -> None:
    cfg = load_config_with_overrides(base_file, ["training.lr=0.5"])
    merged = merge_config(
        cfg,
        {
            "training": {"epochs": 3, "device": 0, "progress_bar": False},
            "model": {"act": {"_replace_": True, "name": "relu"}},
            "data": "inline",
        },
    )
    assert get_source(merged) == str(base_file)
    overrides = get_overrides(merged)
    assert overrides[0] == "training.lr=0.5"
    assert "+training.progress_bar=false" in overrides
    at = overrides.index("~training.device")  # a change of type: delete, then add
    assert overrides[at + 1] == "+training.device=0"
    assert load_config_with_overrides(base_file, overrides) == merged


def test_merge_re_resolves_references_of_a_loaded_config(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("training: {lr: 0.1}\nsched: {max_lr: '${training.lr}'}\n", encoding="utf-8")
    merged = merge_config(load_config_with_overrides(path), {"training": {"lr": 0.3}})
    assert merged.sched.max_lr == 0.3
    assert load_config_with_overrides(path, get_overrides(merged)) == merged


def test_unnameable_keys_drop_the_source_rather_than_record_wrongly(base_file: Path) -> None:
    cfg = load_config_with_overrides(base_file)
    merged = merge_config(cfg, {"a.b": 1})
    assert merged["a.b"] == 1
    assert get_source(merged) is None and get_overrides(merged) == []
    nested = merge_config(cfg, {"data": {"x.y": 1}})
    assert load_config_with_overrides(base_file, get_overrides(nested)) == nested
