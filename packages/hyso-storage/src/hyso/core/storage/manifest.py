"""The run manifest: the identity card of a training run, stored as JSON."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .atomic import atomic_write_json
from .environment import collect_environment
from .jsonable import to_jsonable

__all__ = ["MANIFEST_FORMAT_VERSION", "Manifest", "load_manifest", "save_manifest"]

MANIFEST_FORMAT_VERSION = 1
STATUSES = ("running", "finished", "failed", "interrupted")


def utc_now_iso() -> str:
    """The current UTC time as ISO-8601 with microseconds and ``+00:00``."""
    return datetime.now(timezone.utc).isoformat()


@dataclass
class Manifest:
    """Model, training and data info, hyperparameters, environment and outcome of a run."""

    run_id: str
    created_at: str
    status: str = "running"
    pid: int = 0
    hostname: str = ""
    model: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    finished_at: str | None = None
    format_version: int = MANIFEST_FORMAT_VERSION

    @classmethod
    def new(
        cls,
        *,
        run_id: str,
        model: Any = None,
        training: Any = None,
        data: Any = None,
        hyperparameters: Any = None,
        workdir: str | os.PathLike[str] | None = None,
        **extra: Any,
    ) -> Manifest:
        """A manifest for a run starting now, in this process, on this machine.

        ``model``, ``training`` and ``data`` may be mappings, dataclasses or objects
        with ``to_dict()``. ``hyperparameters`` defaults to the scalar settings of
        ``model`` and ``training`` under dotted keys (``training.lr``). Extra keyword
        arguments are kept in ``extra``. Git state is read from ``workdir`` (default:
        the current folder).
        """
        if not isinstance(run_id, str) or not run_id:
            raise ValueError(f"run_id must be a non-empty string, got {run_id!r}")
        model_d = _section(model, "model")
        training_d = _section(training, "training")
        if hyperparameters is None:
            hparams = {**_flatten(model_d, "model"), **_flatten(training_d, "training")}
        else:
            hparams = _section(hyperparameters, "hyperparameters")
        environment = collect_environment(workdir)
        return cls(
            run_id=run_id,
            created_at=utc_now_iso(),
            status="running",
            pid=os.getpid(),
            hostname=socket.gethostname(),
            model=model_d,
            training=training_d,
            data=_section(data, "data"),
            hyperparameters=hparams,
            environment=environment,
            extra=_section(extra, "extra"),
        )

    def mark(self, status: str, results: Mapping[str, Any] | None = None) -> Manifest:
        """Set ``status`` (one of ``STATUSES``), merge ``results`` and stamp the end time."""
        if status not in STATUSES:
            raise ValueError(f"manifest status {status!r} is invalid: use one of {STATUSES}")
        self.status = status
        if results is not None:
            self.results.update(_section(results, "results"))
        self.finished_at = None if status == "running" else utc_now_iso()
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (format_version first)."""
        data = dataclasses.asdict(self)
        return {"format_version": data.pop("format_version"), **to_jsonable(data)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "manifest") -> Manifest:
        """Rebuild a manifest from :meth:`to_dict` output; strict about keys and version."""
        if not isinstance(data, Mapping):
            raise ValueError(f"{source}: expected a JSON object, got {type(data).__name__}")
        version = data.get("format_version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise ValueError(f"{source}: missing or non-integer 'format_version' ({version!r})")
        if version > MANIFEST_FORMAT_VERSION or version < 1:
            raise ValueError(
                f"{source}: format_version {version} is not supported "
                f"(this hyso-storage reads 1..{MANIFEST_FORMAT_VERSION})"
            )
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"{source}: unknown manifest keys {unknown}")
        missing = [k for k in ("run_id", "created_at") if k not in data]
        if missing:
            raise ValueError(f"{source}: missing manifest keys {missing}")
        for key in (
            "model",
            "training",
            "data",
            "hyperparameters",
            "environment",
            "results",
            "extra",
        ):
            if key in data and not isinstance(data[key], Mapping):
                raise ValueError(f"{source}: key {key!r} must be an object")
        return cls(**{k: data[k] for k in names if k in data})


def save_manifest(path: str | os.PathLike[str], manifest: Manifest) -> Path:
    """Write ``manifest`` as JSON to ``path`` atomically; returns the path."""
    if not isinstance(manifest, Manifest):
        raise TypeError(f"save_manifest expects a Manifest, got {type(manifest).__name__}")
    return atomic_write_json(path, manifest.to_dict())


def load_manifest(path: str | os.PathLike[str]) -> Manifest:
    """Read a manifest written by :func:`save_manifest`."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"manifest {str(path)!r} is not valid JSON: {exc}") from exc
    return Manifest.from_dict(data, source=f"manifest {str(path)!r}")


def _section(obj: Any, where: str) -> dict[str, Any]:
    if obj is None:
        return {}
    value = to_jsonable(obj, where=where)
    if not isinstance(value, dict):
        raise ValueError(
            f"{where}: expected a mapping, dataclass or object with to_dict(), "
            f"got {type(obj).__name__}"
        )
    return value


def _flatten(section: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in section.items():
        name = f"{prefix}.{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, name))
        elif not isinstance(value, list):
            flat[name] = value
    return flat
