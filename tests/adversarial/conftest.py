"""Fixtures of the adversarial suite; the probe runner is in ``harness``."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def probe_dir(tmp_path: Path) -> Path:
    """An empty working folder for one probe."""
    work = tmp_path / "work"
    work.mkdir()
    return work
