"""Model configs: defaults, validation, unknown keys, the registry, no torch needed."""

from __future__ import annotations

import dataclasses
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hyso.core.models import (
    DecoderOnlyConfig,
    EncoderDecoderConfig,
    EncoderOnlyConfig,
    ModelConfigError,
    get_config,
    list_configs,
    register_config,
)


@given(dim=st.integers(1, 2048).map(lambda n: 2 * n))
def test_num_heads_defaults_to_dim_over_64_at_least_one(dim: int) -> None:
    expected = max(1, dim // 64)
    if dim % expected or (dim // expected) % 2:
        with pytest.raises(ModelConfigError):
            EncoderOnlyConfig(dim=dim, num_layers=1, vocab_size=10)
        return
    config = EncoderOnlyConfig(dim=dim, num_layers=1, vocab_size=10)
    assert config.num_heads == expected
    assert config.num_kv_heads == expected
    assert config.head_dim * config.num_heads == dim


def test_seed_shape_defaults() -> None:
    config = EncoderOnlyConfig(dim=512, num_layers=2, vocab_size=261)
    assert (config.num_heads, config.num_kv_heads, config.head_dim) == (8, 8, 64)
    assert config.mlp == "swiglu" and config.norm == "rmsnorm"
    assert config.hidden_dim % 64 == 0 and config.hidden_dim >= 8 * 512 // 3


def test_gelu_hidden_default_is_four_times_dim() -> None:
    assert DecoderOnlyConfig(dim=128, num_layers=1, vocab_size=5, mlp="gelu").hidden_dim == 512


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"dim": 100, "num_heads": 3}, ["dim 100", "num_heads 3"]),
        ({"num_heads": 4, "num_kv_heads": 3}, ["num_heads 4", "num_kv_heads 3"]),
        ({"mlp": "relu"}, ["mlp", "relu"]),
        ({"norm": "batchnorm"}, ["norm", "batchnorm"]),
        ({"dropout": 1.5}, ["dropout", "1.5"]),
        ({"drop_path": -0.1}, ["drop_path"]),
        ({"vocab_size": 0}, ["vocab_size", "0"]),
        ({"num_layers": 2.5}, ["num_layers", "2.5"]),
        ({"max_seq_len": True}, ["max_seq_len"]),
        ({"tie_embeddings": "yes"}, ["tie_embeddings"]),
    ],
)
def test_bad_values_raise_value_error_naming_the_key(kwargs, words) -> None:
    values = {"dim": 64, "num_layers": 2, "vocab_size": 50, **kwargs}
    with pytest.raises(ValueError) as info:
        DecoderOnlyConfig(**values)
    for word in words:
        assert word in str(info.value)


def test_from_dict_names_unknown_keys() -> None:
    with pytest.raises(ModelConfigError, match=r"colour.*flavour"):
        DecoderOnlyConfig.from_dict(
            {"dim": 64, "num_layers": 1, "vocab_size": 9, "flavour": 1, "colour": 2}
        )


def test_from_dict_reads_the_spec_keys_layers_and_name() -> None:
    section = {
        "name": "encoder_only",
        "dim": 256,
        "layers": 2,
        "num_heads": 4,
        "max_seq_len": 128,
        "dropout": 0.0,
    }
    config = EncoderOnlyConfig.from_dict(section, vocab_size=261)
    assert (config.num_layers, config.vocab_size, config.num_heads) == (2, 261, 4)
    with pytest.raises(ModelConfigError, match="decoder_only"):
        DecoderOnlyConfig.from_dict(section, vocab_size=261)


def test_from_dict_reports_missing_required_keys() -> None:
    with pytest.raises(ModelConfigError, match="vocab_size"):
        DecoderOnlyConfig.from_dict({"dim": 64, "num_layers": 1})


def test_to_dict_round_trips() -> None:
    config = EncoderDecoderConfig(dim=64, num_layers=2, vocab_size=30, num_decoder_layers=3)
    again = EncoderDecoderConfig.from_dict(config.to_dict())
    assert again == config
    assert again.num_decoder_layers == 3


def test_from_dict_accepts_objects_with_to_dict() -> None:
    class Section:
        def to_dict(self):
            return {"dim": 64, "num_layers": 1, "vocab_size": 9}

    assert DecoderOnlyConfig.from_dict(Section()).dim == 64


def test_registry_debug_entry_and_errors() -> None:
    debug = get_config("debug")
    assert isinstance(debug, DecoderOnlyConfig)
    assert debug.num_kv_heads < debug.num_heads  # exercises grouped-query attention
    assert isinstance(get_config("debug", "encoder_decoder"), EncoderDecoderConfig)
    assert get_config("debug", dim=64).dim == 64
    get_config("debug").dim = 1000  # a copy: the registry is unchanged
    assert get_config("debug").dim == debug.dim
    assert "debug" in list_configs()
    with pytest.raises(ModelConfigError, match="nope"):
        get_config("nope")
    with pytest.raises(ModelConfigError, match="unknown model family"):
        get_config("debug", "recurrent")
    with pytest.raises(ModelConfigError):
        register_config("broken", "decoder_only", dim=10, num_layers=1, vocab_size=5, mlp="x")
    assert "broken" not in list_configs()


def test_configs_are_dataclasses_with_family() -> None:
    for cls in (DecoderOnlyConfig, EncoderOnlyConfig, EncoderDecoderConfig):
        assert dataclasses.is_dataclass(cls)
    assert EncoderDecoderConfig.family == "encoder_decoder"


def test_config_module_imports_without_torch(tmp_path: Path) -> None:
    import hyso.core.models.config as module

    spec = importlib.util.find_spec("hyso.core.models.config")
    assert spec is not None and spec.origin == module.__file__
    code = (
        "import sys, importlib.util\n"
        "sys.modules['torch'] = None  # any import of torch now fails\n"
        f"spec = importlib.util.spec_from_file_location('cfg', {module.__file__!r})\n"
        "mod = importlib.util.module_from_spec(spec); sys.modules['cfg'] = mod\n"
        "spec.loader.exec_module(mod)\n"
        "print(mod.get_config('debug').dim)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(get_config("debug").dim)
