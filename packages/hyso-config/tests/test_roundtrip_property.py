"""Property: any override set round-trips (parse, merge, save, load gives the same values).

Configs and override sets are generated wide (unicode text, huge and tiny numbers,
nested lists and sections); overrides are written the way users write them on a
command line, independently of the library's own formatter.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hyso.core.config import (
    Config,
    apply_overrides,
    get_overrides,
    get_source,
    load_config,
    load_config_with_overrides,
    merge_config,
    parse_overrides,
    save_config,
)

RESERVED = {"_base_", "_replace_", "_format_version_"}
keys = st.text("abcdefghijklmnopqrstuvwxyz_-0123456789", min_size=1, max_size=6).filter(
    lambda k: k not in RESERVED
)
texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
floats = st.floats(allow_nan=False)
scalars = st.one_of(st.none(), st.booleans(), st.integers(), floats, texts)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=6,
)
trees = st.dictionaries(keys, st.dictionaries(keys, values, min_size=1, max_size=4), min_size=1)


def cli_text(value: Any) -> str:
    """How a user writes ``value`` after ``key=`` on a command line."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(value)


def finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(map(finite, value))
    if isinstance(value, dict):
        return all(map(finite, value.values()))
    return True


def leaves(tree: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out += leaves(value, f"{prefix}{key}.")
        else:
            out.append(f"{prefix}{key}")
    return out


def set_path(tree: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for part in parents:
        tree = tree[part]
    tree[leaf] = value


@st.composite
def configs_with_overrides(draw: st.DrawFn) -> tuple[dict, list[str], list[tuple[str, Any]]]:
    tree = draw(trees)
    paths = draw(st.lists(st.sampled_from(leaves(tree)), unique=True, max_size=5))
    assignments = []
    for path in paths:
        # Lists with infinities have no Python-literal spelling; keep those out.
        assignments.append((path, draw(values.filter(finite) | floats)))
    argv = [f"{path}={cli_text(value)}" for path, value in assignments]
    return tree, argv, assignments


def merged_by_hand(tree: dict, assignments: list[tuple[str, Any]]) -> dict:
    """Merge semantics spelled out: a dict merges into a dict, anything else replaces."""

    def merge(old: Any, new: Any) -> Any:
        if isinstance(old, dict) and isinstance(new, dict):
            return {**old, **{k: merge(old.get(k), v) for k, v in new.items()}}
        return new

    out = Config(tree).to_dict()
    for path, value in assignments:
        *parents, leaf = path.split(".")
        node = out
        for part in parents:
            node = node[part]
        node[leaf] = merge(node.get(leaf), value)
    return out


def save_and_load(cfg: Config, suffix: str) -> Config:
    with tempfile.TemporaryDirectory() as folder:
        return load_config(save_config(cfg, Path(folder) / f"cfg{suffix}"))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=configs_with_overrides(), suffix=st.sampled_from([".yaml", ".json"]))
def test_parse_merge_save_load_round_trips(case: tuple, suffix: str) -> None:
    tree, argv, assignments = case
    merged = merge_config(tree, parse_overrides(argv))
    expected = merged_by_hand(tree, assignments)
    assert merged == expected
    assert save_and_load(merged, suffix) == expected


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=trees, suffix=st.sampled_from([".yaml", ".yml", ".json"]))
def test_any_config_saves_and_loads_back_equal(tree: dict, suffix: str) -> None:
    cfg = Config(tree)
    loaded = save_and_load(cfg, suffix)
    assert loaded == cfg
    assert _types(loaded.to_dict()) == _types(cfg.to_dict())


def _types(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _types(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_types(v) for v in value]
    return type(value).__name__


@settings(max_examples=100, deadline=None)
@given(
    tree=st.dictionaries(keys, st.dictionaries(keys, scalars, min_size=1), min_size=1),
    data=st.data(),
)
def test_typed_overrides_of_scalars_round_trip(tree: dict, data: st.DataObject) -> None:
    """Strict application: same-type values for existing scalar keys, then save/load."""
    paths = data.draw(st.lists(st.sampled_from(leaves(tree)), unique=True, max_size=4))
    expected = Config(tree).to_dict()
    argv = []
    for path in paths:
        section, key = path.split(".")
        old = tree[section][key]
        new = data.draw(_same_kind(old))
        if isinstance(new, str) and "${" in new:
            continue  # text holding ${ is an interpolation by design
        argv.append(f"{path}={cli_text(new)}")
        set_path(expected, path, new)
    cfg = apply_overrides(Config(tree), argv)
    assert cfg == expected
    assert save_and_load(cfg, ".yaml") == expected


def _same_kind(old: Any) -> st.SearchStrategy[Any]:
    if old is None:
        return scalars
    if isinstance(old, bool):
        return st.booleans()
    if isinstance(old, int):
        return st.integers()
    if isinstance(old, float):
        return floats | st.integers()
    return texts


plain_texts = texts.filter(lambda t: "${" not in t)
plain_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), floats, plain_texts),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=6,
)
plain_trees = st.dictionaries(keys, st.dictionaries(keys, plain_values, max_size=3), min_size=1)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=plain_trees, merges=st.lists(plain_trees, min_size=1, max_size=2))
def test_merges_into_a_loaded_config_replay_from_its_record(tree: dict, merges: list) -> None:
    """The recorded (source, overrides) of a merged config rebuild it exactly."""
    with tempfile.TemporaryDirectory() as folder:
        path = save_config(tree, Path(folder) / "base.yaml")
        cfg = load_config_with_overrides(path)
        for mapping in merges:
            cfg = merge_config(cfg, mapping)
        assert get_source(cfg) == str(path)
        assert load_config_with_overrides(path, get_overrides(cfg)) == cfg
