"""Checks made before a run folder exists, and environment values kept out of run files."""

from __future__ import annotations

import pytest

from hyso.core.train.commands._model import build_model
from hyso.core.train.errors import TrainingConfigError
from hyso.core.train.preflight import (
    check_device,
    check_model_size,
    check_writable_text,
    estimate_parameters,
)
from hyso.core.train.redact import redact_env


@pytest.mark.parametrize(
    "model",
    [
        {"name": "decoder_only", "dim": 32, "layers": 2, "num_heads": 2, "max_seq_len": 64},
        {"name": "encoder_only", "dim": 64, "layers": 1, "num_heads": 4, "max_seq_len": 16},
    ],
)
def test_parameter_estimate_is_an_upper_bound_of_the_real_count(model: dict) -> None:
    real = build_model(model, 300).num_parameters()
    estimate = estimate_parameters(model, 300)
    assert estimate is not None and real <= estimate <= 3 * real


def test_an_absurd_model_is_refused_before_allocation() -> None:
    with pytest.raises(TrainingConfigError, match=r"model\.dim=1000000000.*GiB"):
        check_model_size({"dim": 10**9, "layers": 1}, 300, "cpu")
    check_model_size({"dim": 32, "layers": 1}, 300, "cpu")


def test_text_that_cannot_be_written_names_its_key() -> None:
    with pytest.raises(TrainingConfigError, match=r"data\.paths\[1\].*surrogate"):
        check_writable_text({"data": {"paths": ["a", "b\ud800"]}})
    check_writable_text({"data": {"paths": ["a", "é"]}})


def test_a_missing_device_is_refused() -> None:
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(TrainingConfigError, match="no CUDA device"):
            check_device("cuda")
    with pytest.raises(TrainingConfigError, match="not a device"):
        check_device("toaster")
    check_device("cpu")


def test_env_values_and_values_built_from_them_are_redacted(tmp_path, monkeypatch) -> None:
    from hyso.core.config import load_config

    monkeypatch.setenv("HYSO_TEST_TOKEN", "s3cret")
    path = tmp_path / "c.yaml"
    path.write_text(
        "data: {name: '${env:HYSO_TEST_TOKEN}', url: 'u:${data.name}@h', other: x}\n"
        "training: {lr: 0.1}\n",
        encoding="utf-8",
    )
    cfg = load_config(path)
    assert cfg.to_dict()["data"]["url"] == "u:s3cret@h"  # resolved in memory
    redacted = redact_env(cfg.to_dict(), cfg)
    assert "s3cret" not in repr(redacted)
    assert redacted["data"]["name"] == "${env:HYSO_TEST_TOKEN}"
    assert "${" in redacted["data"]["url"]
    assert redacted["data"]["other"] == "x" and redacted["training"] == {"lr": 0.1}
    # a derived tree (settings with defaults filled in) is redacted by key path
    settings = {"data": {"name": "s3cret", "extra_default": 3}}
    assert redact_env(settings, cfg)["data"] == {
        "name": "${env:HYSO_TEST_TOKEN}",
        "extra_default": 3,
    }
    assert redact_env({"a": 1}, {"a": 1}) == {"a": 1}  # nothing remembered: nothing to do
