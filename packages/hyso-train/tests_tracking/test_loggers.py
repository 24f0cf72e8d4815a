"""TensorBoard, MLflow and W&B receive exactly the rows of metrics.csv, the config and
the run id; a resumed run continues the same backend runs; a failing one warns once."""

from __future__ import annotations

import errno
import json
import subprocess
import sys
import warnings

import pytest
from tracking_helpers import (
    Interrupt,
    StopAt,
    csv_values,
    tensorboard_values,
    train,
    wandb_history,
)

from hyso.core.storage import load_manifest
from hyso.core.train import read_metrics
from hyso.core.train.loggers import (
    LoggerFailedWarning,
    MLflowLogger,
    TensorBoardLogger,
    WandbLogger,
)
from hyso.core.train.loggers.base import flatten_config

ALL = ["csv", "tensorboard", "mlflow", "wandb"]
#: Columns a resumed run recomputes exactly (timings differ between processes).
EXACT = ("loss", "ppl", "lr", "grad_norm", "epoch")


def test_import_hyso_train_loads_no_tracking_library():
    code = (
        "import sys, hyso.core.train, hyso.core.train.loggers\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('tensorboard', 'mlflow', 'wandb') or m.startswith('torch.utils.tensorboard'))\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_building_a_logger_loads_its_library_only_then():
    code = (
        "import sys\n"
        "from hyso.core.train.loggers import TensorBoardLogger\n"
        "before = 'torch.utils.tensorboard' in sys.modules\n"
        "TensorBoardLogger()\n"
        "print(before, 'torch.utils.tensorboard' in sys.modules, 'wandb' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True", "False"]


def _manifest_loggers(run_dir):
    return load_manifest(run_dir / "manifest.json").extra["loggers"]


def _config():
    return {"model": {"name": "tiny", "dim": 8}, "training": {"lr": 0.02}, "data": {"seq": 6}}


def test_tensorboard_event_files_hold_every_metrics_csv_value(tmp_path):
    run_dir = tmp_path / "run"
    trainer = train(run_dir, loggers=["csv", "tensorboard"], config=_config())
    rows = read_metrics(run_dir / "metrics.csv")
    assert {r["split"] for r in rows} == {"train", "val"}
    expected = csv_values(rows)
    log_dir = run_dir / "tensorboard"
    assert _manifest_loggers(run_dir) == {"tensorboard": {"log_dir": str(log_dir)}}
    scalars, hparams = tensorboard_values(log_dir)
    assert set(scalars) == set(expected)
    for key, value in expected.items():
        assert len(scalars[key]) == 1, key
        assert scalars[key][0] == pytest.approx(value, abs=1e-6, rel=0), key
    assert hparams["run_id"] == "run"
    assert hparams["model.dim"] == 8
    assert hparams["training.lr"] == pytest.approx(0.02)
    assert hparams["training.log_every"] == trainer.settings.log_every


def _mlflow_client():
    from mlflow.tracking import MlflowClient

    return MlflowClient()  # MLFLOW_TRACKING_URI: the test's file store


def _mlflow_values(client, run_id):
    run = client.get_run(run_id)
    out: dict[tuple[str, int], list[float]] = {}
    for key in run.data.metrics:
        for m in client.get_metric_history(run_id, key):
            out.setdefault((key, m.step), []).append(m.value)
    return run, out


def test_mlflow_store_holds_the_metrics_and_params(tmp_path):
    run_dir = tmp_path / "run"
    trainer = train(run_dir, loggers=["csv", "mlflow"], config=_config())
    expected = csv_values(read_metrics(run_dir / "metrics.csv"))
    where = _manifest_loggers(run_dir)["mlflow"]
    run, values = _mlflow_values(_mlflow_client(), where["run_id"])
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "run"
    assert run.data.tags["hyso.run_id"] == "run"
    assert set(values) == set(expected)
    for key, value in expected.items():
        assert values[key] == [pytest.approx(value, abs=1e-6, rel=0)], key
    params = run.data.params
    from hyso.core.train.loggers.base import run_config_tree

    assert params == {k: str(v) for k, v in flatten_config(run_config_tree(trainer)).items()}
    assert params["training.lr"] == "0.02"
    assert params["model.name"] == "tiny"


def test_wandb_offline_run_holds_the_history_and_config(tmp_path, offline_backends):
    run_dir = tmp_path / "run"
    train(run_dir, loggers=["csv", "wandb"], config=_config())
    expected = csv_values(read_metrics(run_dir / "metrics.csv"))
    where = _manifest_loggers(run_dir)["wandb"]
    assert where["mode"] == "offline"
    assert where["path"].endswith(where["id"])
    files = sorted((offline_backends / "wandb_dir").rglob(f"run-{where['id']}.wandb"))
    assert len(files) == 1
    history, config = wandb_history(files)
    assert set(history) == set(expected)
    for key, value in expected.items():
        assert history[key] == [pytest.approx(value, abs=1e-6, rel=0)], key
    assert config["hyso_run_id"] == "run"
    assert config["training"]["lr"] == 0.02
    assert config["training"]["loggers"] == ["csv", "wandb"]
    assert config["model"] == {"name": "tiny", "dim": 8}


def test_all_three_at_once_and_the_csv_unchanged(tmp_path):
    plain = train(tmp_path / "plain")
    both = train(tmp_path / "all", loggers=ALL)
    a = read_metrics(tmp_path / "plain" / "metrics.csv")
    b = read_metrics(tmp_path / "all" / "metrics.csv")
    assert [{k: r[k] for k in ("step", "split", *EXACT)} for r in a] == [
        {k: r[k] for k in ("step", "split", *EXACT)} for r in b
    ]
    assert plain.global_step == both.global_step
    assert set(_manifest_loggers(tmp_path / "all")) == {"tensorboard", "mlflow", "wandb"}


def test_a_resumed_run_continues_the_same_runs_without_duplicate_steps(tmp_path, offline_backends):
    run_dir = tmp_path / "run"
    # Killed at step 11 with its last checkpoint at step 6: steps 7-10 were logged and
    # are trained again after the resume.
    with pytest.raises(Interrupt):
        train(run_dir, loggers=ALL, callbacks=[StopAt(11)], epochs=3)
    first = _manifest_loggers(run_dir)
    killed_rows = read_metrics(run_dir / "metrics.csv")
    assert max(r["step"] for r in killed_rows) == 10
    train(run_dir, loggers=ALL, resume="latest", epochs=3)
    again = _manifest_loggers(run_dir)
    assert again["wandb"].pop("dir") != first["wandb"].pop("dir")  # offline: one per process
    assert again == first
    rows = read_metrics(run_dir / "metrics.csv")
    assert max(r["step"] for r in rows) == 18
    expected = {k: v for k, v in csv_values(rows).items() if k[0].split("/")[1] in EXACT}

    def check(values, name):
        values = {k: v for k, v in values.items() if k[0].split("/")[1] in EXACT}
        assert set(values) == set(expected), name
        for key, value in expected.items():
            assert values[key] == [pytest.approx(value, abs=1e-6, rel=0)], (name, key)

    check(tensorboard_values(run_dir / "tensorboard")[0], "tensorboard")
    run, values = _mlflow_values(_mlflow_client(), first["mlflow"]["run_id"])
    assert run.info.status == "FINISHED"
    check(values, "mlflow")
    files = sorted((offline_backends / "wandb_dir").rglob(f"run-{first['wandb']['id']}.wandb"))
    assert len(files) == 2  # W&B offline: one folder per process, the same run id
    check(wandb_history(files)[0], "wandb")


def test_an_mlflow_server_that_is_down_warns_once_and_training_goes_on(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    logger = MLflowLogger(tracking_uri="http://127.0.0.1:9")  # discard port: refused
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer = train(tmp_path / "run", callbacks=[logger])
    failed = [w for w in caught if issubclass(w.category, LoggerFailedWarning)]
    assert len(failed) == 1
    assert "mlflow" in str(failed[0].message)
    assert trainer.status == "finished" and trainer.global_step == 12
    assert not logger.enabled
    train(tmp_path / "reference")
    assert _exact(read_metrics(tmp_path / "run" / "metrics.csv")) == _exact(
        read_metrics(tmp_path / "reference" / "metrics.csv")
    )
    assert "loggers" not in load_manifest(tmp_path / "run" / "manifest.json").extra


def test_a_full_disk_under_tensorboard_warns_once_and_the_csv_stays_whole(tmp_path, monkeypatch):
    from torch.utils.tensorboard import SummaryWriter

    calls = {"n": 0}
    original = SummaryWriter.add_scalar

    def add_scalar(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 20:  # a few rows in, the disk fills up
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SummaryWriter, "add_scalar", add_scalar)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer = train(tmp_path / "run", loggers=["csv", "tensorboard", "wandb"])
    failed = [w for w in caught if issubclass(w.category, LoggerFailedWarning)]
    assert [str(w.message).split(" logger")[0] for w in failed] == ["the tensorboard"]
    assert "No space left on device" in str(failed[0].message)
    assert trainer.global_step == 12 and trainer.status == "finished"
    rows = read_metrics(tmp_path / "run" / "metrics.csv")
    assert len(rows) == 10 and max(r["step"] for r in rows) == 12
    train(tmp_path / "reference")
    assert _exact(rows) == _exact(read_metrics(tmp_path / "reference" / "metrics.csv"))
    assert "the tensorboard logger failed" in (tmp_path / "run" / "logs" / "train.log").read_text()


def _exact(rows):
    return [{k: r[k] for k in ("step", "split", *EXACT)} for r in rows]


def test_only_rank_zero_logs(tmp_path):
    class NotRankZero:
        is_rank_zero = False

    for kind in (TensorBoardLogger, MLflowLogger, WandbLogger):
        logger = kind()
        logger.on_train_start(NotRankZero())  # type: ignore[arg-type]
        assert not logger.enabled and logger.destination == {}
        logger.log_row({"step": 1, "split": "train", "loss": 1.0})
        logger.on_train_end(NotRankZero())  # type: ignore[arg-type]


def test_loggers_keyword_and_callbacks_do_not_double(tmp_path):
    log_dir = tmp_path / "elsewhere"
    trainer = train(
        tmp_path / "run",
        loggers=["csv", "tensorboard"],
        callbacks=[TensorBoardLogger(log_dir=log_dir)],
    )
    assert [type(cb).__name__ for cb in trainer.callbacks].count("TensorBoardLogger") == 1
    assert _manifest_loggers(tmp_path / "run") == {"tensorboard": {"log_dir": str(log_dir)}}
    assert not (tmp_path / "run" / "tensorboard").exists()
    assert tensorboard_values(log_dir)[1]["training.loggers"] == json.dumps(["csv", "tensorboard"])


def test_a_relative_mlflow_store_is_recorded_as_an_absolute_uri(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "file:./mlruns")
    train(tmp_path / "run", loggers=["csv", "mlflow"])
    where = _manifest_loggers(tmp_path / "run")["mlflow"]
    assert where["tracking_uri"] == (tmp_path / "mlruns").resolve().as_uri()
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path / "run")  # elsewhere: the recorded store still opens
    run = MlflowClient(where["tracking_uri"]).get_run(where["run_id"])
    assert run.info.run_name == "run" and run.info.status == "FINISHED"
