"""CUDA paths: RNG state of the devices, background saves of GPU tensors, loading onto a GPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from hyso.core.storage import (
    CheckpointConfig,
    CheckpointManager,
    capture_rng_state,
    restore_rng_state,
    set_global_seed,
)

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_cuda_rng_state_round_trips() -> None:
    set_global_seed(3)
    torch.rand(4, device="cuda")
    state = capture_rng_state()
    assert len(state["cuda"]) == torch.cuda.device_count()
    expected = torch.rand(16, device="cuda")
    set_global_seed(4)
    restore_rng_state(state)
    assert torch.equal(torch.rand(16, device="cuda"), expected)


def test_background_save_of_gpu_model_snapshots_and_loads_to_gpu(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), nn.Dropout(0.2), nn.Linear(64, 8)).cuda()
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.randn(8, 64, device="cuda")).sum().backward()
    optimizer.step()
    before = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    manager = CheckpointManager(CheckpointConfig(tmp_path))
    path = manager.save(0, model, optimizer, blocking=False)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(0)
    manager.wait()
    on_cpu = manager.load(path)
    for name, value in before.items():
        assert on_cpu.model_state[name].device.type == "cpu"
        assert torch.equal(on_cpu.model_state[name], value)
    on_gpu = manager.load_latest(map_location="cuda")
    assert all(v.is_cuda for v in on_gpu.model_state.values())
    manager.restore_objects(on_gpu, model, optimizer)
    for name, value in before.items():
        assert torch.equal(model.state_dict()[name].cpu(), value)


def test_resume_on_gpu_reproduces_dropout_stream(tmp_path: Path) -> None:
    def make() -> tuple[nn.Module, torch.optim.Optimizer]:
        model = nn.Sequential(nn.Linear(32, 32), nn.Dropout(0.5), nn.Linear(32, 1)).cuda()
        return model, torch.optim.SGD(model.parameters(), lr=0.1)

    def steps(model: nn.Module, opt: torch.optim.Optimizer, n: int) -> None:
        for _ in range(n):
            loss = model(torch.randn(16, 32, device="cuda")).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()

    set_global_seed(11)
    model, opt = make()
    steps(model, opt, 2)
    manager = CheckpointManager(CheckpointConfig(tmp_path))
    manager.save(0, model, opt)
    steps(model, opt, 3)
    set_global_seed(99)
    resumed, r_opt = make()
    manager.restore_objects(manager.load_latest(map_location="cuda"), resumed, r_opt)
    steps(resumed, r_opt, 3)
    for name, value in model.state_dict().items():
        assert torch.equal(resumed.state_dict()[name], value), name
