"""training.loggers and the shared logger machinery, without any tracking library:
the setting is checked, a missing library is a clear error, and a logger mirrors the
rows of metrics.csv, skips what a killed run sent, and fails softly."""

from __future__ import annotations

import sys
import warnings

import pytest
import torch
from train_helpers import TinyLM, loader, token_data

from hyso.core.storage import RunPaths, load_manifest
from hyso.core.train import Callback, Trainer, TrainingConfigError, read_metrics, resolve_settings
from hyso.core.train.loggers import LoggerFailedWarning, TrackingLogger


class MemoryLogger(TrackingLogger):
    """A backend that keeps what it is sent; ``fail_after`` rows, it raises."""

    name = "memory"

    def __init__(self, fail_after: int | None = None) -> None:
        super().__init__()
        self.rows: list[tuple[int, dict]] = []
        self.config = None
        self.opened_with = "unset"
        self.closed = None
        self.fail_after = fail_after

    def _open(self, trainer, run_id, resume):
        self.opened_with = resume
        return {"where": f"memory:{run_id}"}

    def _log_config(self, config, run_id, resumed):
        self.config = (config, run_id, resumed)

    def _log_row(self, step, values):
        if self.fail_after is not None and len(self.rows) >= self.fail_after:
            raise OSError(28, "No space left on device")
        self.rows.append((step, dict(values)))

    def _close(self, status):
        self.closed = status


class _Stop(Exception):
    pass


class _StopAt(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_start(self, trainer) -> None:
        if trainer.global_step + 1 == self.step:
            raise _Stop


def _fit(run_dir, logger, *, stop_at=None, resume=None):
    torch.manual_seed(0)
    model = TinyLM()
    callbacks = [logger] + ([_StopAt(stop_at)] if stop_at else [])
    trainer = Trainer(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        run_paths=RunPaths.for_run_dir(run_dir).ensure_dirs(),
        callbacks=callbacks,
        log_every=2,
        eval_every=3,
        save_every=3,
        progress_bar=False,
        seed=1,
    )
    trainer.fit(loader(token_data(n=48)), loader(token_data(n=16, seed=2)), epochs=2, resume=resume)
    return trainer


def _as_rows(csv_rows):
    return [
        (r["step"], {f"{r['split']}/{c}": float(v) for c, v in r.items()
                     if c not in ("step", "split") and v is not None})
        for r in csv_rows
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (["tensorboard"], "including 'csv'"),
        (["csv", "tensorbord"], "did you mean 'tensorboard'"),
        (["csv", "csv"], "distinct"),
        ("csv", "a list"),
        (["csv", 3], "a list"),
    ],
)
def test_bad_loggers_setting_names_the_key(value, fragment):
    with pytest.raises(TrainingConfigError, match=r"training\.loggers") as err:
        resolve_settings({"training": {"loggers": value}})
    assert fragment in str(err.value)


def test_loggers_setting_default_and_round_trip():
    assert resolve_settings().loggers == ("csv",)
    s = resolve_settings(loggers=["csv", "mlflow", "wandb"])
    assert s.loggers == ("csv", "mlflow", "wandb")
    assert s.to_dict()["loggers"] == ["csv", "mlflow", "wandb"]


@pytest.mark.parametrize(
    ("name", "module"), [("tensorboard", "torch.utils.tensorboard"), ("mlflow", "mlflow"),
                         ("wandb", "wandb")]
)  # fmt: skip
def test_a_missing_library_is_an_error_naming_the_extra(name, module, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    model = TinyLM()
    with pytest.raises(TrainingConfigError, match=rf"hyso-train\[{name}\]"):
        Trainer(
            model,
            torch.optim.SGD(model.parameters(), lr=0.1),
            run_paths=RunPaths.for_run_dir(tmp_path / "run").ensure_dirs(),
            loggers=["csv", name],
        )


def test_a_logger_receives_every_metrics_csv_row_the_config_and_run_id(tmp_path):
    logger = MemoryLogger()
    trainer = _fit(tmp_path / "run", logger)
    csv_rows = read_metrics(tmp_path / "run" / "metrics.csv")
    assert {r["split"] for r in csv_rows} == {"train", "val"}
    assert logger.rows == _as_rows(csv_rows)
    config, run_id, resumed = logger.config
    assert (run_id, resumed) == ("run", False)
    assert config["training"]["log_every"] == 2 and "lr" not in config["training"]
    assert logger.opened_with is None and logger.closed == "finished"
    manifest = load_manifest(tmp_path / "run" / "manifest.json")
    assert manifest.extra["loggers"] == {"memory": {"where": "memory:run"}}
    assert trainer.status == "finished"


def test_a_resumed_run_reopens_and_skips_the_rows_already_sent(tmp_path):
    first = MemoryLogger()
    with pytest.raises(_Stop):
        _fit(tmp_path / "run", first, stop_at=11)  # checkpoint at 9, rows to step 10
    assert max(step for step, _ in first.rows) == 10 and first.closed == "failed"
    second = MemoryLogger()
    _fit(tmp_path / "run", second, resume="latest")
    assert second.opened_with == {"where": "memory:run"}
    assert second.config[2] is True
    steps = [(s, sorted(v)[0].split("/")[0]) for s, v in first.rows + second.rows]
    assert len(steps) == len(set(steps))  # no (step, split) twice
    csv_rows = read_metrics(tmp_path / "run" / "metrics.csv")
    assert sorted(steps) == sorted((r["step"], r["split"]) for r in csv_rows)


def test_a_failing_logger_warns_once_and_the_csv_goes_on(tmp_path):
    logger = MemoryLogger(fail_after=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer = _fit(tmp_path / "run", logger)
    failed = [w for w in caught if issubclass(w.category, LoggerFailedWarning)]
    assert len(failed) == 1
    assert "the memory logger failed" in str(failed[0].message)
    assert "No space left on device" in str(failed[0].message)
    assert len(logger.rows) == 3 and logger.closed == "failed"
    assert trainer.status == "finished"
    assert _as_rows(read_metrics(tmp_path / "run" / "metrics.csv"))[:3] == logger.rows
    assert len(read_metrics(tmp_path / "run" / "metrics.csv")) > 3


def test_without_a_run_folder_a_logger_warns_and_training_goes_on():
    logger = MemoryLogger()
    model = TinyLM()
    trainer = Trainer(
        model, torch.optim.SGD(model.parameters(), lr=0.1), callbacks=[logger], progress_bar=False
    )
    with pytest.warns(LoggerFailedWarning, match="no metrics.csv logger"):
        trainer.fit(loader(token_data(n=16)), epochs=1)
    assert trainer.status == "finished" and logger.rows == []


def test_a_second_fit_continues_the_same_logger_without_repeating_rows(tmp_path):
    logger = MemoryLogger()
    trainer = _fit(tmp_path / "run", logger)
    sent = len(logger.rows)
    trainer.fit(loader(token_data(n=48)), loader(token_data(n=16, seed=2)), epochs=3)
    steps = [(s, sorted(v)[0].split("/")[0]) for s, v in logger.rows]
    assert len(steps) == len(set(steps)) and len(logger.rows) > sent
    assert sorted(steps) == sorted(
        (r["step"], r["split"]) for r in read_metrics(tmp_path / "run" / "metrics.csv")
    )
