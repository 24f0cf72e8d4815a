"""A run killed with SIGKILL mid-epoch and resumed ends bit-identical to an uninterrupted one.

Each run is a separate process: the uninterrupted run, a run that kills itself with
SIGKILL at the start of an optimizer step (after checkpointing every step), and that
run resumed with ``fit(..., resume="latest")``. Weights are compared with torch.equal.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from hyso.core.train import read_metrics

WORKER = textwrap.dedent(
    """
    import os, signal, sys
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset
    from hyso.core.storage import RunPaths, set_global_seed
    from hyso.core.train import Callback, Trainer

    run_dir, mode, kill_step = sys.argv[1], sys.argv[2], int(sys.argv[3])
    set_global_seed(0 if mode != "resume" else 999)  # resume must not rely on this seed

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(31, 16)
            self.drop = nn.Dropout(0.25)
            self.mix = nn.Linear(16, 16)
            self.out = nn.Linear(16, 31)

        def forward(self, ids):
            return self.out(torch.tanh(self.mix(self.drop(self.emb(ids)))))  # (B, T, V)

    class KillAt(Callback):
        def on_step_start(self, trainer):
            if trainer.global_step + 1 == kill_step:
                os.kill(os.getpid(), signal.SIGKILL)

    g = torch.Generator().manual_seed(7)
    data = TensorDataset(torch.randint(0, 31, (90, 10), generator=g),
                         torch.randint(0, 31, (90, 10), generator=g))
    train = DataLoader(data, batch_size=8, shuffle=True)  # 12 batches, the last one of 2
    val = DataLoader(TensorDataset(*data[:24]), batch_size=12)
    model = Net()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=20)
    paths = RunPaths.for_run_dir(run_dir).ensure_dirs()
    trainer = Trainer(model, opt, sched, run_paths=paths,
                      callbacks=[KillAt()] if mode == "kill" else [],
                      grad_accum_steps=2, save_every=1, eval_every=5, log_every=3,
                      scheduler_interval="step", max_grad_norm=1.0, progress_bar=False,
                      seed=11)
    trainer.fit(train, val, epochs=3, resume="latest" if mode == "resume" else None)
    torch.save({k: v for k, v in model.state_dict().items()}, os.path.join(run_dir, "final.pt"))
    """
)

COMPARED = ("step", "epoch", "split", "loss", "ppl", "lr", "grad_norm")


def _run(script: Path, run_dir: Path, mode: str, kill_step: int = 0) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, str(script), str(run_dir), mode, str(kill_step)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
@pytest.mark.parametrize("kill_step", [4, 11])  # mid-epoch 0 (6 steps/epoch), mid-epoch 1
def test_sigkilled_run_resumes_bit_identical(tmp_path: Path, kill_step: int) -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    full_dir, cut_dir = tmp_path / "full", tmp_path / "cut"

    full = _run(script, full_dir, "full")
    assert full.returncode == 0, full.stderr[-3000:]

    killed = _run(script, cut_dir, "kill", kill_step)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert not (cut_dir / "final.pt").exists()

    resumed = _run(script, cut_dir, "resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"step {kill_step - 1}" in resumed.stderr  # it did resume, not restart

    a = torch.load(full_dir / "final.pt", weights_only=True)
    b = torch.load(cut_dir / "final.pt", weights_only=True)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key

    rows_full = [{k: r[k] for k in COMPARED} for r in read_metrics(full_dir / "metrics.csv")]
    rows_cut = [{k: r[k] for k in COMPARED} for r in read_metrics(cut_dir / "metrics.csv")]
    assert rows_cut == rows_full
    assert (cut_dir / "metrics.csv").read_bytes().endswith(b"\n")
