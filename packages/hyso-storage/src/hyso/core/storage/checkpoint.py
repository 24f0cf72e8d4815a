"""Checkpoints that survive a crash: save, keep the recent and the best, load safely.

Each save writes ``ckpt-<seq>-e<epoch>-s<step>.pt`` (the payload) and then its
record ``<payload>.json`` (SHA-256, size, epoch, step, metrics), both atomically.
The record is the commit point: a payload without one is an unfinished save and
is removed by the next save. ``index.json`` summarises the kept checkpoints for
readers; the records are the source of truth, so a lost index costs nothing.
:meth:`CheckpointManager.save_sharded` writes ``ckpt-<seq>-e<epoch>-s<step>.dcp``,
a folder in which every process writes its own shard (see :mod:`.sharded`), under
the same record, rotation and ``latest``/``best`` rules.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import threading
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from .atomic import atomic_write_json, clean_stale_temps
from .checkpoint_file import (
    CHECKPOINT_FORMAT_VERSION,
    check_safe_payload,
    load_verified,
    read_record,
    record_path,
    write_payload,
    write_record,
)
from .errors import CheckpointCorruptError, CheckpointError
from .jsonable import to_jsonable
from .lock import FolderLock
from .rng import capture_rng_state, restore_rng_state
from .sharded import (
    SHARDED_SUFFIX,
    STAGING_SUFFIX,
    broadcast,
    files_digest,
    is_sharded_path,
    load_extra,
    load_sharded_states,
    rank_and_world,
    remove_tree,
    staging_path,
    write_sharded,
)
from .state import apply_state, snapshot_to_cpu, unwrap_model

__all__ = [
    "INDEX_FORMAT_VERSION",
    "Checkpoint",
    "CheckpointConfig",
    "CheckpointInfo",
    "CheckpointManager",
]

INDEX_FORMAT_VERSION = 1
INDEX_NAME = "index.json"
LOCK_NAME = ".writer.lock"
_NAME_RE = re.compile(
    r"^(?P<prefix>[A-Za-z0-9_]+)-(?P<seq>\d{6,})-e(?P<epoch>\d+)-s(?P<step>\d+)\.(?:pt|dcp)\Z"
)
_PREFIX_RE = re.compile(r"^[A-Za-z0-9_]+\Z")
_log = logging.getLogger("hyso.core.storage.checkpoint")


@dataclass
class CheckpointConfig:
    """Where and how many checkpoints to keep.

    ``max_to_keep`` recent checkpoints are kept, plus the best by
    ``best_metric_name`` (``best_mode`` "min" or "max") when one is named.
    ``prefix`` starts the file names; ``save_rng_state`` stores the RNG states;
    ``keep_staging_buffers`` keeps the CPU copy made by a ``blocking=False`` save
    (pinned memory for CUDA tensors) to reuse on the next one, trading that much
    host memory for a shorter wait.
    """

    directory: Path
    max_to_keep: int = 3
    best_metric_name: str | None = None
    best_mode: str = "min"
    prefix: str = "ckpt"
    save_rng_state: bool = True
    keep_staging_buffers: bool = True

    def __post_init__(self) -> None:
        self.directory = Path(self.directory)
        if self.best_mode not in ("min", "max"):
            raise ValueError(f"best_mode must be 'min' or 'max', got {self.best_mode!r}")
        if isinstance(self.max_to_keep, bool) or not isinstance(self.max_to_keep, int):
            raise ValueError(f"max_to_keep must be an int, got {self.max_to_keep!r}")
        if self.max_to_keep < 1:
            raise ValueError(f"max_to_keep must be >= 1, got {self.max_to_keep}")
        if not _PREFIX_RE.match(self.prefix):
            raise ValueError(f"prefix {self.prefix!r} is invalid: use letters, digits and '_'")

    @classmethod
    def from_dir(cls, *, directory: str | os.PathLike[str], **kwargs: Any) -> CheckpointConfig:
        """A config for ``directory`` with the other settings as keywords."""
        return cls(directory=Path(directory), **kwargs)


@dataclass(frozen=True)
class CheckpointInfo:
    """What the record of one kept checkpoint says."""

    path: Path
    seq: int
    epoch: int
    step: int | None
    metrics: dict[str, Any]
    created_at: str
    sha256: str
    size: int
    is_best: bool = False


@dataclass
class Checkpoint:
    """A loaded, verified checkpoint."""

    path: Path
    epoch: int
    step: int | None
    metrics: dict[str, Any]
    extra: dict[str, Any]
    model_state: dict[str, Any]
    optimizer_state: dict[str, Any] | None = None
    scheduler_state: dict[str, Any] | None = None
    rng_state: dict[str, Any] | None = None
    created_at: str = ""
    sha256: str = ""
    format_version: int = CHECKPOINT_FORMAT_VERSION
    payload: dict[str, Any] = field(default_factory=dict, repr=False)
    # A sharded folder: model and optimizer states are read by restore_objects.
    sharded: bool = False


class CheckpointManager:
    """Saves, rotates and loads the checkpoints of one folder (one writer per folder).

    The first save takes the folder's lock file (``.writer.lock``, naming this
    process): a second process saving into the same folder gets a
    ``FolderLockedError`` instead of deleting the first one's files. The lock is
    released by :meth:`close` (or when the manager is garbage-collected, or the
    process ends); a lock left by a dead process is taken over. Reading needs no lock.
    """

    def __init__(self, config: CheckpointConfig) -> None:
        if not isinstance(config, CheckpointConfig):
            raise TypeError(f"expected a CheckpointConfig, got {type(config).__name__}")
        self.config = config
        self.directory = config.directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._next_seq: int | None = None
        self._staging: Any = None  # CPU copy of the last background save, reused
        self._writer_lock = FolderLock(self.directory / LOCK_NAME, what="checkpoint folder")
        weakref.finalize(self, self._writer_lock.release)

    # -- saving -------------------------------------------------------------------------

    def save(
        self,
        epoch: int,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer | None = None,
        scheduler: Any = None,
        *,
        step: int | None = None,
        metrics: Mapping[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
        blocking: bool = True,
    ) -> Path:
        """Save a checkpoint; returns its path.

        When a blocking save returns, the checkpoint is durable on disk; removing
        checkpoints beyond ``max_to_keep`` then happens on a background thread.
        With ``blocking=False`` the states are copied to CPU memory here and the
        file is written on that thread too. :meth:`wait` (and every later call of
        this manager) waits for that work and re-raises its error, if any.
        """
        self.wait()
        self._writer_lock.acquire()
        payload = self._payload(epoch, step, metrics, extra, scheduler)
        payload["model"] = unwrap_model(model).state_dict()
        payload["optimizer"] = optimizer.state_dict() if optimizer is not None else None
        check_safe_payload(payload["model"], "model state")
        check_safe_payload(payload["optimizer"], "optimizer state")
        path = self._allocate_path(epoch, step)
        if blocking:
            self._commit(path, payload)
            self._in_background(self._rotate)  # deleting old files need not hold the caller
            return path
        staging = self._staging if self.config.keep_staging_buffers else None
        snapshot = snapshot_to_cpu(payload, reuse=staging)
        self._staging = snapshot if self.config.keep_staging_buffers else None
        self._in_background(lambda: (self._commit(path, snapshot), self._rotate()))
        return path

    def save_sharded(
        self,
        epoch: int,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer | None = None,
        scheduler: Any = None,
        *,
        step: int | None = None,
        metrics: Mapping[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Path:
        """Save a sharded checkpoint; call it on every process (a collective).

        Each process writes its own shard of the model and optimizer states (sharded
        by FSDP or whole); the process of rank 0 writes the rest (scheduler, RNG,
        ``extra``, from its own objects) and, once every shard is on disk, publishes
        the folder and writes the record. Returns the folder's path on every rank.
        The folder must be on storage every process sees.
        """
        rank, _ = rank_and_world()
        payload: dict[str, Any] | None = None
        chosen: str | None = None
        error: BaseException | None = None
        if rank == 0:
            try:
                self.wait()
                self._writer_lock.acquire()
                payload = self._payload(epoch, step, metrics, extra, scheduler)
                path = self._allocate_path(epoch, step, SHARDED_SUFFIX)
                self.directory.mkdir(parents=True, exist_ok=True)
                self._clean_unfinished()
                staging_path(path).mkdir()
                chosen = str(path)
            except BaseException as exc:
                error = exc
        chosen = broadcast(chosen)  # None tells the other ranks that rank 0 failed
        if error is not None:
            raise error
        if chosen is None:
            raise CheckpointError(f"rank 0 could not start a sharded save in {self.directory}")
        path = Path(chosen)
        files = write_sharded(path, model, optimizer, payload)
        if payload is not None and files is not None:
            digest, size = files_digest(files)
            record = self._record(path, payload, digest, size)
            write_record(path, {**record, "kind": "sharded", "files": files})  # the commit
            self._in_background(self._rotate)
        return path

    def wait(self) -> None:
        """Wait for a pending background save; re-raise its error."""
        thread = self._thread
        if thread is not None:
            thread.join()
            self._thread = None
        error, self._error = self._error, None
        if error is not None:
            raise CheckpointError(f"background checkpoint save failed: {error}") from error

    def close(self) -> None:
        """Wait for pending work, then release the folder's writer lock."""
        try:
            self.wait()
        finally:
            self._writer_lock.release()

    # -- loading ------------------------------------------------------------------------

    def list(self) -> list[CheckpointInfo]:
        """Kept checkpoints (those with a readable record), oldest first."""
        self.wait()
        infos = self._scan()
        best = self._best(infos + self._damaged_from_index(infos))
        return [_replace_best(info, best is not None and info.seq == best.seq) for info in infos]

    @property
    def best_path(self) -> Path | None:
        """The path of the best checkpoint, or ``None`` (no metric named or none saved).

        A checkpoint listed in ``index.json`` whose record has since been damaged
        still counts, so a damaged best is reported, never replaced silently.
        """
        self.wait()
        infos = self._scan()
        best = self._best(infos + self._damaged_from_index(infos))
        return best.path if best is not None else None

    @property
    def latest_path(self) -> Path | None:
        """The path of the most recent checkpoint with a record, or ``None``."""
        infos = self.list()
        return infos[-1].path if infos else None

    def load_latest(self, map_location: Any = "cpu") -> Checkpoint | None:
        """The newest checkpoint that verifies; damaged ones are skipped with a warning."""
        for info in reversed(self.list()):
            try:
                return self.load(info.path, map_location=map_location)
            except CheckpointCorruptError as exc:
                _log.warning("skipping damaged checkpoint %s: %s", info.path, exc)
        return None

    def load_best(self, map_location: Any = "cpu") -> Checkpoint | None:
        """The best checkpoint; ``CheckpointCorruptError`` if it is damaged."""
        path = self.best_path
        return None if path is None else self.load(path, map_location=map_location)

    def load(self, path: str | os.PathLike[str], map_location: Any = "cpu") -> Checkpoint:
        """Verify one checkpoint file against its record, then load it (weights only).

        A sharded folder is verified whole; its model and optimizer states are read
        later, by :meth:`restore_objects`, into the objects they are meant for.
        """
        path = Path(path)
        try:
            record = read_record(record_path(path))
        except FileNotFoundError as exc:
            raise CheckpointCorruptError(
                f"checkpoint {str(path)!r} has no record {record_path(path).name!r} "
                "(an unfinished save, or not a hyso checkpoint)"
            ) from exc
        sharded = is_sharded_path(path)
        if sharded:
            payload = load_extra(path, record)
            payload["model"] = {}
        else:
            payload = load_verified(path, record, map_location=map_location)
        _check_payload_fields(path, payload)
        return Checkpoint(
            path=path,
            epoch=payload.get("epoch", 0),
            step=payload.get("step"),
            metrics=dict(payload.get("metrics") or {}),
            extra=dict(payload.get("extra") or {}),
            model_state=payload["model"],
            optimizer_state=payload.get("optimizer"),
            scheduler_state=payload.get("scheduler"),
            rng_state=payload.get("rng"),
            created_at=str(payload.get("created_at", "")),
            sha256=record["sha256"],
            payload=payload,
            sharded=sharded,
        )

    def restore_objects(
        self,
        checkpoint: Checkpoint,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer | None = None,
        scheduler: Any = None,
        restore_rng: bool = True,
        strict: bool = True,
    ) -> Checkpoint:
        """Load the states of ``checkpoint`` into the objects given, and the RNG states.

        A ``module.`` (DDP) or ``_orig_mod.`` (torch.compile) prefix is handled in
        either direction. A sharded checkpoint loads into a model sharded over any
        number of processes, or into a whole one (on every process, a collective when
        the model is sharded).
        """
        where = f"checkpoint {str(checkpoint.path)!r}"
        if checkpoint.sharded:
            try:
                load_sharded_states(checkpoint.path, unwrap_model(model), optimizer)
            except (RuntimeError, KeyError, ValueError) as exc:
                raise CheckpointError(f"{where}: states do not fit: {exc}") from exc
            apply_state(checkpoint, None, None, scheduler, where=where)
        else:
            apply_state(checkpoint, model, optimizer, scheduler, strict=strict, where=where)
        if restore_rng and checkpoint.rng_state is not None:
            restore_rng_state(checkpoint.rng_state)
        return checkpoint

    # -- internals ----------------------------------------------------------------------

    def _payload(
        self,
        epoch: int,
        step: int | None,
        metrics: Mapping[str, Any] | None,
        extra: Mapping[str, Any] | None,
        scheduler: Any,
    ) -> dict[str, Any]:
        """The checked payload of a save, model and optimizer states aside."""
        epoch = _check_count(epoch, "epoch")
        step = None if step is None else _check_count(step, "step")
        metrics_d = to_jsonable(dict(metrics or {}), where="metrics")
        if not isinstance(metrics_d, dict):
            raise ValueError("metrics must be a mapping")
        payload: dict[str, Any] = {
            "format_version": CHECKPOINT_FORMAT_VERSION,
            "epoch": epoch,
            "step": step,
            "metrics": metrics_d,
            "extra": dict(extra or {}),
            "created_at": datetime.now(timezone.utc).isoformat(),
            "torch_version": str(torch.__version__),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "rng": capture_rng_state() if self.config.save_rng_state else None,
        }
        for key, where in (
            ("extra", "extra"),
            ("scheduler", "scheduler state"),
            ("rng", "rng state"),
        ):
            check_safe_payload(payload[key], where)
        return payload

    def _allocate_path(self, epoch: int, step: int | None, suffix: str = ".pt") -> Path:
        with self._lock:
            if self._next_seq is None:
                seqs = [int(m.group("seq")) for m in self._names() if m is not None]
                self._next_seq = max(seqs, default=0) + 1
            seq = self._next_seq
            self._next_seq += 1
        name = f"{self.config.prefix}-{seq:06d}-e{epoch}-s{step if step is not None else 0}{suffix}"
        return self.directory / name

    def _in_background(self, work: Callable[[], object]) -> None:
        def run() -> None:
            try:
                work()
            except BaseException as exc:  # re-raised by wait(); logged in case none comes
                self._error = exc
                _log.error("background checkpoint work in %s failed: %s", self.directory, exc)

        self._thread = threading.Thread(target=run, name="hyso-checkpoint")
        self._thread.start()

    def _commit(self, path: Path, payload: dict[str, Any]) -> None:
        """Write the payload, then its record: once the record is durable, the save is done."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._clean_unfinished()
        digest, size = write_payload(path, payload)
        write_record(path, self._record(path, payload, digest, size))  # the commit point

    def _record(
        self, path: Path, payload: Mapping[str, Any], digest: str, size: int
    ) -> dict[str, Any]:
        match = _NAME_RE.match(path.name)
        return {
            "format_version": CHECKPOINT_FORMAT_VERSION,
            "file": path.name,
            "seq": int(match.group("seq")) if match else 0,
            "sha256": digest,
            "size": size,
            "epoch": payload["epoch"],
            "step": payload["step"],
            "metrics": payload["metrics"],
            "created_at": payload["created_at"],
        }

    def _rotate(self) -> None:
        infos = self._scan()
        damaged = self._damaged_from_index(infos)
        best = self._best(infos + damaged)
        keep = {info.seq for info in infos[-self.config.max_to_keep :]}
        if best is not None:
            keep.add(best.seq)
        kept = sorted([i for i in infos + damaged if i.seq in keep], key=lambda i: i.seq)
        self._write_index(kept, best)
        for info in infos:
            if info.seq not in keep:
                _unlink(record_path(info.path))  # uncommit first, then drop the payload
                remove_tree(info.path)

    def _write_index(self, kept: list[CheckpointInfo], best: CheckpointInfo | None) -> None:
        atomic_write_json(
            self.directory / INDEX_NAME,
            {
                "format_version": INDEX_FORMAT_VERSION,
                "updated_at": datetime.now(timezone.utc).isoformat(),
                "best_metric_name": self.config.best_metric_name,
                "best_mode": self.config.best_mode,
                "latest": kept[-1].path.name if kept else None,
                "best": best.path.name if best is not None else None,
                "checkpoints": [
                    {
                        "file": i.path.name,
                        "seq": i.seq,
                        "epoch": i.epoch,
                        "step": i.step,
                        "metrics": i.metrics,
                        "created_at": i.created_at,
                        "sha256": i.sha256,
                        "size": i.size,
                    }
                    for i in kept
                ],
            },
        )

    def _read_index(self) -> list[dict[str, Any]]:
        try:
            index = json.loads((self.directory / INDEX_NAME).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        if not isinstance(index, dict) or index.get("format_version") != INDEX_FORMAT_VERSION:
            return []
        entries = index.get("checkpoints")
        return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []

    def _damaged_from_index(self, valid: list[CheckpointInfo]) -> list[CheckpointInfo]:
        """Indexed checkpoints whose payload is there but whose record is gone or unreadable."""
        known = {info.path.name for info in valid}
        damaged = []
        for entry in self._read_index():
            name = entry.get("file")
            match = _NAME_RE.match(name) if isinstance(name, str) else None
            if match is None or name in known or not (self.directory / name).exists():
                continue
            metrics = entry.get("metrics")
            damaged.append(
                CheckpointInfo(
                    path=self.directory / name,
                    seq=int(match.group("seq")),
                    epoch=int(match.group("epoch")),
                    step=int(match.group("step")),
                    metrics=dict(metrics) if isinstance(metrics, dict) else {},
                    created_at=str(entry.get("created_at", "")),
                    sha256=str(entry.get("sha256", "")),
                    size=int(entry.get("size", 0)) if isinstance(entry.get("size"), int) else 0,
                )
            )
        return damaged

    def _clean_unfinished(self) -> None:
        """Remove temp files of dead writers and payloads whose record never landed.

        A payload listed in ``index.json`` was committed once: if its record is
        gone, that is damage to report, not an unfinished save, so it stays.
        """
        clean_stale_temps(self.directory, include_own=True)
        indexed = {e.get("file") for e in self._read_index()}
        for match in self._names():
            if match is None or match.string in indexed:
                continue
            payload = self.directory / match.string
            if not record_path(payload).exists():
                remove_tree(payload)
        for name in os.listdir(self.directory):  # shards of a sharded save that never ended
            if name.startswith(".") and name.endswith(SHARDED_SUFFIX + STAGING_SUFFIX):
                remove_tree(self.directory / name)

    def _names(self) -> list[re.Match[str] | None]:
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        return [
            m
            for m in (_NAME_RE.match(n) for n in names)
            if m is not None and m.group("prefix") == self.config.prefix
        ]

    def _scan(self) -> list[CheckpointInfo]:
        infos: list[CheckpointInfo] = []
        for match in self._names():
            if match is None:
                continue
            path = self.directory / match.string
            try:
                record = read_record(record_path(path))
            except FileNotFoundError:
                continue
            except CheckpointCorruptError as exc:
                _log.warning("ignoring checkpoint %s: %s", path, exc)
                continue
            infos.append(
                CheckpointInfo(
                    path=path,
                    seq=int(match.group("seq")),
                    epoch=int(record.get("epoch", match.group("epoch"))),
                    step=record.get("step"),
                    metrics=dict(record.get("metrics") or {}),
                    created_at=str(record.get("created_at", "")),
                    sha256=record["sha256"],
                    size=record["size"],
                )
            )
        return sorted(infos, key=lambda i: i.seq)

    def _best(self, infos: list[CheckpointInfo]) -> CheckpointInfo | None:
        name = self.config.best_metric_name
        if name is None:
            return None
        best: CheckpointInfo | None = None
        best_value = 0.0
        for info in infos:
            value = info.metrics.get(name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if not math.isfinite(value):
                continue
            better = value < best_value if self.config.best_mode == "min" else value > best_value
            if best is None or better:
                best, best_value = info, float(value)
        return best


def _replace_best(info: CheckpointInfo, is_best: bool) -> CheckpointInfo:
    if info.is_best == is_best:
        return info
    return CheckpointInfo(**{**info.__dict__, "is_best": is_best})


def _check_payload_fields(path: Path, payload: Mapping[str, Any]) -> None:
    """A payload whose epoch, step, metrics or extra has the wrong type is damaged."""
    checks = (
        ("epoch", lambda v: _is_count(v), "a non-negative integer"),
        ("step", lambda v: v is None or _is_count(v), "a non-negative integer or null"),
        ("metrics", lambda v: v is None or isinstance(v, dict), "an object"),
        ("extra", lambda v: v is None or isinstance(v, dict), "an object"),
        ("model", lambda v: isinstance(v, dict), "a state dict"),
    )
    for key, ok, wanted in checks:
        value = payload.get(key, 0 if key == "epoch" else None)
        if not ok(value):
            raise CheckpointCorruptError(
                f"checkpoint {str(path)!r} is damaged: {key!r} must be {wanted}, "
                f"got {type(value).__name__}"
            )


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    return value


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
