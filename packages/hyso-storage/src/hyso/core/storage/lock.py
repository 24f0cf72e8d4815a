"""A lock file that keeps a second process from writing into the same folder.

The lock is a small JSON file created with ``O_CREAT | O_EXCL`` (atomic on local
file systems) that names the owner's pid and host. A lock whose owner is a process
that no longer exists on this host is stale and taken over; a lock held by a live
process, or by another host (whose processes cannot be checked), is refused.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .errors import CheckpointError

__all__ = ["LOCK_FORMAT_VERSION", "FolderLock", "FolderLockedError"]

LOCK_FORMAT_VERSION = 1
# A lock file still empty or unreadable after this long was left by a writer that died
# between creating it and writing its owner.
_UNREADABLE_GRACE_S = 10.0


class FolderLockedError(CheckpointError):
    """Another live process holds the folder's lock file."""


class FolderLock:
    """The lock file ``path``, held by this process between :meth:`acquire` and :meth:`release`."""

    def __init__(self, path: str | os.PathLike[str], *, what: str = "folder") -> None:
        self.path = Path(path)
        self.what = what
        self.held = False

    def acquire(self) -> None:
        """Take the lock (re-taking a stale one); ``FolderLockedError`` if a live process has it."""
        if self.held:
            return
        for _ in range(5):
            if self._create():
                self.held = True
                return
            owner = _read_owner(self.path)
            if owner is _GONE:
                continue  # released between our attempt and the read: try again
            if _is_ours(owner):
                self.held = True
                return
            if not _is_stale(owner, self.path):
                raise FolderLockedError(self._refusal(owner))
            _remove_stale(self.path, owner)
        raise FolderLockedError(f"could not take the lock {str(self.path)!r}: it keeps changing")

    def release(self) -> None:
        """Remove the lock file if this process holds it."""
        if not self.held:
            return
        self.held = False
        if _is_ours(_read_owner(self.path)):
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass

    def _create(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            return False
        owner = {
            "format_version": LOCK_FORMAT_VERSION,
            "pid": os.getpid(),
            "hostname": socket.gethostname(),
            "created_at": datetime.now(timezone.utc).isoformat(),
        }
        # No fsync: the lock only matters while its owner runs. After a machine crash
        # the owner is gone either way, and a lock file lost, empty or naming a dead
        # process is taken over (an unreadable one after _UNREADABLE_GRACE_S).
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(owner) + "\n")
        return True

    def _refusal(self, owner: Any) -> str:
        who = (
            f"process {owner.get('pid')} on host {owner.get('hostname')!r}"
            if isinstance(owner, dict)
            else "another process"
        )
        return (
            f"{self.what} {str(self.path.parent)!r} is being written by {who} (lock file "
            f"{str(self.path)!r}); two writers would delete each other's files. Use another "
            "folder, or delete the lock file if that process is gone"
        )


_GONE = object()


def _read_owner(path: Path) -> Any:
    """The lock's owner dict, ``None`` if unreadable, ``_GONE`` if the file is gone."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return _GONE
    except (OSError, UnicodeDecodeError):
        return None
    try:
        owner = json.loads(text)
    except ValueError:
        return None
    return owner if isinstance(owner, dict) else None


def _is_ours(owner: Any) -> bool:
    return (
        isinstance(owner, dict)
        and owner.get("pid") == os.getpid()
        and owner.get("hostname") == socket.gethostname()
    )


def _is_stale(owner: Any, path: Path) -> bool:
    if not isinstance(owner, dict):
        try:
            return time.time() - path.stat().st_mtime > _UNREADABLE_GRACE_S
        except FileNotFoundError:
            return True
    pid = owner.get("pid")
    if owner.get("hostname") != socket.gethostname():
        return False  # another machine's process cannot be checked from here
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        return True
    return not _pid_alive(pid)


def _pid_alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would not be a harmless probe there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def _remove_stale(path: Path, stale: Any) -> None:
    """Move a stale lock aside, then delete it. If what was moved is not the stale lock
    (another process took it over in between), put that fresh lock back."""
    aside = path.with_name(f"{path.name}.stale.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        os.replace(path, aside)
    except FileNotFoundError:
        return
    if _read_owner(aside) != stale:
        try:
            os.link(aside, path)
        except OSError:
            pass  # a newer lock is already in place
    aside.unlink(missing_ok=True)
