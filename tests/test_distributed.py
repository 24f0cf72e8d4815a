"""DDP through torchrun on CPU (gloo): same weights as one process, one run folder, clean failure.

Each test launches ``python -m torch.distributed.run`` (torchrun) on a small worker
script that trains a tiny decoder-only model for a few steps, on a shuffled loader,
with -100 targets and shards whose last micro-batch is smaller than the others.

What the equality needs, and the worker's data keeps to (the README says the same):
the one-process run reads the same global batches (the DistributedSampler permutation
of the trainer's seed, whole), and every training micro-batch counts the same number
of target tokens on every rank, because each rank's loss is a mean over its own
tokens and DDP averages the ranks. Validation sums losses and tokens over ranks, so
its figure matches with any padding and any split of the rows.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

WORKER = textwrap.dedent(
    """
    import faulthandler, gc, os, sys
    import torch
    faulthandler.enable(all_threads=True)  # a crash shows where every thread was
    from torch.utils.data import DataLoader, DistributedSampler, TensorDataset
    from hyso.core.models import HysoDecoderOnly
    from hyso.core.storage import CheckpointConfig, CheckpointManager, RunPaths, set_global_seed
    from hyso.core.train import (
        Callback, Trainer, create_run_paths, destroy_distributed, init_distributed,
    )

    out_dir, resume = sys.argv[1], sys.argv[4]
    per_rank_batch, fail_rank = int(sys.argv[2]), int(sys.argv[3])
    init_distributed("cpu", timeout_s=60)
    rank = int(os.environ.get("RANK", "0"))
    set_global_seed(3)
    model = HysoDecoderOnly(vocab_size=41, dim=16, num_layers=1, num_heads=2, max_seq_len=12)
    g = torch.Generator().manual_seed(5)
    # 50 rows: 25 a rank, so the last micro-batch holds 1 row a rank (2 in one process)
    # and the last accumulation group has one micro-batch.
    ids = torch.randint(0, 41, (50, 9), generator=g)
    targets = ids[:, 1:].clone()  # (50, 8)
    # Every row ignores 3 of its 8 targets (-100), at random places: each micro-batch
    # counts the same number of target tokens on every rank.
    ignored = torch.rand(targets.shape, generator=g).argsort(dim=1)[:, :3]
    targets.scatter_(1, ignored, -100)
    data = TensorDataset(ids[:, :-1], targets)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # The trainer shards a shuffled loader with a DistributedSampler seeded with
        # its seed: every epoch, each rank reads every other index of one permutation.
        train = DataLoader(data, batch_size=per_rank_batch, shuffle=True)
    else:
        # One process reading the same global batches: that permutation, whole.
        sampler = DistributedSampler(data, num_replicas=1, rank=0, shuffle=True, seed=9)
        train = DataLoader(data, batch_size=per_rank_batch, sampler=sampler)
    # Validation: 21 rows (11 on rank 0, 10 on rank 1), padded at the end to random
    # lengths; its loss is summed over tokens, so any padding gives the same value.
    val_ids = torch.randint(0, 41, (21, 9), generator=g)
    val_targets = val_ids[:, 1:].clone()  # (21, 8)
    lengths = torch.randint(1, 9, (21,), generator=g)
    val_targets[torch.arange(8) >= lengths[:, None]] = -100
    val = DataLoader(TensorDataset(val_ids[:, :-1], val_targets), batch_size=6)

    class FailAt(Callback):
        def on_step_start(self, trainer):
            if trainer.global_step == 2 and rank == fail_rank:
                raise RuntimeError(f"rank {rank} fails on purpose")

    if resume == "resume":
        root = os.path.join(out_dir, "runs")
        paths = RunPaths.for_run_dir(os.path.join(root, os.listdir(root)[0]))
    else:
        paths = create_run_paths(os.path.join(out_dir, "runs"))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    manager = CheckpointManager(CheckpointConfig.from_dir(directory=paths.checkpoints_dir,
                                                          best_metric_name="val_loss"))
    trainer = Trainer(model, opt, run_paths=paths, checkpoint_manager=manager,
                      callbacks=[FailAt()], progress_bar=False, grad_accum_steps=2,
                      log_every=1, save_every=2, seed=9, dist_timeout_s=60)
    max_epochs = 1 if resume == "first" else 2
    trainer.fit(train, val, epochs=max_epochs, resume="latest" if resume == "resume" else None)
    if rank == 0:
        torch.save(model.state_dict(), os.path.join(out_dir, "final.pt"))
        with open(os.path.join(out_dir, "val_loss.txt"), "w") as f:
            f.write(repr(trainer.history[-1]["val_loss"]))
    del trainer, model, opt  # freed while the process group still exists
    gc.collect()
    destroy_distributed(sync=True)
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def _torchrun(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", *args]


def _single(script: Path, out: Path, batch: int, resume: str = "none") -> None:
    proc = subprocess.run(
        [sys.executable, str(script), str(out), str(batch), "-1", resume],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-8000:]


def _ddp(script: Path, out: Path, fail_rank: int = -1, resume: str = "none"):
    return subprocess.run(
        _torchrun(
            [
                "--standalone",
                "--nproc_per_node=2",
                str(script),
                str(out),
                "4",
                str(fail_rank),
                resume,
            ]
        ),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )


def _assert_same_weights(a: Path, b: Path) -> None:
    wa = torch.load(a / "final.pt", weights_only=True)
    wb = torch.load(b / "final.pt", weights_only=True)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert not key.startswith("module.")
        torch.testing.assert_close(wa[key], wb[key], rtol=0, atol=1e-5, msg=key)


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "worker.py"
    path.write_text(WORKER)
    return path


def test_two_processes_match_one_process_and_write_one_run_folder(tmp_path, script) -> None:
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    _single(script, single, batch=8)
    proc = _ddp(script, ddp)
    assert proc.returncode == 0, proc.stderr[-8000:]
    _assert_same_weights(single, ddp)
    runs = list((ddp / "runs").iterdir())
    assert len(runs) == 1  # rank 0 chose the id, rank 1 wrote nothing of its own
    # The validation loss is averaged over both ranks' shards: equal to one process's.
    v1 = float((single / "val_loss.txt").read_text())
    v2 = float((ddp / "val_loss.txt").read_text())
    assert abs(v1 - v2) < 1e-5
    ckpts = sorted((runs[0] / "checkpoints").glob("*.pt"))
    assert ckpts
    payload = torch.load(ckpts[-1], weights_only=True)
    assert not any(k.startswith("module.") for k in payload["model"])


def test_ddp_checkpoint_resumes_in_one_process(tmp_path, script) -> None:
    ddp = tmp_path / "ddp"
    proc = _ddp(script, ddp, resume="first")  # one epoch under DDP
    assert proc.returncode == 0, proc.stderr[-8000:]
    _single(script, ddp, batch=8, resume="resume")  # second epoch in one process
    full = tmp_path / "full"
    _single(script, full, batch=8)
    _assert_same_weights(full, ddp)


def test_single_process_checkpoint_resumes_under_ddp(tmp_path, script) -> None:
    out = tmp_path / "mixed"
    _single(script, out, batch=8, resume="first")  # first epoch in one process
    proc = _ddp(script, out, resume="resume")  # second epoch on two processes
    assert proc.returncode == 0, proc.stderr[-8000:]
    full = tmp_path / "full"
    _single(script, full, batch=8)
    _assert_same_weights(full, out)


def test_two_nodes_on_loopback_complete_the_job(tmp_path, script) -> None:
    out = tmp_path / "nodes"
    port = _free_port()
    common = [
        "--nnodes=2",
        "--nproc_per_node=1",
        "--rdzv-backend=c10d",
        f"--rdzv-endpoint=127.0.0.1:{port}",
        "--rdzv-id=hyso-test",
    ]
    procs = [
        subprocess.Popen(
            _torchrun([*common, f"--node-rank={rank}", str(script), str(out), "4", "-1", "none"]),
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in (0, 1)
    ]
    outputs = [p.communicate(timeout=240) for p in procs]
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-3000:]
    single = tmp_path / "single"
    _single(script, single, batch=8)
    _assert_same_weights(single, out)
    assert len(list((out / "runs").iterdir())) == 1


def test_a_failing_rank_fails_the_launch_within_bounded_time(tmp_path, script) -> None:
    t0 = time.monotonic()
    proc = _ddp(script, tmp_path / "fail", fail_rank=1)
    elapsed = time.monotonic() - t0
    assert proc.returncode != 0
    assert "rank 1 fails on purpose" in proc.stderr
    assert elapsed < 200  # bounded by the process-group timeout, not a hang
    manifest = next((tmp_path / "fail" / "runs").iterdir()) / "manifest.json"
    assert manifest.exists()
