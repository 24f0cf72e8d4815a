"""``hyso train`` under torchrun with ``training.strategy: fsdp`` (2 CPU processes, gloo):
one run folder, sharded checkpoints, rank 0's evaluation from them, and ``hyso generate``
on the finished run."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hyso.core.train.cli import main

CONFIG = """
model: {name: decoder_only, dim: 32, layers: 2, num_heads: 2, max_seq_len: 32, dropout: 0.0}
training:
  seed: 0
  device: cpu
  lr: 0.003
  batch_size: 4
  grad_accum_steps: 2
  max_grad_norm: 1.0
  epochs: 1
  log_every: 2
  eval_every: 4
  save_every: 4
  max_steps: 8
  progress_bar: false
  num_threads: 1
  strategy: fsdp
  dist_timeout_s: 120
data:
  max_bytes: 40000
  vocab_size: 300
  cache_dir: CACHE
"""


@pytest.mark.timeout(600)
def test_fsdp_run_writes_sharded_checkpoints_and_generates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "fsdp.yaml"
    config.write_text(CONFIG.replace("CACHE", str(tmp_path / "cache")), encoding="utf-8")
    runs = tmp_path / "runs"
    # the tokenizer and token cache first, so both ranks start training together
    assert main(["prepare", str(config)]) == 0
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd += ["-m", "hyso.core.train", "train", str(config), "--runs-root", str(runs)]
    proc = subprocess.run(
        [*cmd, "--sample-tokens", "4"],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=480,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    (run_dir,) = runs.iterdir()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "finished"
    assert manifest["results"]["global_step"] == 8
    assert math.isfinite(manifest["results"]["best_val_loss"])
    assert math.isfinite(manifest["results"]["val_bpb"])
    names = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    dcp = [n for n in names if n.endswith(".dcp")]
    assert dcp and all(f"{n}.json" in names for n in dcp), names
    assert not [n for n in names if n.endswith(".pt")], names  # every save was sharded
    capsys.readouterr()
    assert main(["generate", str(run_dir), "--max-new-tokens", "5", "--seed", "1"]) == 0
    from_run = capsys.readouterr().out
    assert from_run.strip()
    # the sharded checkpoint exports to one save_pretrained folder that samples the same
    folder = tmp_path / "exported"
    assert main(["convert", str(run_dir), str(folder)]) == 0
    assert (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file()
    capsys.readouterr()
    assert main(["generate", str(folder), "--max-new-tokens", "5", "--seed", "1"]) == 0
    assert capsys.readouterr().out == from_run


@pytest.mark.timeout(600)
def test_the_device_check_script_passes_on_cpu_with_gloo() -> None:
    """scripts/gpu_dist_check.py (run on GPU machines with NCCL) keeps working: here
    on two CPU processes with gloo, every check passes."""
    script = Path(__file__).resolve().parents[1] / "scripts" / "gpu_dist_check.py"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    proc = subprocess.run(
        [*cmd, str(script), "--device", "cpu"],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=480,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith(("ok", "FAIL"))]
    assert len(lines) == 4 and all(line.startswith("ok") for line in lines), proc.stdout
