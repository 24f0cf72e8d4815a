"""Atomic, durable file writes.

Every write goes to a temporary file in the destination folder, is flushed and
fsynced, then moved over the destination with :func:`os.replace` and the folder
is fsynced, so a reader sees either the old file or the complete new one.

Temporary files are named ``.<name>.<pid>.<random>.tmp``; :func:`clean_stale_temps`
removes those left behind by a process that died mid-write.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

__all__ = [
    "TEMP_SUFFIX",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "clean_stale_temps",
    "fsync_dir",
    "is_temp_name",
]

TEMP_SUFFIX = ".tmp"
_TEMP_RE = re.compile(r"^\..+\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp\Z")


def atomic_write(path: str | os.PathLike[str], writer: Callable[[IO[bytes]], Any]) -> Path:
    """Call ``writer(file)`` on a temp file, then move it durably over ``path``."""
    target = Path(path)
    with _temp_file(target) as handle:
        writer(handle)
    return target


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and durably."""
    return atomic_write(path, lambda handle: handle.write(data))


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically and durably."""
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_write_json(path: str | os.PathLike[str], obj: Any, *, indent: int | None = 2) -> Path:
    """Serialize ``obj`` as JSON (no NaN/Infinity) and write it atomically."""
    text = json.dumps(obj, indent=indent, sort_keys=False, allow_nan=False, ensure_ascii=False)
    return atomic_write_text(path, text + "\n")


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Flush a folder's entries (new names, renames) to disk; a no-op where unsupported."""
    if os.name == "nt":  # Windows cannot open a folder for fsync.
        return
    fd = os.open(os.fspath(path), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def is_temp_name(name: str) -> bool:
    """Whether ``name`` is a temp file name written by this module."""
    return _TEMP_RE.match(name) is not None


def clean_stale_temps(
    directory: str | os.PathLike[str], *, include_own: bool = False
) -> list[Path]:
    """Remove temp files in ``directory`` whose writing process is gone.

    Temp files of live processes are kept (they may be mid-write); with
    ``include_own=True`` this process's own temp files are removed too (call it
    only when no write of this process is in flight). Returns the removed paths.
    """
    folder = Path(directory)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    me = os.getpid()
    for entry in folder.iterdir():
        match = _TEMP_RE.match(entry.name)
        if match is None or not entry.is_file():
            continue
        pid = int(match.group("pid"))
        if pid == me and not include_own:
            continue
        if pid != me and _pid_alive(pid):
            continue
        with contextlib.suppress(FileNotFoundError):
            entry.unlink()
            removed.append(entry)
    return removed


@contextlib.contextmanager
def _temp_file(target: Path) -> Iterator[IO[bytes]]:
    folder = target.parent
    tmp = folder / f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}{TEMP_SUFFIX}"
    handle = open(tmp, "xb")
    try:
        yield handle
        handle.flush()
        os.fsync(handle.fileno())
        handle.close()
        os.replace(tmp, target)
    except BaseException:
        handle.close()
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    fsync_dir(folder)


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return False
    return True
