"""A snapshot of the software and hardware a run executes on."""

from __future__ import annotations

import os
import platform
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
    ``runs/`` folder do not make a checkout dirty).
    """
    commit = _git(workdir, "rev-parse", "HEAD")
    if commit is None:
        return None
    status = _git(workdir, "status", "--porcelain", "--untracked-files=no")
    branch = _git(workdir, "rev-parse", "--abbrev-ref", "HEAD")
    return {
        "commit": commit,
        "dirty": bool(status) if status is not None else None,
        "branch": branch,
    }


def _git(workdir: str | os.PathLike[str], *args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", *args],
            cwd=os.fspath(workdir),
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
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
