"""``hyso train --resume RUN_DIR`` after a SIGKILL ends like an uninterrupted run.

A tiny run (gradient accumulation 2, a checkpoint every 2 steps) is trained once
uninterrupted, then again in a process that SIGKILLs itself at a chosen moment (inside
an accumulation group, or in the middle of a checkpoint save), and resumed from the
command line. The final weights must be ``torch.equal`` and ``metrics.csv`` must have
the same rows apart from its timing columns.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import torch
from resume_helpers import WRAPPER
from resume_helpers import final_weights as _final_weights
from resume_helpers import metric_rows as _rows
from resume_helpers import only_run as _only_run
from resume_helpers import run_hyso as _hyso

from hyso.core.storage import load_manifest

TINY = """
model: {{name: decoder_only, dim: 32, layers: 1, num_heads: 2, max_seq_len: 32, dropout: 0.0}}
training:
  seed: 0
  device: cpu
  lr: 0.003
  batch_size: 4
  grad_accum_steps: 2
  epochs: 1
  log_every: 1
  eval_every: 2
  save_every: 2
  max_steps: 8
  progress_bar: false
  num_threads: 1
data:
  name: python-stdlib
  max_bytes: 20000
  vocab_size: 300
  cache_dir: {cache}
"""


@pytest.fixture(scope="module")
def space(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli_resume")
    (root / "tiny.yaml").write_text(TINY.format(cache=root / "cache"), encoding="utf-8")
    (root / "wrapper.py").write_text(WRAPPER, encoding="utf-8")
    done = _hyso(root, "tiny.yaml", "--runs-root", "full", "--sample-tokens", "0")
    assert done.returncode == 0, done.stderr[-3000:]
    return root


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
# backward 9: the first micro-batch of step 5 (last checkpoint: step 4); save 3: the
# third file put in place in checkpoints/ (a save of step 4 cut part-way, after step 2's
# save); backward 3: the first micro-batch of step 2, before any checkpoint
# (the run starts again in the same folder).
@pytest.mark.parametrize(("kind", "at"), [("backward", 9), ("save", 3), ("backward", 3)])
def test_killed_run_resumes_exactly(space: Path, kind: str, at: int) -> None:
    runs = f"killed-{kind}-{at}"
    killed = _hyso(space, "tiny.yaml", "--runs-root", runs, "--sample-tokens", "0", kill=(kind, at))
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    run_dir = _only_run(space / runs)
    assert load_manifest(run_dir / "manifest.json").status == "running"
    resumed = _hyso(space, "--resume", str(run_dir), "--sample-tokens", "0")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    full = _only_run(space / "full")
    assert load_manifest(run_dir / "manifest.json").status == "finished"
    a, b = _final_weights(full), _final_weights(run_dir)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert _rows(run_dir) == _rows(full)
    again = _hyso(space, "--resume", str(run_dir))
    assert again.returncode == 0
    assert "already finished" in again.stdout


def test_resume_refuses_overrides(space: Path) -> None:
    full = _only_run(space / "full")
    bad = _hyso(space, "--resume", str(full), "training.lr=0.1")
    assert bad.returncode == 2
    assert "takes no CONFIG or key=value overrides" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
