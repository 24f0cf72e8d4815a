"""A snapshot of the software and hardware a run executes on."""

from __future__ import annotations

import functools
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
    """Installed distributions named ``hyso-*`` and their versions.

    Read once per process (the code running cannot change its installed version) and
    only for distributions whose folder name starts with ``hyso``: parsing every
    installed package's metadata costs tens of milliseconds at the start of each run.
    """
    return dict(_hyso_package_versions())


@functools.lru_cache(maxsize=1)
def _hyso_package_versions() -> tuple[tuple[str, str], ...]:
    found: dict[str, str] = {}
    for dist in metadata.distributions():
        # a dist-info folder's name gives the distribution's name without reading its
        # metadata; distributions without one fall back to reading it
        stem = getattr(dist, "_normalized_name", None)
        if isinstance(stem, str) and not stem.lower().startswith("hyso"):
            continue
        meta = dist.metadata  # parsed once: .version would parse it again
        name = (meta["Name"] or "").lower().replace("_", "-")
        if name.startswith("hyso-") or name == "hyso":
            found[name] = meta["Version"] or ""
    return tuple(sorted(found.items()))


def git_info(workdir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """``{"commit", "dirty", "branch"}`` for a git checkout, else ``None``.

    ``dirty`` counts changes to tracked files only (untracked outputs such as a
    ``runs/`` folder do not make a checkout dirty). The checkout is not trusted: git
    runs with every command a repository can configure switched off (fsmonitor,
    hooks, filter drivers, pagers, submodules), without taking or writing the index
    lock, so reading its state never executes anything from it. The commit, the branch
    and the filter-driver listing are read by two git processes running side by side,
    then ``git status`` runs: two process start-ups on the path, not four.
    """
    heads = _git_start(workdir, "rev-parse", "HEAD", "--abbrev-ref", "HEAD")
    filters = _git_start(workdir, "config", "--null", "--name-only", "--get-regexp", r"^filter\.")
    head_lines = (_git_result(heads) or "").splitlines()
    listing = _git_result(filters)
    if len(head_lines) != 2 or not _COMMIT.match(head_lines[0]):
        return None  # not a checkout, or no commit yet
    commit, branch = head_lines
    status = _git(
        workdir,
        *_filter_drivers(listing),
        "status",
        "--porcelain",
        "--untracked-files=no",
        "--ignore-submodules=all",
        "--no-renames",
    )
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
_COMMIT = re.compile(r"^[0-9a-f]{40}(?:[0-9a-f]{24})?\Z")  # SHA-1 or SHA-256 object names
_FILTER_KEY = re.compile(r"^filter\.(?P<name>.+)\.(?:clean|smudge|process|required)\Z")


def _filter_drivers(listing: str | None) -> list[str]:
    """``-c`` options that switch off every filter driver named in ``listing`` (the
    output of ``git config --null --name-only --get-regexp '^filter\\.'``), whose clean
    command ``git status`` would run.

    ``git config`` only reads files, so listing the drivers runs nothing.
    """
    # git exits 1 (None here) when no key matches
    names = sorted(
        {m.group("name") for k in (listing or "").split("\0") if (m := _FILTER_KEY.match(k))}
    )
    options: list[str] = []
    for name in names:
        for key, value in (("clean", ""), ("smudge", ""), ("process", ""), ("required", "false")):
            options += ["-c", f"filter.{name}.{key}={value}"]
    return options


def _git(workdir: str | os.PathLike[str], *args: str) -> str | None:
    """Run git with ``args`` in ``workdir``; its stripped output, or ``None`` on failure."""
    return _git_result(_git_start(workdir, *args))


def _git_start(workdir: str | os.PathLike[str], *args: str) -> subprocess.Popen[str] | None:
    env = {
        **os.environ,
        "GIT_OPTIONAL_LOCKS": "0",  # never refresh or write the index
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_PAGER": "cat",
        "PAGER": "cat",
    }
    try:
        return subprocess.Popen(
            ["git", "--no-pager", *_SAFE_GIT_OPTIONS, *args],
            cwd=os.fspath(workdir),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def _git_result(process: subprocess.Popen[str] | None) -> str | None:
    if process is None:
        return None
    with process:
        try:
            out, _ = process.communicate(timeout=_GIT_TIMEOUT_S)
        except (OSError, subprocess.SubprocessError, ValueError):
            process.kill()
            process.communicate()
            return None
    return out.strip() if process.returncode == 0 else None


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
