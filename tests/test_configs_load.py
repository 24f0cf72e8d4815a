"""Every file in ``configs/`` loads, and ``base.yaml`` holds the keys the stack reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from hyso.core.config import Config, expand_sweep, load_config, load_config_with_overrides

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
FILES = sorted(p for p in CONFIGS.iterdir() if p.suffix in (".yaml", ".yml", ".json"))

# The keys the founding usage example and the trainer read from base.yaml.
BASE_KEYS = {
    "model": {"name", "dim", "layers", "num_heads", "max_seq_len", "dropout"},
    "training": {
        "seed", "device", "lr", "weight_decay", "batch_size", "epochs", "grad_accum_steps",
        "max_grad_norm", "precision", "log_every", "eval_every", "save_every",
        "scheduler_interval", "max_steps",
    },
    "data": {"name"},
}  # fmt: skip


def test_the_expected_files_are_there() -> None:
    names = {p.name for p in FILES}
    assert {"base.yaml", "encoder_small.yaml", "encoder_large.yaml", "lr_sweep.yaml"} <= names


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_every_config_file_loads(path: Path) -> None:
    cfg = load_config(path)
    assert isinstance(cfg, Config) and len(cfg) > 0
    for point in expand_sweep(cfg):
        assert "sweep" not in point


def test_base_has_the_sections_and_keys_the_stack_reads() -> None:
    cfg = load_config(CONFIGS / "base.yaml")
    assert set(cfg) == set(BASE_KEYS)
    for section, keys in BASE_KEYS.items():
        missing = keys - set(cfg[section])
        assert not missing, f"base.yaml [{section}] lacks {sorted(missing)}"
    assert cfg.training.device == "cpu"
    assert isinstance(cfg.training.seed, int) and isinstance(cfg.training.lr, float)


def test_the_seed_example_call_works() -> None:
    cfg = load_config_with_overrides(
        path=CONFIGS / "base.yaml", override_pairs=["training.lr=0.0001", "model.dim=512"]
    )
    assert (cfg.training.lr, cfg.model.dim) == (0.0001, 512)


@pytest.mark.parametrize("name", ["encoder_small.yaml", "encoder_large.yaml"])
def test_encoder_configs_extend_base(name: str) -> None:
    base, cfg = load_config(CONFIGS / "base.yaml"), load_config(CONFIGS / name)
    assert set(cfg.training) == set(base.training) and set(cfg.model) == set(base.model)
    assert cfg.model.dim % cfg.model.num_heads == 0


def test_lr_sweep_expands_over_learning_rates() -> None:
    points = expand_sweep(load_config(CONFIGS / "lr_sweep.yaml"))
    lrs = [p.training.lr for p in points]
    assert len(points) >= 2 and len(set(lrs)) == len(lrs)
    base = load_config(CONFIGS / "base.yaml").to_dict()
    for point in points:
        plain = point.to_dict()
        plain["training"]["lr"] = base["training"]["lr"]
        assert plain == base
