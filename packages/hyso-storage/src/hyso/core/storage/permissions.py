"""One permission policy for every file of a run folder.

Run files are created with mode ``0o666 & ~umask`` (``0644`` under the usual umask
022), as any file the user creates: the process umask decides who may read a run,
and ``umask 077`` makes runs private. Writers that create files with a fixed mode
(``tempfile.mkstemp`` gives ``0600``) have it corrected by :func:`apply_file_mode`.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

__all__ = ["apply_file_mode", "current_umask", "default_file_mode"]

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows."""
    try:
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:  # elsewhere: set and restore it at once
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def default_file_mode() -> int:
    """The mode a run file gets: ``0o666 & ~umask``."""
    return 0o666 & ~current_umask()


def apply_file_mode(*paths: str | os.PathLike[str]) -> None:
    """Give ``paths`` the run-file mode (no-op on Windows, whose modes differ)."""
    if os.name == "nt":
        return
    mode = default_file_mode()
    for path in paths:
        os.chmod(path, mode)
