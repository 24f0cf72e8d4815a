"""The on-disk format of one checkpoint: a payload file plus its record.

``<stem>.pt`` is a ``torch.save`` archive of plain data and tensors, loadable
with ``torch.load(..., weights_only=True)``. ``<stem>.pt.json`` is its record:
format version, SHA-256 and size of the payload, epoch, step and metrics. The
record is written (atomically) only after the payload is durable, so a payload
without a record is an unfinished save and is never loaded.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import os
import pickle
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import torch

from .atomic import atomic_write, atomic_write_json
from .errors import CheckpointCorruptError, CheckpointError, UnsafeCheckpointError
from .helper import Helper, Task

__all__ = [
    "CHECKPOINT_FORMAT_VERSION",
    "RECORD_SUFFIX",
    "check_safe_payload",
    "hash_file",
    "load_payload",
    "load_verified",
    "read_record",
    "verify_payload",
    "write_payload",
    "write_record",
]

CHECKPOINT_FORMAT_VERSION = 1
RECORD_SUFFIX = ".json"
_CHUNK = 8 * 1024 * 1024
_PARALLEL_HASH_MIN = 1024 * 1024
_SYNC_EVERY = 64 * 1024 * 1024
_CRC_LOCK = threading.Lock()
_SAFE_SCALARS = frozenset(
    {
        type(None),
        bool,
        int,
        float,
        complex,
        str,
        bytes,
        bytearray,
        torch.Size,
        torch.dtype,
        torch.device,
    }
)  # exact types: subclasses (NumPy floats, TorchVersion, enums) pickle as foreign classes


def check_safe_payload(obj: Any, where: str = "checkpoint") -> None:
    """Raise ``CheckpointError`` if ``obj`` holds anything weights-only loading refuses.

    Checking before writing means a save never produces a file that cannot be
    loaded back safely.
    """
    stack: list[tuple[Any, str]] = [(obj, where)]
    while stack:
        value, path = stack.pop()
        if type(value) in _SAFE_SCALARS or isinstance(value, torch.Tensor):
            continue
        if type(value) in (dict, collections.OrderedDict):
            for key, item in value.items():
                if type(key) not in _SAFE_SCALARS and type(key) is not tuple:
                    raise CheckpointError(
                        f"{path}: key {key!r} of type {type(key).__name__} cannot be stored"
                    )
                stack.append((item, f"{path}[{key!r}]"))
        elif type(value) in (list, tuple, set, frozenset):
            stack.extend((item, f"{path}[{i}]") for i, item in enumerate(value))
        else:
            raise CheckpointError(
                f"{path}: value of type {type(value).__module__}.{type(value).__qualname__} "
                "cannot be stored in a checkpoint (only tensors, numbers, strings, None, "
                "lists, tuples and dicts load back without running code)"
            )


def write_payload(path: Path, payload: Mapping[str, Any]) -> tuple[str, int]:
    """Atomically write ``payload`` with ``torch.save``; return (sha256 hex, size)."""
    hasher = hashlib.sha256()
    size = 0

    def _write(handle: IO[bytes]) -> None:
        nonlocal size
        writer = _HashingWriter(handle, hasher)
        try:
            with _crc32_disabled():
                torch.save(dict(payload), writer)
        except Exception as exc:
            # torch reports a failed write as "unexpected pos"; surface the real cause
            if writer.error is not None and writer.error is not exc:
                raise writer.error from exc
            raise
        finally:
            writer.close()
        size = writer.size

    atomic_write(path, _write)
    return hasher.hexdigest(), size


@contextlib.contextmanager
def _crc32_disabled() -> Iterator[None]:
    """Skip torch's per-record CRC-32 while we save: the SHA-256 covers every byte.

    ``set_crc32_options`` is process-wide; a ``torch.save`` running in another
    thread at the same moment also skips CRC-32 (its file stays loadable).
    """
    serialization = torch.serialization
    if not hasattr(serialization, "set_crc32_options"):  # torch < 2.4 always writes CRC-32
        yield
        return
    with _CRC_LOCK:
        previous = serialization.get_crc32_options()
        serialization.set_crc32_options(False)
        try:
            yield
        finally:
            serialization.set_crc32_options(previous)


def write_record(payload_path: Path, record: Mapping[str, Any]) -> Path:
    """Atomically write the record beside its payload (``<payload>.json``)."""
    return atomic_write_json(record_path(payload_path), dict(record))


def record_path(payload_path: Path) -> Path:
    """The record file of a payload file."""
    return payload_path.with_name(payload_path.name + RECORD_SUFFIX)


def read_record(path: Path) -> dict[str, Any]:
    """Read and validate a record file; ``CheckpointCorruptError`` if unreadable."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointCorruptError(
            f"checkpoint record {str(path)!r} is unreadable: {exc}"
        ) from exc
    if not isinstance(record, dict):
        raise CheckpointCorruptError(f"checkpoint record {str(path)!r} is not a JSON object")
    version = record.get("format_version")
    if (
        isinstance(version, int)
        and not isinstance(version, bool)
        and version > (CHECKPOINT_FORMAT_VERSION)
    ):
        raise CheckpointError(
            f"checkpoint record {str(path)!r} has format_version {version}, newer than "
            f"this hyso-storage reads ({CHECKPOINT_FORMAT_VERSION}): upgrade hyso-storage "
            "(an older checkpoint is not used in its place)"
        )
    if version != CHECKPOINT_FORMAT_VERSION or isinstance(version, bool):
        raise CheckpointCorruptError(
            f"checkpoint record {str(path)!r} has format_version {version!r}; "
            f"this hyso-storage reads {CHECKPOINT_FORMAT_VERSION}"
        )
    for key, ok, wanted in _RECORD_KEYS:
        if not ok(record.get(key)):
            raise CheckpointCorruptError(
                f"checkpoint record {str(path)!r} is damaged: key {key!r} must be {wanted}, "
                f"got {record.get(key)!r:.60}"
            )
    return record


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


# What each key of a record must hold; a record that breaks one is damaged.
_RECORD_KEYS: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
    ("sha256", lambda v: isinstance(v, str) and len(v) == 64, "a SHA-256 hex string"),
    ("size", _count, "a non-negative integer"),
    ("file", lambda v: isinstance(v, str) and v != "", "a file name"),
    ("seq", _count, "a non-negative integer"),
    ("epoch", _count, "a non-negative integer"),
    ("step", lambda v: v is None or _count(v), "a non-negative integer or null"),
    ("metrics", lambda v: isinstance(v, dict), "an object"),
    ("created_at", lambda v: v is None or isinstance(v, str), "a string"),
)


def hash_file(path: Path) -> tuple[str, int]:
    """SHA-256 hex digest and size of a file, read in chunks."""
    hasher = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            hasher.update(chunk)
            size += len(chunk)
    return hasher.hexdigest(), size


def verify_payload(path: Path, record: Mapping[str, Any]) -> None:
    """Raise ``CheckpointCorruptError`` unless the file's size and SHA-256 match its record."""
    try:
        digest, size = hash_file(path)
    except FileNotFoundError as exc:
        raise CheckpointCorruptError(f"checkpoint {str(path)!r} is missing") from exc
    if size != record["size"]:
        raise CheckpointCorruptError(
            f"checkpoint {str(path)!r} is {size} bytes, its record says {record['size']} "
            "(truncated or overwritten)"
        )
    if digest != record["sha256"]:
        raise CheckpointCorruptError(
            f"checkpoint {str(path)!r} fails its SHA-256 check "
            f"(expected {record['sha256'][:16]}..., got {digest[:16]}...)"
        )


def load_verified(path: Path, record: Mapping[str, Any], map_location: Any = "cpu") -> dict:
    """Load a payload while hashing it on a helper thread; damage wins over any load error.

    Loading is weights-only either way, so reading a file before its hash is
    checked cannot run code; a payload that fails the check is discarded.
    """
    with Helper("hyso-ckpt-verify") as pool:
        verified = pool.submit(verify_payload, path, record)
        try:
            payload = load_payload(path, map_location=map_location)
        except Exception:
            verified.result()  # a CheckpointCorruptError here explains the failure better
            raise
        verified.result()
    return payload


def load_payload(path: Path, map_location: Any = "cpu") -> dict[str, Any]:
    """``torch.load(..., weights_only=True)``; unsafe content is refused, never executed."""
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise UnsafeCheckpointError(
            f"refused to load checkpoint {str(path)!r}: it holds objects that would need "
            f"code to run on load (weights-only loading rejected it: {_reason(exc)})"
        ) from exc
    except Exception as exc:  # a damaged archive fails in many ways (IndexError, KeyError...)
        raise CheckpointCorruptError(
            f"checkpoint {str(path)!r} cannot be read: {_first_line(exc)}"
        ) from exc
    if not isinstance(payload, dict) or payload.get("format_version") != CHECKPOINT_FORMAT_VERSION:
        version = payload.get("format_version") if isinstance(payload, dict) else None
        raise CheckpointError(
            f"checkpoint {str(path)!r} has format_version {version!r}; "
            f"this hyso-storage reads {CHECKPOINT_FORMAT_VERSION}"
        )
    return payload


class _HashingWriter:
    """A write-only file object that hashes what passes through it.

    torch hands over memoryviews that are valid only during ``write``; large ones
    are hashed on a helper thread while this thread writes them to the file
    (both release the GIL), and ``write`` returns only when both are done. Every
    ``_SYNC_EVERY`` bytes a second helper starts flushing what is written so far
    to the disk, so the final fsync has little left to wait for.
    """

    def __init__(self, handle: IO[bytes], hasher: Any) -> None:
        self._handle = handle
        self._hasher = hasher
        self._hash_pool = Helper("hyso-ckpt-hash")
        self._sync_pool = Helper("hyso-ckpt-sync")
        self._sync: Task | None = None
        self._unsynced = 0
        self.size = 0
        self.error: BaseException | None = None

    def write(self, data: Any) -> int:
        try:
            return self._write(data)
        except BaseException as exc:
            self.error = exc
            raise

    def _write(self, data: Any) -> int:
        view = memoryview(data)
        self.size += view.nbytes
        if view.nbytes < _PARALLEL_HASH_MIN:
            self._hasher.update(view)
            return self._handle.write(view)
        pending = self._hash_pool.submit(self._hasher.update, view)
        try:
            written = self._handle.write(view)
        finally:
            pending.result()
        self._unsynced += view.nbytes
        if self._unsynced >= _SYNC_EVERY and (self._sync is None or self._sync.done()):
            if self._sync is not None:
                self._sync.result()  # re-raise a failed flush
            self._unsynced = 0
            self._sync = self._sync_pool.submit(_fdatasync, self._handle.fileno())
        return written

    def flush(self) -> None:
        self._handle.flush()

    def close(self) -> None:
        """Stop the helper threads; re-raise a failed flush."""
        self._hash_pool.close()
        self._sync_pool.close()
        if self._sync is not None and self.error is None:
            self._sync.result()


def _fdatasync(fd: int) -> None:
    getattr(os, "fdatasync", os.fsync)(fd)


def _reason(exc: BaseException) -> str:
    for line in str(exc).splitlines():
        if "Unsupported" in line or "WeightsUnpickler error" in line:
            return line.strip()
    return _first_line(exc)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
