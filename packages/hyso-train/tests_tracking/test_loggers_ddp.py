"""Under torchrun (two CPU processes, gloo) only rank 0 logs: one TensorBoard folder,
one MLflow run, one W&B run, each holding rank 0's metrics.csv rows."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from tracking_helpers import csv_values, tensorboard_values, wandb_history

from hyso.core.storage import load_manifest
from hyso.core.train import read_metrics

WORKER = textwrap.dedent(
    """
    import os, sys
    import torch
    from torch.utils.data import DataLoader, TensorDataset
    from hyso.core.storage import RunPaths
    from hyso.core.train import Trainer, create_run_paths, init_distributed
    sys.path.insert(0, sys.argv[2])
    from train_helpers import TinyLM

    init_distributed("cpu", timeout_s=60)
    torch.manual_seed(0)
    model = TinyLM()
    data = TensorDataset(torch.randint(0, 11, (32, 6)), torch.randint(0, 11, (32, 6)))
    paths = create_run_paths(os.path.join(sys.argv[1], "runs"))
    trainer = Trainer(
        model, torch.optim.SGD(model.parameters(), lr=0.1), run_paths=paths,
        loggers=["csv", "tensorboard", "mlflow", "wandb"], log_every=1, eval_every=2,
        progress_bar=False, seed=3, dist_timeout_s=60,
    )
    trainer.fit(DataLoader(data, batch_size=4), DataLoader(data, batch_size=8), epochs=1)
    """
)


def test_only_rank_zero_logs_under_torchrun(tmp_path: Path, offline_backends: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER, encoding="utf-8")
    helpers = str(Path(__file__).resolve().parents[1] / "tests")
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(script), str(tmp_path), helpers],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run_dir,) = (tmp_path / "runs").iterdir()
    rows = read_metrics(run_dir / "metrics.csv")
    assert max(r["step"] for r in rows) == 4  # 32 rows, 2 ranks, batches of 4
    expected = csv_values(rows)
    loggers = load_manifest(run_dir / "manifest.json").extra["loggers"]
    assert set(loggers) == {"tensorboard", "mlflow", "wandb"}
    assert len(list((run_dir / "tensorboard").glob("events.out.tfevents.*"))) == 1
    scalars = tensorboard_values(run_dir / "tensorboard")[0]
    assert {k: v[0] for k, v in scalars.items()} == pytest.approx(expected, abs=1e-6, rel=0)
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments)
    assert [r.info.run_id for r in runs] == [loggers["mlflow"]["run_id"]]
    files = sorted((offline_backends / "wandb_dir").rglob("run-*.wandb"))
    assert [f.stem for f in files] == [f"run-{loggers['wandb']['id']}"]
    history = wandb_history(files)[0]
    assert {k: v[0] for k, v in history.items()} == pytest.approx(expected, abs=1e-6, rel=0)
