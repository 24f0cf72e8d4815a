"""The founding usage example (examples/quickstart.py) runs unchanged and leaves a full run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import torch

from hyso.core.train import read_metrics

REPO = Path(__file__).resolve().parents[1]


def test_quickstart_runs_as_written_and_leaves_a_complete_run_folder(tmp_path: Path) -> None:
    # A copy of the layout the example expects (configs/ beside the cwd), so the
    # repository itself gets no runs/ folder.
    shutil.copytree(REPO / "configs", tmp_path / "configs")
    shutil.copy(REPO / "examples" / "quickstart.py", tmp_path / "quickstart.py")
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    proc = subprocess.run(
        [sys.executable, "quickstart.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]

    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1
    run = runs[0]

    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["format_version"] >= 1
    assert manifest["status"] == "finished"
    assert manifest["run_id"] == run.name
    assert manifest["results"]["global_step"] == 14  # 100 samples / batch 16 -> 7 steps x 2
    assert manifest["results"]["val_loss"] > 0

    config_text = (run / "config.yaml").read_text()
    assert "lr: 0.0001" in config_text and "dim: 512" in config_text  # the overrides

    log = (run / "logs" / "train.log").read_text()
    assert "Run started" in log and "Training finished." in log

    rows = read_metrics(run / "metrics.csv")
    val_rows = [r for r in rows if r["split"] == "val"]
    assert [r["step"] for r in val_rows] == [7, 14]
    assert val_rows[-1]["loss"] == manifest["results"]["val_loss"]

    ckpts = sorted((run / "checkpoints").glob("*.pt"))
    assert len(ckpts) == 2
    payload = torch.load(ckpts[-1], map_location="cpu", weights_only=True)
    assert payload["step"] == 14
    assert payload["extra"]["trainer"]["epoch_complete"] is True
