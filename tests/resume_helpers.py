"""Running ``hyso train`` in a subprocess that SIGKILLs itself, and reading what a run
left: shared by the resume tests of the command line (plain and LoRA runs)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import torch

from hyso.core.train import read_metrics

__all__ = ["TIMING", "WRAPPER", "final_weights", "metric_rows", "only_run", "run_hyso"]

# Runs ``hyso`` with a hook that SIGKILLs the process: KIND "backward" after the N-th
# backward pass (N odd: the first micro-batch of a group), KIND "save" at the N-th
# os.replace into the checkpoints folder (a save cut before it is committed).
WRAPPER = textwrap.dedent(
    """
    import os, signal, sys
    import torch
    from hyso.core.train.cli import main

    kind, n = os.environ.get("KILL_KIND", ""), int(os.environ.get("KILL_AT", "0"))
    count = [0]

    def tick():
        count[0] += 1
        if count[0] == n:
            os.kill(os.getpid(), signal.SIGKILL)

    if kind == "backward":
        backward = torch.Tensor.backward
        def patched_backward(self, *args, **kwargs):
            backward(self, *args, **kwargs)
            tick()
        torch.Tensor.backward = patched_backward
    elif kind == "save":
        replace = os.replace
        def patched_replace(src, dst, *args, **kwargs):
            if "checkpoints" in os.fspath(dst):
                tick()
            return replace(src, dst, *args, **kwargs)
        os.replace = patched_replace
    sys.exit(main(sys.argv[1:]))
    """
)

TIMING = ("tokens_per_s", "elapsed_s")  # the columns of metrics.csv that measure time


def run_hyso(root: Path, *args: str, kill: tuple[str, int] | None = None):
    """``hyso train ARGS`` through ``root/wrapper.py`` (``WRAPPER``), killed at ``kill``."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if kill is not None:
        env["KILL_KIND"], env["KILL_AT"] = kill[0], str(kill[1])
    return subprocess.run(
        [sys.executable, str(root / "wrapper.py"), "train", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    """The model state of the last checkpoint, as loaded by hyso-storage."""
    from hyso.core.storage import CheckpointConfig, CheckpointManager

    mgr = CheckpointManager(CheckpointConfig.from_dir(directory=run_dir / "checkpoints"))
    ckpt = mgr.load_latest(map_location="cpu")
    assert ckpt is not None
    return ckpt.model_state


def metric_rows(run_dir: Path) -> list[dict]:
    """The rows of ``metrics.csv`` without the columns that measure time."""
    rows = read_metrics(run_dir / "metrics.csv")
    assert rows and all(k in rows[0] for k in TIMING)
    return [{k: v for k, v in row.items() if k not in TIMING} for row in rows]


def only_run(folder: Path) -> Path:
    """The one run folder in ``folder``."""
    (run_dir,) = folder.iterdir()
    return run_dir
