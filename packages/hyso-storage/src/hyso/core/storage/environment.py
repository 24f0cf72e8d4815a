"""A snapshot of the software and hardware a run executes on."""

from __future__ import annotations

import os
import platform
import re
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["collect_environment", "git_info", "hyso_package_versions"]

_GIT_TIMEOUT_S = 5.0


def collect_environment(workdir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Python, OS, host, torch/CUDA/cuDNN, GPUs, hyso package versions and git state."""
    return {
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "executable": sys.executable,
        },
        "os": {
            "system": platform.system(),
            "release": platform.release(),
            "platform": platform.platform(),
            "machine": platform.machine(),
        },
        "hostname": socket.gethostname(),
        "cpu_count": os.cpu_count(),
        "torch": _torch_info(),
        "hyso_packages": hyso_package_versions(),
        "git": git_info(workdir if workdir is not None else Path.cwd()),
    }


def hyso_package_versions() -> dict[str, str]:
    """Installed distributions named ``hyso-*`` and their versions."""
    found: dict[str, str] = {}
    for dist in metadata.distributions():
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        if name.startswith("hyso-") or name == "hyso":
            found[name] = dist.version
    return dict(sorted(found.items()))


def git_info(workdir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """``{"commit", "dirty", "branch"}`` for a git checkout, else ``None``.

    ``dirty`` counts changes to tracked files only (untracked outputs such as a
    ``runs/`` folder do not make a checkout dirty). The checkout is not trusted: git
    runs with every command a repository can configure switched off (fsmonitor,
    hooks, filter drivers, pagers, submodules), without taking or writing the index
    lock, so reading its state never executes anything from it.
    """
    commit = _git(workdir, "rev-parse", "--verify", "--quiet", "HEAD")
    if commit is None:
        return None
    status = _git(
        workdir,
        *_filter_drivers(workdir),
        "status",
        "--porcelain",
        "--untracked-files=no",
        "--ignore-submodules=all",
        "--no-renames",
    )
    branch = _git(workdir, "rev-parse", "--abbrev-ref", "HEAD")
    return {
        "commit": commit,
        "dirty": bool(status) if status is not None else None,
        "branch": branch,
    }


# Settings that would make git run a command configured by the checkout. Filter drivers
# are switched off by name (see _filter_drivers); diff, pager and editor commands are
# not used by status, and hooks are pointed at a folder that cannot hold any.
_SAFE_GIT_OPTIONS = (
    "-c",
    "core.fsmonitor=false",
    "-c",
    f"core.hooksPath={os.devnull}",
    "-c",
    "core.untrackedCache=false",
    "-c",
    "status.submoduleSummary=false",
    "-c",
    "diff.ignoreSubmodules=all",
)
_FILTER_KEY = re.compile(r"^filter\.(?P<name>.+)\.(?:clean|smudge|process|required)\Z")


def _filter_drivers(workdir: str | os.PathLike[str]) -> list[str]:
    """``-c`` options that switch off every configured filter driver (whose clean
    command ``git status`` would run).

    ``git config`` only reads files, so listing the drivers runs nothing.
    """
    # git exits 1 (None here) when no key matches
    listing = _git(workdir, "config", "--null", "--name-only", "--get-regexp", r"^filter\.") or ""
    names = sorted({m.group("name") for k in listing.split("\0") if (m := _FILTER_KEY.match(k))})
    options: list[str] = []
    for name in names:
        for key, value in (("clean", ""), ("smudge", ""), ("process", ""), ("required", "false")):
            options += ["-c", f"filter.{name}.{key}={value}"]
    return options


def _git(workdir: str | os.PathLike[str], *args: str) -> str | None:
    env = {
        **os.environ,
        "GIT_OPTIONAL_LOCKS": "0",  # never refresh or write the index
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_PAGER": "cat",
        "PAGER": "cat",
    }
    try:
        result = subprocess.run(
            ["git", "--no-pager", *_SAFE_GIT_OPTIONS, *args],
            cwd=os.fspath(workdir),
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def _torch_info() -> dict[str, Any]:
    import torch

    cuda_available = torch.cuda.is_available()
    cudnn = torch.backends.cudnn
    gpus = (
        [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if (cuda_available)
        else []
    )
    return {
        "version": torch.__version__,
        "cuda_available": cuda_available,
        "cuda_version": torch.version.cuda,
        "cudnn_available": bool(cudnn.is_available()),
        "cudnn_version": cudnn.version() if cudnn.is_available() else None,
        "gpus": gpus,
        "num_threads": torch.get_num_threads(),
    }
