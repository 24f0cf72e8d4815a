"""``Config``: the mapping protocol, attribute access, read-only-ness, conversions."""

from __future__ import annotations

import copy
import json
import pickle
from collections.abc import Mapping

import pytest

from hyso.core.config import Config, ConfigError


@pytest.fixture
def cfg() -> Config:
    return Config(
        {
            "model": {"dim": 256, "layers": 2, "act": {"name": "gelu"}},
            "training": {"lr": 0.001, "betas": [0.9, 0.95], "device": "cpu"},
            "stages": [{"epochs": 1}, {"epochs": 2}],
            "items": 3,
        }
    )


def test_attribute_and_item_access_reach_the_same_values(cfg: Config) -> None:
    assert cfg.training.lr == 0.001
    assert cfg["training"]["lr"] == 0.001
    assert cfg.model.act.name == "gelu"
    assert isinstance(cfg.model, Config)
    assert isinstance(cfg.stages[1], Config) and cfg.stages[1].epochs == 2


def test_mapping_protocol(cfg: Config) -> None:
    assert isinstance(cfg, Mapping)
    assert "model" in cfg and "nope" not in cfg
    assert list(cfg) == ["model", "training", "stages", "items"]
    assert len(cfg) == 4 and len(cfg.model) == 3
    assert cfg.get("nope") is None and cfg.get("nope", 7) == 7
    assert cfg.training.get("lr") == 0.001
    assert dict(cfg.model.act.items()) == {"name": "gelu"}


def test_keys_clashing_with_methods_use_item_access(cfg: Config) -> None:
    assert callable(cfg.items)
    assert cfg["items"] == 3


def test_equality_with_configs_and_plain_dicts(cfg: Config) -> None:
    plain = cfg.to_dict()
    assert cfg == plain and plain == cfg
    assert cfg == Config(plain)
    assert cfg != Config({**plain, "items": 4})
    assert cfg.model != {"dim": 256}
    assert cfg != [1, 2]


def test_to_dict_is_plain_json_and_a_copy(cfg: Config) -> None:
    plain = cfg.to_dict()
    assert type(plain["model"]) is dict and type(plain["stages"][0]) is dict
    assert json.loads(json.dumps(plain)) == plain
    plain["training"]["betas"].append(0.0)
    assert cfg.training.betas == [0.9, 0.95]


def test_usable_as_keyword_arguments(cfg: Config) -> None:
    def build(dim: int, layers: int, act: Mapping) -> tuple:
        return dim, layers, act["name"]

    assert build(**cfg.model) == (256, 2, "gelu")


def test_read_only(cfg: Config) -> None:
    with pytest.raises(AttributeError, match=r"read-only"):
        cfg.training = {}
    with pytest.raises(AttributeError, match=r"read-only"):
        del cfg.model
    with pytest.raises(TypeError):
        cfg["model"] = 1  # type: ignore[index]


def test_missing_attribute_suggests_close_keys(cfg: Config) -> None:
    with pytest.raises(AttributeError, match=r"'lrr'.*did you mean 'lr'"):
        _ = cfg.training.lrr
    assert getattr(cfg, "nope", "default") == "default"
    assert not hasattr(cfg, "nope")
    with pytest.raises(KeyError):
        _ = cfg["nope"]


def test_select_follows_dotted_paths(cfg: Config) -> None:
    assert cfg.select("model.act.name") == "gelu"
    assert cfg.select("model.nope", None) is None
    with pytest.raises(ConfigError, match=r"did you mean 'model.dim'"):
        cfg.select("model.dmi")


def test_repr_shows_the_content(cfg: Config) -> None:
    text = repr(cfg.model)
    assert text.startswith("Config(") and "'dim': 256" in text and "'gelu'" in text


def test_pickle_and_copies_round_trip(cfg: Config) -> None:
    assert pickle.loads(pickle.dumps(cfg)) == cfg
    assert copy.deepcopy(cfg) == cfg
    assert copy.copy(cfg) is cfg


def test_dir_lists_keys_for_completion(cfg: Config) -> None:
    assert {"dim", "layers", "act", "to_dict"} <= set(dir(cfg.model))


def test_keywords_build_a_config() -> None:
    assert Config(a=1, b={"c": 2}).b.c == 2


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"a": {1: "x"}}, "config key 1 in section 'a'"),
        ({"a": {"b": object()}}, "of type object"),
        ({"a": [1, {2, 3}]}, "config key 'a[1]' holds {2, 3} of type set"),
    ],
)
def test_bad_keys_and_values_are_refused_with_their_path(data: dict, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        Config(data)
    assert needle in str(info.value)
