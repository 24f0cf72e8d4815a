"""``merge_config``: dicts merge, lists and scalars are replaced, ``_replace_`` replaces."""

from __future__ import annotations

import pytest

from hyso.core.config import Config, ConfigError, merge_config


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
