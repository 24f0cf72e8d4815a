"""Shared fixtures: a small base config written to a temporary folder."""

from __future__ import annotations

from pathlib import Path

import pytest

BASE_YAML = """\
model:
  name: encoder_only
  dim: 256
  layers: 2
  act: {name: gelu, approx: false}
training:
  seed: 1337
  device: cpu
  lr: 1e-3
  betas: [0.9, 0.95]
  batch_size: 16
  eval_every: null
data:
  name: dummy
"""


@pytest.fixture
def base_file(tmp_path: Path) -> Path:
    path = tmp_path / "base.yaml"
    path.write_text(BASE_YAML, encoding="utf-8")
    return path
