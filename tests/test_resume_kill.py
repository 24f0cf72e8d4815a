"""A run SIGKILLed at a random moment and resumed ends bit-identical to an uninterrupted one.

Each run is a separate process: one uninterrupted run (shared by every case), a run
that kills itself with SIGKILL, and that run resumed with ``fit(..., resume="latest")``.
Checkpoints are written every 4 optimizer steps and at each epoch end (6 steps an
epoch, 2 micro-batches a step). Each case draws its moment from its own seed:

- ``step``: at the start of an optimizer step;
- ``micro``: inside a gradient-accumulation group, after the first micro-batch's
  backward, at the second micro-batch's forward;
- ``write``: during a checkpoint save, part-way through writing the file;
- ``replace``: during a save, just before the n-th file is moved into place;
- ``replaced``: during a save, just after the n-th file is moved into place.

The save moments come from wrapping ``open``/``os.replace`` inside the worker; only
writes into the run's checkpoint folder from the training thread count. Final weights
are compared with torch.equal, the metrics rows value by value.
"""

from __future__ import annotations

import os
import random
import re
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
    import builtins, io, os, signal, sys, threading
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset
    from hyso.core.storage import RunPaths, set_global_seed
    from hyso.core.train import Callback, Trainer

    run_dir, mode, kind, a, b = sys.argv[1], sys.argv[2], sys.argv[3], *map(int, sys.argv[4:6])
    set_global_seed(0 if mode != "resume" else 999)  # resume must not rely on this seed
    paths = RunPaths.for_run_dir(run_dir).ensure_dirs()
    ckpt_dir = os.path.realpath(paths.checkpoints_dir)

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(31, 16)
            self.drop = nn.Dropout(0.25)
            self.mix = nn.Linear(16, 16)
            self.out = nn.Linear(16, 31)
            self.train_forwards = 0

        def forward(self, ids):
            if self.training:
                self.train_forwards += 1
                if kind == "micro" and self.train_forwards == a:
                    die()  # the group's first micro-batch has run its backward
            return self.out(torch.tanh(self.mix(self.drop(self.emb(ids)))))  # (B, T, V)

    armed = False  # set at the end of step a; the next checkpoint save is the one cut

    def in_save(path):
        return (armed and threading.current_thread() is threading.main_thread()
                and os.path.realpath(os.path.dirname(os.fspath(path))) == ckpt_dir)

    class CutFile:
        def __init__(self, handle):
            self._handle = handle
        def write(self, data):
            state["bytes"] += len(data)
            if state["bytes"] >= b:
                die()  # part of the file is written, the rest is not
            return self._handle.write(data)
        def __getattr__(self, name):
            return getattr(self._handle, name)
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            self._handle.close()

    state = {"bytes": 0, "replaces": 0}
    real_open, real_replace = builtins.open, os.replace

    def cut_open(file, mode="r", *args, **kwargs):
        handle = real_open(file, mode, *args, **kwargs)
        return CutFile(handle) if "x" in mode and in_save(file) else handle

    def cut_replace(src, dst, *args, **kwargs):
        counted = in_save(dst)
        if counted:
            state["replaces"] += 1
            if kind == "replace" and state["replaces"] == b:
                die()  # the temp file is complete, not yet in place
        real_replace(src, dst, *args, **kwargs)
        if counted and kind == "replaced" and state["replaces"] == b:
            die()  # in place, the rest of the save not done

    if mode == "kill" and kind == "write":
        builtins.open = io.open = cut_open
    if mode == "kill" and kind in ("replace", "replaced"):
        os.replace = cut_replace

    class KillAt(Callback):
        def on_step_start(self, trainer):
            if kind == "step" and trainer.global_step + 1 == a:
                die()

        def on_step_end(self, trainer, metrics):
            global armed
            armed = armed or trainer.global_step == a  # runs before the checkpoint callback

    g = torch.Generator().manual_seed(7)
    data = TensorDataset(torch.randint(0, 31, (90, 10), generator=g),
                         torch.randint(0, 31, (90, 10), generator=g))
    train = DataLoader(data, batch_size=8, shuffle=True)  # 12 batches, the last one of 2
    val = DataLoader(TensorDataset(*data[:24]), batch_size=12)
    model = Net()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=20)
    trainer = Trainer(model, opt, sched, run_paths=paths,
                      callbacks=[KillAt()] if mode == "kill" else [],
                      grad_accum_steps=2, save_every=4, eval_every=5, log_every=3,
                      scheduler_interval="step", max_grad_norm=1.0, progress_bar=False,
                      seed=11)
    trainer.fit(train, val, epochs=3, resume="latest" if mode == "resume" else None)
    torch.save({k: v for k, v in model.state_dict().items()}, os.path.join(run_dir, "final.pt"))
    """
)

COMPARED = ("step", "epoch", "split", "loss", "ppl", "lr", "grad_norm")
STEPS = 18  # 3 epochs of 6 optimizer steps
SAVE_STEPS = (4, 6, 8, 12, 16)  # every 4 steps, and the epoch ends 6 and 12
TEMP_RE = re.compile(r"^\..+\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp\Z")


def _moment(kind: str, seed: int) -> tuple[int, int]:
    """The case's (a, b), drawn from its seed, always after the first checkpoint (step 4)."""
    rng = random.Random(f"{kind}-{seed}")
    if kind == "step":
        return rng.randint(6, STEPS), 0  # killed as step a starts
    if kind == "micro":
        return 2 * rng.randint(5, STEPS - 1) + 2, 0  # forward a: 2nd of group a/2 - 1
    save_step = rng.choice(SAVE_STEPS[1:])
    if kind == "write":
        return save_step, rng.randint(1, 8192)  # the checkpoint file holds ~25 kB
    return save_step, rng.randint(1, 2)  # the payload file, then its record


def _run(
    script: Path, run_dir: Path, mode: str, kind: str = "none", a: int = 0, b: int = 0
) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, str(script), str(run_dir), mode, kind, str(a), str(b)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    script = tmp_path_factory.mktemp("worker") / "worker.py"
    script.write_text(WORKER)
    return script


@pytest.fixture(scope="module")
def uninterrupted(worker: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("full")
    full = _run(worker, run_dir, "full")
    assert full.returncode == 0, full.stderr[-3000:]
    return run_dir


# Seeds picked so that the drawn moments cover mid-epoch and epoch-end steps and
# groups, step and epoch-end saves, the payload file and its record (the commit).
CASES = [
    ("step", 0),  # step 15 starts
    ("micro", 0),  # the last group of epoch 0 (step 6)
    ("micro", 1),  # mid-epoch group (step 13)
    ("write", 1),  # the epoch-end save of step 6, 743 bytes in
    ("replace", 3),  # the save of step 8, before its payload is in place
    ("replaced", 2),  # the epoch-end save of step 12: payload in place, no record yet
    ("replaced", 0),  # the same save once its record (the commit) is in place
]


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
@pytest.mark.parametrize(("kind", "seed"), CASES, ids=[f"{k}-{s}" for k, s in CASES])
def test_sigkilled_run_resumes_bit_identical(
    tmp_path: Path, worker: Path, uninterrupted: Path, kind: str, seed: int
) -> None:
    a, b = _moment(kind, seed)
    where = f"{kind} a={a} b={b}"
    cut_dir = tmp_path / "cut"

    killed = _run(worker, cut_dir, "kill", kind, a, b)
    assert killed.returncode == -signal.SIGKILL, (where, killed.stderr[-3000:])
    assert not (cut_dir / "final.pt").exists()
    leftovers = [p.name for p in (cut_dir / "checkpoints").iterdir() if TEMP_RE.match(p.name)]
    if kind in ("write", "replace"):
        assert leftovers, where  # the kill did land inside a file's write

    resumed = _run(worker, cut_dir, "resume")
    assert resumed.returncode == 0, (where, resumed.stderr[-3000:])
    found = re.search(r"resumed from .*: epoch \d+, step (\d+),", resumed.stderr)
    assert found, (where, resumed.stderr[-3000:])  # it did resume, not restart
    start = int(found.group(1))
    assert 4 <= start <= (a // 2 if kind == "micro" else a), where
    if kind in ("step", "micro", "write", "replace"):
        assert start < (a // 2 if kind == "micro" else a), where  # the cut save is not used
    assert not any(TEMP_RE.match(p.name) for p in (cut_dir / "checkpoints").iterdir())

    a_state = torch.load(uninterrupted / "final.pt", weights_only=True)
    b_state = torch.load(cut_dir / "final.pt", weights_only=True)
    assert a_state.keys() == b_state.keys()
    for key in a_state:
        assert torch.equal(a_state[key], b_state[key]), (where, key)

    rows_full = [{k: r[k] for k in COMPARED} for r in read_metrics(uninterrupted / "metrics.csv")]
    rows_cut = [{k: r[k] for k in COMPARED} for r in read_metrics(cut_dir / "metrics.csv")]
    assert rows_cut == rows_full, where
    assert (cut_dir / "metrics.csv").read_bytes().endswith(b"\n")
