"""Training settings from config sections, mappings and keywords, with checked values."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hyso.core.config import load_config_with_overrides
from hyso.core.train import TrainingConfigError, resolve_settings


def test_config_training_section_is_read_and_keywords_win(tmp_path) -> None:
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text(
        "training:\n  lr: 0.1\n  grad_accum_steps: 4\n  log_every: 5\n  precision: bf16\n"
    )
    cfg = load_config_with_overrides(path=str(cfg_file), override_pairs=["training.log_every=7"])
    s = resolve_settings(cfg, grad_accum_steps=2)
    assert (s.grad_accum_steps, s.log_every, s.precision) == (2, 7, "bf16")


class _HasToDict:
    def to_dict(self):
        return {"training": {"max_steps": 9, "eval_every": None, "batch_size": 3}}


@pytest.mark.parametrize(
    "config",
    [
        {"training": {"max_steps": 9, "eval_every": None}},
        _HasToDict(),
    ],
)
def test_plain_dicts_and_to_dict_objects_are_accepted(config) -> None:
    s = resolve_settings(config)
    assert s.max_steps == 9 and s.eval_every is None


@given(value=st.one_of(st.integers(max_value=0), st.floats(), st.text(max_size=3), st.booleans()))
def test_bad_counts_are_refused_with_key_and_value(value) -> None:
    with pytest.raises(TrainingConfigError) as err:
        resolve_settings({"training": {"log_every": value}})
    assert "training.log_every" in str(err.value) and repr(value) in str(err.value)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("max_grad_norm", -1.0),
        ("max_grad_norm", "big"),
        ("scheduler_interval", "batch"),
        ("nan_policy", "ignore"),
        ("strategy", "zero3"),
        ("device", 3),
        ("progress_bar", "yes"),
    ],
)
def test_bad_choices_are_refused(key, value) -> None:
    with pytest.raises(TrainingConfigError, match=f"training.{key}"):
        resolve_settings({"training": {key: value}})


def test_unknown_keywords_are_refused_but_unknown_config_keys_are_left_to_the_caller() -> None:
    assert resolve_settings({"training": {"lr": 1, "weight_decay": 0}}).log_every == 10
    with pytest.raises(TrainingConfigError, match="lr_max"):
        resolve_settings(lr_max=1)
