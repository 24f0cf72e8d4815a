"""MLflow: one MLflow run per hyso run, through ``MlflowClient`` (no global state).

The tracking store is ``tracking_uri``, else MLflow's own choice (``MLFLOW_TRACKING_URI``,
else its default); the experiment is ``experiment``, else ``MLFLOW_EXPERIMENT_NAME``,
else ``hyso``. The config goes in as params (dotted keys), the hyso run id as the run
name and the tag ``hyso.run_id``. A resumed run reopens the MLflow run by its id.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit, urlunsplit

from hyso.core.train.loggers.base import TrackingLogger, flatten_config, require_module

if TYPE_CHECKING:
    from hyso.core.train.trainer import Trainer

__all__ = ["MLflowLogger"]

_MAX_PARAM_CHARS = 6000  # MLflow's limit on a param value
_BATCH = 100  # MLflow takes at most 100 params per log_batch call
_STATUS = {"finished": "FINISHED", "failed": "FAILED", "interrupted": "KILLED"}


class MLflowLogger(TrackingLogger):
    """Mirror metrics.csv into an MLflow run (see the module docstring).

    Needs ``mlflow-skinny`` or ``mlflow`` (``pip install "hyso-train[mlflow]"``); a
    ``sqlite:`` store needs the full ``mlflow`` package.
    """

    name = "mlflow"

    def __init__(self, tracking_uri: str | None = None, experiment: str | None = None) -> None:
        super().__init__()
        require_module("mlflow", self.name, "mlflow")
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self._client: Any = None
        self.run_id: str | None = None

    def _open(
        self, trainer: Trainer, run_id: str | None, resume: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        import mlflow
        from mlflow.tracking import MlflowClient

        uri = self.tracking_uri or (resume or {}).get("tracking_uri") or mlflow.get_tracking_uri()
        uri = _absolute(uri)  # a resumed run may start in another folder
        client = MlflowClient(tracking_uri=uri)
        if resume and resume.get("run_id"):
            run = client.get_run(resume["run_id"])
            client.update_run(run.info.run_id, status="RUNNING")
        else:
            name = self.experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME") or "hyso"
            found = client.get_experiment_by_name(name)
            experiment_id = found.experiment_id if found else client.create_experiment(name)
            tags = {"hyso.run_id": run_id} if run_id else {}
            if trainer.run_paths is not None:
                tags["hyso.run_dir"] = str(trainer.run_paths.run_dir)
            run = client.create_run(experiment_id, run_name=run_id, tags=tags)
        self._client, self.run_id = client, run.info.run_id
        return {
            "tracking_uri": _without_password(uri),
            "experiment_id": run.info.experiment_id,
            "run_id": run.info.run_id,
        }

    def _log_config(self, config: Mapping[str, Any], run_id: str | None, resumed: bool) -> None:
        if resumed:  # MLflow refuses to change a param; the reopened run has them
            return
        from mlflow.entities import Param

        flat = flatten_config(config)
        params = [Param(k, str(v)[:_MAX_PARAM_CHARS]) for k, v in flat.items()]
        for i in range(0, len(params), _BATCH):
            self._client.log_batch(self.run_id, params=params[i : i + _BATCH])

    def _log_row(self, step: int, values: Mapping[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, step) for k, v in values.items()]
        self._client.log_batch(self.run_id, metrics=metrics)

    def _close(self, status: str) -> None:
        client, self._client = self._client, None
        if client is not None and self.run_id is not None:
            client.set_terminated(self.run_id, status=_STATUS.get(status, "FAILED"))


def _absolute(uri: str) -> str:
    """A local store's URI with its path made absolute (``file:./mlruns``,
    ``sqlite:///mlflow.db``, a plain folder); any other URI unchanged."""
    parts = urlsplit(uri)
    if uri in ("databricks", "databricks-uc"):  # names, not folders
        return uri
    if parts.scheme in ("", "file") and not parts.netloc:
        path = Path(unquote(parts.path) if parts.scheme else uri)
        return path.resolve().as_uri()
    if (
        parts.scheme == "sqlite"
        and uri.startswith("sqlite:///")
        and not uri.startswith("sqlite:////")
    ):
        return "sqlite:///" + str(Path(uri[len("sqlite:///") :]).resolve())
    return uri


def _without_password(uri: str) -> str:
    """``uri`` with any ``user:password@`` left out (it is written to the manifest)."""
    parts = urlsplit(uri)
    if parts.username is None and parts.password is None:
        return uri
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
