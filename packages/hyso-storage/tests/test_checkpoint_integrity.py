"""Property: any single flipped byte or truncation of a checkpoint is detected on load."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hyso.core.storage import CheckpointConfig, CheckpointCorruptError, CheckpointManager


class Saved(tuple):
    def __repr__(self) -> str:  # keep the bytes out of failure reports
        return f"Saved({self[1].name})"


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[CheckpointManager, Path, bytes]:
    torch.manual_seed(0)
    manager = CheckpointManager(CheckpointConfig(tmp_path_factory.mktemp("integrity")))
    path = manager.save(1, torch.nn.Linear(16, 8), step=3, metrics={"loss": 0.5})
    manager.wait()
    return Saved((manager, path, path.read_bytes()))


_settings = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_settings
@given(position=st.floats(0, 1, exclude_max=True), mask=st.integers(1, 255))
def test_any_flipped_byte_is_detected(saved, position: float, mask: int) -> None:
    manager, path, original = saved
    data = bytearray(original)
    data[int(position * len(data))] ^= mask
    path.write_bytes(bytes(data))
    try:
        with pytest.raises(CheckpointCorruptError, match=path.name):
            manager.load(path)
    finally:
        path.write_bytes(original)


@_settings
@given(keep=st.floats(0, 1, exclude_max=True))
def test_any_truncation_is_detected(saved, keep: float) -> None:
    manager, path, original = saved
    path.write_bytes(original[: int(keep * len(original))])
    try:
        with pytest.raises(CheckpointCorruptError, match="bytes, its record says"):
            manager.load(path)
    finally:
        path.write_bytes(original)
    assert manager.load(path).step == 3  # restored file loads again
