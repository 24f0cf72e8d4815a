"""Run folders: unique, time-sortable run ids and the fixed layout of a run.

A run id looks like ``20261127-071502-123456-ab12cd`` (UTC date, time,
microseconds, random hex), optionally followed by ``-<name>``. Ids sort by
creation time. Folders are created with an exclusive :func:`os.mkdir`; on a
collision a new id is drawn, so concurrent processes never share a folder.
"""

from __future__ import annotations

import os
import re
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

__all__ = [
    "ARTIFACTS_DIR",
    "CHECKPOINTS_DIR",
    "CONFIG_FILE",
    "LOGS_DIR",
    "LOSS_PLOT_FILE",
    "MANIFEST_FILE",
    "METRICS_FILE",
    "TOKENIZER_FILE",
    "RunPathFactory",
    "RunPaths",
    "make_run_id",
    "validate_run_id",
]

LOGS_DIR = "logs"
CHECKPOINTS_DIR = "checkpoints"
ARTIFACTS_DIR = "artifacts"
MANIFEST_FILE = "manifest.json"
METRICS_FILE = "metrics.csv"
CONFIG_FILE = "config.yaml"
TOKENIZER_FILE = "tokenizer.json"
"""The run's tokenizer, in the artifacts folder."""
LOSS_PLOT_FILE = "loss.png"
"""The loss and learning-rate plot, in the artifacts folder."""

_ID_RE = re.compile(r"^\d{8}-\d{6}-\d{6}-[0-9a-f]{6}(-[A-Za-z0-9][A-Za-z0-9._-]{0,63})?\Z")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
_MAX_ATTEMPTS = 100
_clock_lock = threading.Lock()
_last_stamp: list[datetime] = [datetime.min.replace(tzinfo=timezone.utc)]


def make_run_id(name: str | None = None) -> str:
    """A fresh run id: UTC timestamp (strictly increasing in this process) + random hex."""
    if name is not None and not _NAME_RE.match(name):
        raise ValueError(
            f"run name {name!r} is invalid: use 1-64 characters from letters, digits, '.', '_'"
            " and '-', starting with a letter or digit"
        )
    with _clock_lock:
        now = datetime.now(timezone.utc)
        if now <= _last_stamp[0]:
            now = _last_stamp[0] + timedelta(microseconds=1)
        _last_stamp[0] = now
    run_id = f"{now:%Y%m%d-%H%M%S-%f}-{secrets.token_hex(3)}"
    return run_id if name is None else f"{run_id}-{name}"


def validate_run_id(run_id: str) -> str:
    """Return ``run_id`` if it has the run-id shape, else raise ``ValueError``."""
    if not isinstance(run_id, str) or not _ID_RE.match(run_id):
        raise ValueError(
            f"run id {run_id!r} is invalid: expected 'YYYYMMDD-HHMMSS-ffffff-xxxxxx[-name]'"
        )
    return run_id


@dataclass(frozen=True)
class RunPaths:
    """The paths of one run folder (``run_dir``) under ``root``."""

    run_id: str
    root: Path
    run_dir: Path
    logs_dir: Path
    checkpoints_dir: Path
    artifacts_dir: Path
    manifest_path: Path
    metrics_path: Path
    config_path: Path

    @classmethod
    def for_run_dir(cls, run_dir: str | os.PathLike[str]) -> RunPaths:
        """Compute the layout of ``run_dir`` without touching the disk."""
        run_dir = Path(run_dir)
        return cls(
            run_id=run_dir.name,
            root=run_dir.parent,
            run_dir=run_dir,
            logs_dir=run_dir / LOGS_DIR,
            checkpoints_dir=run_dir / CHECKPOINTS_DIR,
            artifacts_dir=run_dir / ARTIFACTS_DIR,
            manifest_path=run_dir / MANIFEST_FILE,
            metrics_path=run_dir / METRICS_FILE,
            config_path=run_dir / CONFIG_FILE,
        )

    @property
    def tokenizer_path(self) -> Path:
        """``artifacts/tokenizer.json``: the tokenizer the run trained with."""
        return self.artifacts_dir / TOKENIZER_FILE

    @property
    def loss_plot_path(self) -> Path:
        """``artifacts/loss.png``: the default output of ``hyso plot``."""
        return self.artifacts_dir / LOSS_PLOT_FILE

    @classmethod
    def open(cls, run_dir: str | os.PathLike[str]) -> RunPaths:
        """Reopen an existing run folder; missing sub-folders are recreated."""
        path = Path(run_dir)
        if not path.is_dir():
            raise FileNotFoundError(f"run folder {str(path)!r} does not exist")
        paths = cls.for_run_dir(path.resolve())
        paths.ensure_dirs()
        return paths

    def ensure_dirs(self) -> RunPaths:
        """Create the sub-folders (logs, checkpoints, artifacts) if missing."""
        for folder in (self.logs_dir, self.checkpoints_dir, self.artifacts_dir):
            folder.mkdir(parents=True, exist_ok=True)
        return self


class RunPathFactory:
    """Creates run folders under one root."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().resolve()

    @classmethod
    def from_root(cls, root: str | os.PathLike[str]) -> RunPathFactory:
        """A factory for runs under ``root`` (created on the first :meth:`create`)."""
        return cls(root)

    def create(self, name: str | None = None) -> RunPaths:
        """Create a new, uniquely named run folder and its sub-folders."""
        self.root.mkdir(parents=True, exist_ok=True)
        for _ in range(_MAX_ATTEMPTS):
            run_dir = self.root / make_run_id(name)
            try:
                os.mkdir(run_dir)  # exclusive: fails if another process took the name
            except FileExistsError:
                continue
            return RunPaths.for_run_dir(run_dir).ensure_dirs()
        raise RuntimeError(f"could not create a unique run folder in {str(self.root)!r}")

    def path_for(self, run_id: str) -> RunPaths:
        """The paths of run ``run_id`` under this root; creates nothing."""
        return RunPaths.for_run_dir(self.root / validate_run_id(run_id))

    def list_runs(self) -> list[RunPaths]:
        """Existing run folders under the root, oldest first."""
        if not self.root.is_dir():
            return []
        runs = [p for p in self.root.iterdir() if p.is_dir() and _ID_RE.match(p.name)]
        return [RunPaths.for_run_dir(p) for p in sorted(runs, key=lambda p: p.name)]
